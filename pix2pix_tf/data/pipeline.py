"""The tf.data input pipeline: prepared TFRecords -> (input, target) batches.

Training (as in the paper): epoch after epoch, the shards in a new order read
interleaved, the serialized records shuffled (before decoding), parallel
decoding, random jitter (resize to load_size, the same random image_size crop of
both halves, the same random mirroring), [-1, 1] scaling, batches of equal size,
prefetching.

The position in that stream is a number, not a saved iterator: every random
choice (the shard order and the record shuffle of each epoch, streams.py; each
element's jitter) is stateless and keyed by (seed, input pipeline, epoch or
element index), so the stream from element k on is rebuilt from k alone
(`start_step`). A resumed run therefore sees exactly the batches an
uninterrupted one would, under any strategy, wherever the prepared data lives
now: nothing in a checkpoint names a file. Resuming reads (without decoding) the
records of the current epoch up to the position.

Channels and bits: each side is read with --input_channels / --output_channels
(gray to RGB by replication, gray stored as RGB to one channel by the channel
mean: both exact) and at --input_bits / --output_bits: 8-bit sides as uint8 (v /
127.5 - 1), 16-bit sides as float32 from the PNG's 16 bits (v / 65535 * 2 - 1;
8-bit images in them as v / 255 * 2 - 1); records.py decodes, data/formats.py
checks the data first.

Evaluation: resize to image_size only (or, native_size, not at all), fixed
order, one pass, the last partial batch kept.

Everything about the data comes from one resolved value, data/prepared.py's
PreparedDataset (what data/prepare.py's `prepare` returns); the training-only
choices are keyword arguments of build_dataset. Sizes are (height, width). A pair
whose aspect differs from the size is, with `--resize_mode cover` (the default),
scaled to cover it and cropped (at random in training, in the centre for
evaluation), never squashed;
`squash` resizes each side on its own. Pairs of the size's aspect (every square
pair of a square run) come out the same either way.

A seed gives the same batches whatever the parallelism. `--cache_decoded` keeps
decoded training images in memory instead of decoding them every epoch (see
cache.py).
"""

from __future__ import annotations

import os

import tensorflow as tf

from pix2pix_tf.configs import choices
from pix2pix_tf.data import cache as input_cache
from pix2pix_tf.data import streams
from pix2pix_tf.data.datasets import base
from pix2pix_tf.data.prepared import PreparedDataset
from pix2pix_tf.data.records import SideFormat, decode_pair, parse

__all__ = ["PreparedDataset", "SideFormat", "build_dataset", "decode_pair", "parse"]

AUTOTUNE = tf.data.AUTOTUNE


# -- Preprocessing (decoding: records.py): each works eagerly and inside tf.data.


def _resize(image: tf.Tensor, size) -> tf.Tensor:
    return tf.image.resize(image, size, method="bilinear")


def _cover(image: tf.Tensor, size: tuple[int, int], resize_mode: str):
    """The [height, width] `image` is resized to: `size` itself (squash, or the same
    aspect), else the smallest size of the image's aspect that covers `size`."""
    if resize_mode == "squash":
        return size
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.reduce_max(tf.constant(size, tf.float32) / shape)
    # Rounded, and never below `size` (the side that sets the scale is exact).
    return tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), size)


def _scale(images: tf.Tensor) -> tf.Tensor:
    """uint8 pixels, or float32 in [0, 1] (16-bit sides) -> float32 [-1, 1]."""
    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) / 127.5 - 1.0
    return images * 2.0 - 1.0


def _scaled_crop(image, resized, top, left, size: tuple[int, int]) -> tf.Tensor:
    """`image` scaled to [-1, 1] (float resizing is faster than uint8), resized to
    `resized`, and its `size` crop at (top, left): float32 [*size, channels]."""
    channels = image.shape[-1]
    image = _resize(_scale(image), resized)[top : top + size[0], left : left + size[1]]
    image.set_shape([*size, channels])
    return image


def jitter_key(seed: int, pipeline: int, index: tf.Tensor) -> tf.Tensor:
    """The stateless random key of one element: a [2] int64 seed."""
    key = tf.constant([seed, pipeline], tf.int64)
    return tf.random.experimental.stateless_fold_in(key, tf.cast(index, tf.int64))


def preprocess_train(
    a,
    b,
    key,
    *,
    image_hw: tuple[int, int],
    load_hw: tuple[int, int],
    resize_mode: str = "cover",
    random_mirror: bool = True,
):
    """Random jitter and mirroring, the same for both halves -> float32 [-1, 1].

    Each half is mirrored (or not), resized to load_size (bilinear) and cropped
    to image_size at the same random offsets. Mirroring comes first, on the
    small uint8 image, which is cheaper than after resizing and gives the same
    distribution of crops.

    Args:
      a, b: the decoded halves (decode_pair; their sizes may differ).
      key: [2] int64 stateless random key (see jitter_key).
      image_hw: the crop, (height, width).
      load_hw: the size resized to before cropping; image_hw itself: no jitter.
      resize_mode: cover (scale a pair of another aspect to cover, crop) or squash.
      random_mirror: flip both halves left-right half of the time.
    """
    size, load_size = image_hw, load_hw
    random = tf.random.stateless_uniform([3], seed=key)
    mirror = random_mirror & (random[2] < 0.5)

    def jitter(image):
        if random_mirror:
            image = tf.cond(mirror, lambda: tf.reverse(image, axis=[1]), lambda: image)
        # Scaled to [-1, 1] before resizing (float resizing is faster than
        # uint8), resized to cover [load_h, load_w, 3] (exactly that for pairs
        # of its aspect), then the [h, w, 3] crop at the same relative offsets
        # for both halves.
        resized = _cover(image, load_size, resize_mode)
        room = [resized[axis] - size[axis] for axis in (0, 1)]
        top, left = (
            tf.minimum(
                tf.cast(random[axis] * tf.cast(room[axis] + 1, tf.float32), tf.int32), room[axis]
            )
            for axis in (0, 1)
        )
        return _scaled_crop(image, resized, top, left, size)

    return jitter(a), jitter(b)


def preprocess_eval(a, b, *, image_hw: tuple[int, int], resize_mode: str = "cover"):
    """Resize (to cover, then the centre crop) -> float32 [-1, 1] [height, width, C] each."""
    size = image_hw

    def fit(image):
        resized = _cover(image, size, resize_mode)
        top, left = ((resized[axis] - size[axis]) // 2 for axis in (0, 1))
        return _scaled_crop(image, resized, top, left, size)

    return fit(a), fit(b)


def preprocess_native(a, b, *, direction: str):
    """Evaluation at the pairs' own size: scaled to [-1, 1], not resized.

    The target half is resized to the input half's size where the two differ, so
    that the generated image (at the input's size) can be scored against it.
    """
    a, b = _scale(a), _scale(b)
    inputs, targets = select_direction(a, b, direction)
    size = tf.shape(inputs)[:2]
    targets = tf.cond(
        tf.reduce_all(tf.equal(tf.shape(targets)[:2], size)),
        lambda: targets,
        lambda: _resize(targets, size),
    )
    return select_direction(inputs, targets, direction)


def batch_by_size(dataset: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """Batches of up to `batch_size` elements of the same height and width.

    Elements of one size keep their order; with a single size this is .batch().
    """
    return dataset.group_by_window(
        key_func=lambda inputs, *rest: (
            tf.cast(tf.shape(inputs)[0], tf.int64) * 2**32 + tf.cast(tf.shape(inputs)[1], tf.int64)
        ),
        reduce_func=lambda key, window: window.batch(batch_size),
        window_size=batch_size,
    )


def select_direction(a, b, direction: str):
    """(input, target): AtoB maps A (left) to B (right); BtoA the reverse."""
    choices.check_choice("direction", direction, choices.DIRECTIONS)
    return (a, b) if direction == "AtoB" else (b, a)


def build_dataset(
    dataset: PreparedDataset,
    split: str,
    *,
    training: bool,
    batch_size: int,
    seed: int = 0,
    start_step: int = 0,
    input_context: tf.distribute.InputContext | None = None,
    with_keys: bool = False,
    native_size: bool = False,
    random_jitter: bool = True,
    random_mirror: bool = True,
    shuffle_buffer: int = 400,
    cache_decoded: bool = False,
) -> tf.data.Dataset:
    """Batches of (input, target[, key]) from a split of the prepared `dataset`.

    input/target are float32 [batch, height, width, channels] in [-1, 1]
    (dataset.image_hw; its input and target formats), chosen by dataset.direction;
    keys are the source file names. With an input_context, each input pipeline
    reads its own shards (or, with fewer shards than pipelines, every n-th record)
    and batches per replica. Training starts after the first `start_step` global
    batches of `batch_size` (a resumed run's step): the same batches from there on
    as a run that started at 0. With native_size (evaluation only), the pairs keep
    their own size (preprocess_native) and each batch holds pairs of one size
    (batch_by_size).

    Training only: random_jitter (resize to dataset.load_hw, then a random crop),
    random_mirror, the shuffle_buffer of records and cache_decoded (keep decoded
    images in memory, cache.py).
    """
    if native_size and training:
        raise ValueError("native_size is an evaluation mode; training crops image_size.")
    shards = dataset.shards(split)
    pipelines, pipeline, replicas = 1, 0, 1
    if input_context is not None:
        pipelines, pipeline = input_context.num_input_pipelines, input_context.input_pipeline_id
        replicas = input_context.num_replicas_in_sync // pipelines
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    if batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1 per replica, got {batch_size}.")
    # The elements this pipeline has produced: each step takes one batch per replica it feeds.
    start = start_step * batch_size * replicas if training else 0
    read_as = dataset.side_formats
    load_hw = dataset.load_hw if random_jitter else dataset.image_hw

    def decode(serialized):
        features = parse(serialized, shards.side_by_side)
        return (*decode_pair(features, read_as), features[base.KEY])

    def finish(index, a, b, key):
        if training:
            a, b = preprocess_train(
                a,
                b,
                jitter_key(seed, pipeline, index),
                image_hw=dataset.image_hw,
                load_hw=load_hw,
                resize_mode=dataset.resize_mode,
                random_mirror=random_mirror,
            )
        elif native_size:
            a, b = preprocess_native(a, b, direction=dataset.direction)
        else:
            a, b = preprocess_eval(a, b, image_hw=dataset.image_hw, resize_mode=dataset.resize_mode)
        inputs, targets = select_direction(a, b, dataset.direction)
        return (inputs, targets, key) if with_keys else (inputs, targets)

    cached = training and cache_decoded
    if cached:
        records = streams.evaluation_records(shards, pipelines, pipeline)
        table = input_cache.DecodedTable(records, decode, sum(shards.lengths), split)
        streams.check_not_empty(table.count, shards, pipelines, pipeline)
        order = lambda epoch: streams.order_key(seed, pipeline, epoch)  # noqa: E731
        examples = input_cache.training_examples(table, order, start)
        prepare = lambda index, example: finish(index, *example)  # noqa: E731
    else:
        if training:
            examples = streams.training_records(
                shards,
                pipelines,
                pipeline,
                seed=seed,
                shuffle_buffer=shuffle_buffer,
                start=start,
            )
        else:
            examples = streams.evaluation_records(shards, pipelines, pipeline)
        prepare = lambda index, record: finish(index, *decode(record))  # noqa: E731
    batches = examples.enumerate(start=start).map(
        prepare, num_parallel_calls=AUTOTUNE, deterministic=True
    )
    if native_size:
        batches = batch_by_size(batches, batch_size)
    else:
        batches = batches.batch(batch_size, drop_remainder=training)
    batches = batches.prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_optimization.map_parallelization = True
    # Parallelism comes from preparing many elements at once, on threads of
    # the pipeline's own (not the training step's); splitting each small op
    # across threads only adds overhead.
    options.threading.private_threadpool_size = os.cpu_count() or 1
    options.threading.max_intra_op_parallelism = 1
    return batches.with_options(options)
