"""The training and evaluation streams of serialized records, from a split's shards.

Training: epoch after epoch, the input pipeline's shards in a new order, read
interleaved, and the records shuffled in windows of --shuffle_buffer. Every
random choice is a stateless function of (seed, input pipeline, epoch), so the
stream from any element on is rebuilt from that element's number alone: a
resumed run continues at its step's position exactly, under any strategy, and
nothing of it names where the data lives (the folder is joined to shard names
only where a shard is opened). Evaluation: one pass in a fixed order.

With several input pipelines (workers), each takes whole shards, or every n-th
record when there are fewer shards than pipelines.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
# Shards read at once by the training stream.
_CYCLE_LENGTH = 4
# The training stream's epochs: endless in practice.
EPOCHS = 2**62


@dataclasses.dataclass(frozen=True)
class Shards:
    """A prepared split's TFRecord shards: the folder, the file names and their lengths."""

    directory: str
    names: tuple[str, ...]
    lengths: tuple[int, ...]
    side_by_side: bool


def order_key(seed: int, pipeline: int, epoch: tf.Tensor) -> tf.Tensor:
    """The stateless random key of one epoch's order (shards, records): a [2] int64 seed.

    Apart from the elements' jitter keys (jitter_key), which fold in indices >= 0.
    """
    key = tf.constant([seed, pipeline], tf.int64)
    key = tf.random.experimental.stateless_fold_in(key, tf.constant(-1, tf.int64))
    return tf.random.experimental.stateless_fold_in(key, tf.cast(epoch, tf.int64))


def _pipeline_shards(shards: Shards, pipelines: int, pipeline: int):
    """(this input pipeline's shard names, whether it takes every n-th record instead
    of whole shards, its records per epoch)."""
    names, lengths = list(shards.names), list(shards.lengths)
    if pipelines == 1:
        return names, False, sum(lengths)
    if len(names) >= pipelines:
        return names[pipeline::pipelines], False, sum(lengths[pipeline::pipelines])
    return names, True, len(range(pipeline, sum(lengths), pipelines))


def _read_shards(directory: str, names, count: int, *, interleave: bool) -> tf.data.Dataset:
    """The records of the `count` shards `names` (a tensor or list) in `directory`:
    interleaved, or one shard after the other.

    The folder is joined to each name only where its shard is opened.
    """
    dataset = tf.data.Dataset.from_tensor_slices(names)
    read = lambda name: tf.data.TFRecordDataset(  # noqa: E731
        tf.strings.join([directory, name], separator="/")
    )
    if not interleave:
        return dataset.flat_map(read)
    return dataset.interleave(
        read,
        cycle_length=min(_CYCLE_LENGTH, count),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )


def _windowed_shuffle(dataset: tf.data.Dataset, window: int, key: tf.Tensor) -> tf.data.Dataset:
    """Each run of `window` elements in a stateless random order keyed by (key, window number).

    Like a shuffle buffer of that size, an element moves about a window's length;
    unlike one, the order is a function of the key alone, so it is rebuilt exactly.
    """
    shuffle = lambda number, elements: tf.random.experimental.stateless_shuffle(  # noqa: E731
        elements, seed=tf.random.experimental.stateless_fold_in(key, number)
    )
    return dataset.batch(window).enumerate().map(shuffle).unbatch()


def training_records(
    shards: Shards, pipelines: int, pipeline: int, *, seed: int, shuffle_buffer: int, start: int
) -> tf.data.Dataset:
    """Endless serialized records of this input pipeline from its element `start` on.

    Epoch after epoch, each reads its shards in a new order, interleaved, and
    shuffles the records in windows of `shuffle_buffer`, keyed by (seed, pipeline,
    epoch). Whole epochs before `start` are not read; the rest is read and skipped.
    """
    names, by_record, count = _pipeline_shards(shards, pipelines, pipeline)
    check_not_empty(count, shards, pipelines, pipeline)

    def one_epoch(epoch):
        key = order_key(seed, pipeline, epoch)
        order = tf.random.experimental.stateless_shuffle(tf.constant(names), seed=key)
        records = _read_shards(shards.directory, order, len(names), interleave=True)
        if by_record:
            records = records.shard(pipelines, pipeline)
        return _windowed_shuffle(records, shuffle_buffer, key)

    first_epoch, offset = divmod(start, count)
    return tf.data.Dataset.range(first_epoch, EPOCHS).flat_map(one_epoch).skip(offset)


def check_not_empty(count: int, shards: Shards, pipelines: int, pipeline: int) -> None:
    if count == 0:
        raise ValueError(
            f"input pipeline {pipeline} of {pipelines} gets none of the split's "
            f"{sum(shards.lengths)} examples; prepare more examples than there are input "
            f"pipelines (workers)."
        )


def evaluation_records(shards: Shards, pipelines: int, pipeline: int) -> tf.data.Dataset:
    """One pass over this input pipeline's records in a fixed order."""
    names, by_record, _ = _pipeline_shards(shards, pipelines, pipeline)
    records = _read_shards(shards.directory, names, len(names), interleave=False)
    return records.shard(pipelines, pipeline) if by_record else records
