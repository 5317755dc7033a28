"""Helpers shared by the export, serving-contract and predict tests: a tiny run
directory with a real checkpoint, and encoded test images."""

from __future__ import annotations

import io
import os

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from pix2pix_tf import configs as config_lib
from pix2pix_tf.configs import build_config
from pix2pix_tf.data import prepare
from pix2pix_tf.training import distribute
from pix2pix_tf.training.checkpoints import make_checkpoint
from pix2pix_tf.training.step import build_train_state


def make_run(
    workdir: str,
    seed: int = 1,
    checkpoints: tuple[int, ...] = (1,),
    output_gain: float = 1.0,
    **overrides,
):
    """Writes config.json and checkpoints (ckpt-1) for the tiny preset, as train.py does.

    The train state, checkpoint and manager are built by the code train.py uses; the
    generator's batch-norm statistics are moved away from their initial values with
    one training-mode call, so restoring the wrong values would show. `output_gain`
    scales the output layer's kernel: a freshly initialised generator's images are
    nearly flat grey, a gain of 20 makes them textured, so resizing shows.
    """
    config = build_config(preset="tiny", workdir=workdir, **overrides)
    config.save(workdir)
    keras.utils.set_random_seed(seed)
    state = build_train_state(config, total_steps=max(checkpoints))
    generator = state.generator
    height, width = config_lib.image_hw(config.data)
    channels = config.data.input_channels
    images = tf.random.stateless_uniform([2, height, width, channels], seed=[seed, 0], minval=-1.0)
    generator(images, training=True)
    output_layer = generator.get_layer("output_deconv")
    kernel, *rest = output_layer.get_weights()
    output_layer.set_weights([kernel * output_gain, *rest])
    checkpoint = make_checkpoint(state)
    manager = distribute.WorkerCheckpointManager(checkpoint, workdir, keep=3)
    for number in checkpoints:
        state.step.assign(number)
        manager.save(checkpoint_number=number)
    return config, generator


def make_prepared_run(root) -> tuple[str, object]:
    """A tiny textured run in `root`/run with its synthetic data prepared under
    `root`/tfrecords (the demo's val inputs): (workdir, config)."""
    workdir = os.path.join(str(root), "run")
    config, _ = make_run(workdir, output_gain=20.0, data_dir=os.path.join(str(root), "tfrecords"))
    prepare.prepare(config.data)
    return workdir, config


def make_resnet_run(
    workdir: str, generator: str = "resnet", output_layer: str = "output_conv", seed: int = 2
):
    """A tiny resnet (or global_local) run (4 filters, 2 residual blocks, instance norm)
    with textured outputs; returns its config."""
    config = build_config(
        preset="tiny", workdir=workdir, generator=generator, ngf=4, resnet_blocks=2, norm="instance"
    )
    config.save(workdir)
    keras.utils.set_random_seed(seed)
    state = build_train_state(config, total_steps=1)
    state.generator(tf.random.stateless_uniform([2, 64, 64, 3], seed=[seed, 0], minval=-1.0))
    layer = state.generator.get_layer(output_layer)
    kernel, *rest = layer.get_weights()
    # A fresh output layer gives nearly flat images; random weights make them textured.
    layer.set_weights([np.random.default_rng(seed).normal(0.0, 0.3, kernel.shape), *rest])
    checkpoint = make_checkpoint(state)
    state.step.assign(1)
    distribute.WorkerCheckpointManager(checkpoint, workdir, keep=1).save(checkpoint_number=1)
    return config


def truncate_checkpoint(prefix: str) -> str:
    """Cuts a checkpoint's data file in half, as a crash or full disk can; returns it."""
    path = prefix + ".data-00000-of-00001"
    with open(path, "r+b") as file:
        file.truncate(os.path.getsize(path) // 2)
    return path


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


# What ImageOps.exif_transpose does for each EXIF orientation.
EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def exif_image(pixels: np.ndarray, orientation: int, fmt: str = "JPEG", byte_order="MM"):
    """`pixels` encoded by Pillow with an EXIF Orientation tag (and a Make tag before it),
    its TIFF header in `byte_order` MM (big-endian, Pillow's default) or II."""
    exif = Image.Exif()
    exif.endian = {"MM": ">", "II": "<"}[byte_order]
    exif[0x010F] = "pix2pix-tf test"  # Make: an IFD0 entry before Orientation.
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    options = {"quality": 95} if fmt == "JPEG" else {}
    Image.fromarray(pixels).save(buffer, format=fmt, exif=exif.tobytes(), **options)
    return buffer.getvalue()


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
