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

Sizes are HEIGHTxWIDTH (config_lib.image_hw). A pair whose aspect differs from
the size is, with `--resize_mode cover` (the default), scaled to cover it and
cropped (at random in training, in the centre for evaluation), never squashed;
`squash` resizes each side on its own. Pairs of the size's aspect (every square
pair of a square run) come out the same either way.

A seed gives the same batches whatever the parallelism. `--cache_decoded` keeps
decoded training images in memory instead of decoding them every epoch (see
cache.py).
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf.configs import choices, sizes
from pix2pix_tf.data import cache as input_cache
from pix2pix_tf.data import datasets, formats, registry, streams
from pix2pix_tf.data.records import SideFormat, decode_pair, parse, side_formats

__all__ = ["SideFormat", "build_dataset", "decode_pair", "parse", "side_formats"]
from pix2pix_tf.data.datasets import base

AUTOTUNE = tf.data.AUTOTUNE


def resolve(data_config: config_lib.DataConfig) -> config_lib.DataConfig:
    """Fills in the direction, load size and bit depths if the config leaves them to
    defaults (the bit depths from the prepared data, see data/formats.py)."""
    if data_config.direction is None:
        info = registry.dataset_info(data_config.dataset)
        data_config = dataclasses.replace(data_config, direction=info.natural_direction)
    if data_config.load_size is None:
        load_size = sizes.format_size(*config_lib.load_hw(data_config))
        data_config = dataclasses.replace(data_config, load_size=load_size)
    # Also checks the channels, should the data have changed since training.
    kinds = formats.read_kinds(datasets.prepared_dir(data_config))
    data_config, _ = formats.resolve(data_config, kinds)
    return data_config


def _read_only_builder(data_config: config_lib.DataConfig):
    import tensorflow_datasets as tfds

    directory = datasets.prepared_dir(data_config)
    if not os.path.exists(os.path.join(directory, "dataset_info.json")):
        raise FileNotFoundError(
            f"{directory}: the {data_config.dataset} dataset is not prepared. Run "
            f"`python -m pix2pix_tf.prepare --dataset {data_config.dataset}` "
            "(train.py does it by itself)."
        )
    return tfds.builder_from_directory(directory)


def _split_info(data_config: config_lib.DataConfig, split: str):
    builder = _read_only_builder(data_config)
    if split not in builder.info.splits:
        raise ValueError(
            f"The {data_config.dataset} dataset has no {split!r} split; it has "
            f"{', '.join(sorted(builder.info.splits))}."
        )
    return builder, builder.info.splits[split]


def num_examples(data_config: config_lib.DataConfig, split: str) -> int:
    return _split_info(data_config, split)[1].num_examples


def split_files(data_config: config_lib.DataConfig, split: str) -> tuple[list[str], bool]:
    """(sorted shard paths, whether examples are side-by-side pairs)."""
    shards = split_shards(data_config, split)
    return [f"{shards.directory}/{name}" for name in shards.names], shards.side_by_side


def identity(data_config: config_lib.DataConfig, split: str = "train") -> dict:
    """What identifies a prepared split for a resumed run: the builder's name and
    version, and the split's examples, bytes and shard lengths (JSON values).

    Not where it lives: neither the data_dir nor a folder dataset's source path
    (which names its builder config).
    """
    builder, split_info = _split_info(data_config, split)
    return {
        "builder": f"{builder.info.name} {builder.info.version}",
        split: {
            "examples": int(split_info.num_examples),
            "bytes": int(split_info.num_bytes),
            "shard_lengths": [int(length) for length in split_info.shard_lengths],
        },
    }


def split_shards(data_config: config_lib.DataConfig, split: str) -> streams.Shards:
    builder, split_info = _split_info(data_config, split)
    return streams.Shards(
        directory=os.fspath(builder.data_path),
        names=tuple(split_info.filenames),
        lengths=tuple(int(length) for length in split_info.shard_lengths),
        side_by_side=base.IMAGE in builder.info.features,
    )


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


def preprocess_train(a, b, key, data_config: config_lib.DataConfig):
    """Random jitter and mirroring, the same for both halves -> float32 [-1, 1].

    Each half is mirrored (or not), resized to load_size (bilinear) and cropped
    to image_size at the same random offsets. Mirroring comes first, on the
    small uint8 image, which is cheaper than after resizing and gives the same
    distribution of crops.

    Args:
      a, b: the decoded halves (decode_pair; their sizes may differ).
      key: [2] int64 stateless random key (see jitter_key).
      data_config: a config with load_size set (see resolve).
    """
    size = config_lib.image_hw(data_config)
    load_size = config_lib.load_hw(data_config) if data_config.random_jitter else size
    random = tf.random.stateless_uniform([3], seed=key)
    mirror = data_config.random_mirror & (random[2] < 0.5)

    def jitter(image):
        if data_config.random_mirror:
            image = tf.cond(mirror, lambda: tf.reverse(image, axis=[1]), lambda: image)
        # Scaled to [-1, 1] before resizing (float resizing is faster than
        # uint8), resized to cover [load_h, load_w, 3] (exactly that for pairs
        # of its aspect), then the [h, w, 3] crop at the same relative offsets
        # for both halves.
        resized = _cover(image, load_size, data_config.resize_mode)
        room = [resized[axis] - size[axis] for axis in (0, 1)]
        top, left = (
            tf.minimum(
                tf.cast(random[axis] * tf.cast(room[axis] + 1, tf.float32), tf.int32), room[axis]
            )
            for axis in (0, 1)
        )
        return _scaled_crop(image, resized, top, left, size)

    return jitter(a), jitter(b)


def preprocess_eval(a, b, data_config: config_lib.DataConfig):
    """Resize (to cover, then the centre crop) -> float32 [-1, 1] [height, width, C] each."""
    size = config_lib.image_hw(data_config)

    def fit(image):
        resized = _cover(image, size, data_config.resize_mode)
        top, left = ((resized[axis] - size[axis]) // 2 for axis in (0, 1))
        return _scaled_crop(image, resized, top, left, size)

    return fit(a), fit(b)


def preprocess_native(a, b, data_config: config_lib.DataConfig):
    """Evaluation at the pairs' own size: scaled to [-1, 1], not resized.

    The target half is resized to the input half's size where the two differ, so
    that the generated image (at the input's size) can be scored against it.
    """
    a, b = _scale(a), _scale(b)
    inputs, targets = select_direction(a, b, data_config.direction)
    size = tf.shape(inputs)[:2]
    targets = tf.cond(
        tf.reduce_all(tf.equal(tf.shape(targets)[:2], size)),
        lambda: targets,
        lambda: _resize(targets, size),
    )
    return select_direction(inputs, targets, data_config.direction)


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
    data_config: config_lib.DataConfig,
    split: str,
    *,
    training: bool,
    batch_size: int,
    seed: int = 0,
    start_step: int = 0,
    input_context: tf.distribute.InputContext | None = None,
    with_keys: bool = False,
    native_size: bool = False,
) -> tf.data.Dataset:
    """Batches of (input, target[, key]) from the prepared split.

    input/target are float32 [batch, height, width, channels] in [-1, 1] (image_hw;
    input_channels / output_channels), chosen by data_config.direction; keys are
    the source file names. With an input_context, each input pipeline reads its
    own shards (or, with fewer shards than pipelines, every n-th record) and
    batches per replica. Training starts after the first `start_step` global
    batches of `batch_size` (a resumed run's step): the same batches from there on
    as a run that started at 0. With native_size (evaluation only), the pairs keep
    their own size (preprocess_native) and each batch holds pairs of one size
    (batch_by_size).
    """
    if native_size and training:
        raise ValueError("native_size is an evaluation mode; training crops image_size.")
    data_config = resolve(data_config)
    shards = split_shards(data_config, split)
    pipelines, pipeline, replicas = 1, 0, 1
    if input_context is not None:
        pipelines, pipeline = input_context.num_input_pipelines, input_context.input_pipeline_id
        replicas = input_context.num_replicas_in_sync // pipelines
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    if batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1 per replica, got {batch_size}.")
    # The elements this pipeline has produced: each step takes one batch per replica it feeds.
    start = start_step * batch_size * replicas if training else 0
    read_as = side_formats(data_config)

    def decode(serialized):
        features = parse(serialized, shards.side_by_side)
        return (*decode_pair(features, read_as), features[base.KEY])

    def finish(index, a, b, key):
        if training:
            a, b = preprocess_train(a, b, jitter_key(seed, pipeline, index), data_config)
        elif native_size:
            a, b = preprocess_native(a, b, data_config)
        else:
            a, b = preprocess_eval(a, b, data_config)
        inputs, targets = select_direction(a, b, data_config.direction)
        return (inputs, targets, key) if with_keys else (inputs, targets)

    cached = training and data_config.cache_decoded
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
                shuffle_buffer=data_config.shuffle_buffer,
                start=start,
            )
        else:
            examples = streams.evaluation_records(shards, pipelines, pipeline)
        prepare = lambda index, record: finish(index, *decode(record))  # noqa: E731
    dataset = examples.enumerate(start=start).map(
        prepare, num_parallel_calls=AUTOTUNE, deterministic=True
    )
    if native_size:
        dataset = batch_by_size(dataset, batch_size)
    else:
        dataset = dataset.batch(batch_size, drop_remainder=training)
    dataset = dataset.prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_optimization.map_parallelization = True
    # Parallelism comes from preparing many elements at once, on threads of
    # the pipeline's own (not the training step's); splitting each small op
    # across threads only adds overhead.
    options.threading.private_threadpool_size = os.cpu_count() or 1
    options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options)
