"""The FCN-score's segmentation network: trained on real photos, applied to generated ones.

The paper scores generated Cityscapes photos with an off-the-shelf FCN-8s trained on
real photos. No such weights can be fetched here, so the project trains its own
segmenter on the real training photos of the dataset, with labels recovered from the
colour label maps (`cityscapes_labels.colors_to_labels`), and calibrates it by scoring
the real val photos too: the "ground truth" row of the paper's Table 1.

    python -m pix2pix_tf.segmentation --dataset cityscapes --image_size 128

writes `checkpoints/segmenter/cityscapes-128/` (weights, its config, TensorBoard logs);
rerunning resumes. `--image_size 64x128` trains on 2:1 photos into `synthetic-64x128/`.
`evaluate.py` finds it there by dataset and image size.

Its command (pix2pix_tf/cli/segmentation.py) imports this module after the flags are
parsed, so `--help` and flag errors answer without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys

import keras
import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf import files
from pix2pix_tf.configs import sizes
from pix2pix_tf.data import cityscapes_labels, prepare
from pix2pix_tf.data import pipeline as input_pipeline
from pix2pix_tf.data.prepared import PreparedDataset
from pix2pix_tf.errors import one_line
from pix2pix_tf.evaluation.options import SEGMENTER_ROOT, SegmenterConfig

__all__ = ["SEGMENTER_ROOT", "SegmenterConfig", "build_segmenter", "load_segmenter"]

WEIGHTS_FILE = "segmenter.weights.h5"
CONFIG_FILE = "segmenter_config.json"


class DamagedSegmenterError(ValueError):
    """A segmenter folder whose weights or config cannot be read; the message names the
    file and the command that trains it again."""


def segmenter_dir(dataset: str, image_size: int | str, root: str = SEGMENTER_ROOT) -> str:
    """`<root>/<dataset>-<N>` for a square size (as before non-square sizes), else
    `<root>/<dataset>-<H>x<W>`."""
    height, width = sizes.parse_size(image_size)
    return os.path.join(root, f"{dataset}-{sizes.format_size(height, width)}")


def build_segmenter(config: SegmenterConfig) -> keras.Model:
    """A small U-Net: photo in [-1, 1] -> per-pixel logits over the 19 classes."""

    height, width = sizes.parse_size(config.image_size)
    if height % 2**config.depth or width % 2**config.depth:
        raise ValueError(
            f"--image_size {config.image_size}: both sides must be multiples of "
            f"2^--depth = {2**config.depth}."
        )
    inputs = keras.Input(shape=(height, width, 3), name="photo")
    x = inputs
    skips = []
    for level in range(config.depth):
        # (bs, height / 2**level, width / 2**level, filters * 2**level)
        x = _conv_block(x, config.filters * 2**level)
        skips.append(x)
        x = keras.layers.MaxPooling2D()(x)
    # (bs, height / 2**depth, width / 2**depth, filters * 2**depth)
    x = _conv_block(x, config.filters * 2**config.depth)
    for level in reversed(range(config.depth)):
        # (bs, height / 2**level, width / 2**level, filters * 2**level)
        x = keras.layers.Conv2DTranspose(config.filters * 2**level, 2, strides=2)(x)
        x = keras.layers.Concatenate()([x, skips[level]])
        x = _conv_block(x, config.filters * 2**level)
    # (bs, height, width, num_classes)
    logits = keras.layers.Conv2D(cityscapes_labels.NUM_CLASSES, 1, name="logits")(x)
    return keras.Model(inputs, logits, name="segmenter")


def _conv_block(x, filters: int):

    for _ in range(2):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    return x


def segmenter_data_config(
    config: SegmenterConfig, base: config_lib.DataConfig | None = None
) -> config_lib.DataConfig:
    """The pix2pix data config for the segmenter: photos left (A), labels right (B).

    `base` carries other data settings (data_dir, synthetic sizes); by default the
    dataset's own defaults.
    """
    if base is None:
        base = config_lib.build_config(dataset=config.dataset).data
    image_size = sizes.format_size(*sizes.parse_size(config.image_size))
    return dataclasses.replace(
        base,
        dataset=config.dataset,
        image_size=image_size,
        load_size=sizes.default_load_size(image_size),
        direction="AtoB",
    )


def photo_label_dataset(
    config: SegmenterConfig,
    dataset: PreparedDataset,
    data_config: config_lib.DataConfig,
    split: str,
    training: bool,
) -> tf.data.Dataset:
    """(photo in [-1, 1], int32 labels with IGNORE) batches from the prepared `dataset`
    (prepared for `data_config`, whose training options apply)."""

    batches = input_pipeline.build_dataset(
        dataset,
        split,
        training=training,
        batch_size=config.batch_size,
        seed=config.seed,
        **data_config.training_input(),
    )
    return batches.map(
        lambda photos, label_maps: (photos, cityscapes_labels.colors_to_labels(label_maps)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def compile_segmenter(model: keras.Model, config: SegmenterConfig) -> None:

    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, config.steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=cityscapes_labels.IGNORE
        ),
        # Keras' accuracy metrics cannot skip ignored pixels; MeanIoU can.
        metrics=[
            keras.metrics.MeanIoU(
                num_classes=cityscapes_labels.NUM_CLASSES,
                sparse_y_pred=False,
                ignore_class=cityscapes_labels.IGNORE,
                name="mean_iou",
            ),
        ],
    )


def train_segmenter(
    config: SegmenterConfig,
    root: str = SEGMENTER_ROOT,
    data_config: config_lib.DataConfig | None = None,
) -> str:
    """Trains (or resumes) the segmenter; returns its directory."""

    if config.steps % config.steps_per_epoch:
        raise ValueError("--steps must be a multiple of --steps_per_epoch.")
    directory = segmenter_dir(config.dataset, config.image_size, root)
    weights_path = os.path.join(directory, WEIGHTS_FILE)
    if os.path.exists(weights_path):
        print(f"Segmenter already trained: {weights_path}")
        return directory
    data_config = segmenter_data_config(config, data_config)
    dataset = prepare.prepare(data_config)
    keras.utils.set_random_seed(config.seed)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, CONFIG_FILE), "w") as file:
        json.dump(dataclasses.asdict(config), file, indent=2)
    model = build_segmenter(config)
    compile_segmenter(model, config)
    model.fit(
        photo_label_dataset(config, dataset, data_config, "train", training=True),
        epochs=config.steps // config.steps_per_epoch,
        shuffle=False,  # The input pipeline shuffles.
        steps_per_epoch=config.steps_per_epoch,
        validation_data=photo_label_dataset(config, dataset, data_config, "val", training=False),
        # The whole val split, without Keras warning that the finite dataset ran out.
        validation_steps=math.ceil(dataset.num_examples("val") / config.batch_size),
        callbacks=[
            # Resumes an interrupted run from its last finished epoch.
            keras.callbacks.BackupAndRestore(os.path.join(directory, "backup")),
            keras.callbacks.TensorBoard(os.path.join(directory, "logs")),
        ],
        verbose=2 if not sys.stdout.isatty() else "auto",
    )
    # Written aside then renamed: a present weights file means a finished segmenter.
    partial = os.path.join(directory, "partial." + WEIGHTS_FILE)
    with files.atomic_path(weights_path, temporary=partial) as temporary:
        model.save_weights(temporary)
    return directory


def load_segmenter(dataset: str, image_size: int | str, root: str = SEGMENTER_ROOT) -> keras.Model:
    """Loads a trained segmenter, or says which command trains it (FileNotFoundError
    when there is none, DamagedSegmenterError when its files cannot be read)."""
    directory = segmenter_dir(dataset, image_size, root)
    weights_path = os.path.join(directory, WEIGHTS_FILE)
    if not os.path.exists(weights_path):
        height, width = sizes.parse_size(image_size)
        raise FileNotFoundError(
            f"{weights_path}: no trained segmenter for the FCN-score of {dataset} at "
            f"{height}x{width}. Train it with:\n  python -m pix2pix_tf.segmentation "
            f"--dataset {dataset} --image_size {sizes.format_size(height, width)}"
        )
    config_path = os.path.join(directory, CONFIG_FILE)
    try:
        with open(config_path) as file:
            config = SegmenterConfig(**json.load(file))
        model = build_segmenter(config)
    except (OSError, ValueError, TypeError) as error:
        raise _damaged(directory, config_path, error, dataset, image_size) from None
    try:
        model.load_weights(weights_path)
    except (OSError, ValueError) as error:
        raise _damaged(directory, weights_path, error, dataset, image_size) from None
    return model


def _damaged(directory, path, error, dataset, image_size) -> DamagedSegmenterError:
    reason = getattr(error, "strerror", None) or one_line(error)
    height, width = sizes.parse_size(image_size)
    return DamagedSegmenterError(
        f"{path}: the FCN-score's segmenter is damaged ({reason}); delete {directory} "
        f"and train it again with: python -m pix2pix_tf.segmentation --dataset {dataset} "
        f"--image_size {sizes.format_size(height, width)} (or pass --fcn off)."
    )
