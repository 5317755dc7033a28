"""Helpers shared by the export, serving-contract and predict tests: a tiny run
directory with a real checkpoint, and encoded test images."""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf import checkpointing, models
from pix2pix_tf.config import build_config


def make_run(workdir: str, seed: int = 1, **overrides):
    """Writes config.json and a training-style checkpoint (ckpt-1) for the tiny preset.

    The generator's batch-norm statistics are moved away from their initial values
    with one training-mode call, so restoring the wrong values would show.
    """
    config = build_config(preset="tiny", workdir=workdir, **overrides)
    config.save(workdir)
    keras.utils.set_random_seed(seed)
    generator = models.build_generator(config)
    discriminator = models.build_discriminator(config)
    images = tf.random.stateless_uniform(
        [2, config.data.image_size, config.data.image_size, 3], seed=[seed, 0], minval=-1.0
    )
    generator(images, training=True)
    # The same checkpoint layout as train.py writes.
    checkpoint = checkpointing.make_checkpoint(
        step=tf.Variable(1, dtype=tf.int64),
        generator=generator,
        discriminator=discriminator,
        generator_optimizer=keras.optimizers.Adam(),
        discriminator_optimizer=keras.optimizers.Adam(),
        iterator=iter(tf.data.Dataset.range(4)),
    )
    checkpointing.make_manager(checkpoint, workdir, keep=3).save(checkpoint_number=1)
    return config, generator


def encoded_image(height: int, width: int, channels: int = 3, fmt: str = "png", seed: int = 0):
    """A smooth random image encoded as PNG or JPEG bytes."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(4, 4, channels)).astype(np.float32)
    pixels = tf.image.resize(coarse, [height, width]).numpy().round().astype(np.uint8)
    if fmt == "jpeg":
        return tf.io.encode_jpeg(pixels).numpy()
    return tf.io.encode_png(pixels).numpy()


def write_image(path: str, height: int, width: int, **kwargs) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fmt = "jpeg" if path.endswith((".jpg", ".jpeg")) else "png"
    with open(path, "wb") as file:
        file.write(encoded_image(height, width, fmt=fmt, **kwargs))
    return path
