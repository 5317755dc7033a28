"""Decoding served images to the generator's channels and bit depth, and encoding its
outputs as PNG, with TensorFlow ops only (the serving graph runs them in TF Serving).

Inputs (any JPEG, PNG, GIF or BMP) are converted to the model's input channels:

- to 3 channels (RGB): a grayscale image is replicated into R, G and B (lossless);
  gray + alpha keeps the gray; RGBA drops the alpha (it is not composited).
- to 1 channel (grayscale): a pixel with R = G = B keeps that value exactly (a gray
  image stored as RGB loses nothing); any other pixel becomes its ITU-R BT.601 luma
  0.299 R + 0.587 G + 0.114 B, rounded to the model's levels (Pillow's convert("L")
  up to rounding); alpha is dropped.

and to the model's input bit depth:

- 8 bits: decoded as uint8, normalised as v / 127.5 - 1. A 16-bit PNG is read at its
  high byte (TensorFlow's PNG decoder drops the low one).
- 16 bits: decoded as float32 by tf.io.decode_image, which scales a 16-bit PNG by
  1 / 65535 and an 8-bit image by 1 / 255, then normalised as 2 v - 1. (Decoding a
  JPEG as uint16 would scale by 256, not 257, so it is not used.)

Outputs are PNGs with the generator's output channels (1: grayscale, 3: RGB), 8-bit
((x + 1) * 127.5) or 16-bit ((x + 1) * 32767.5), rounded and clipped.
"""

from __future__ import annotations

import tensorflow as tf

# BT.601 luma weights (they sum to 1: a gray pixel keeps its value).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def pixel_range(bits: int) -> float:
    """The largest decoded pixel value for `bits`: 255 (uint8 values) or 1.0 (float32)."""
    return 255.0 if bits == 8 else 1.0


def decode(encoded: tf.Tensor, channels: int, bits: int) -> tf.Tensor:
    """Encoded JPEG/PNG/GIF/BMP -> [H, W, channels]: uint8 (8 bits) or float32 in
    [0, 1] (16 bits), converted as the module docstring says."""
    if channels == 3 and bits == 8:
        # The path of every export before channels and bit depths: kept op for op.
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    else:
        # channels=0: decode_image refuses channels=1 for GIF and BMP.
        dtype = tf.uint8 if bits == 8 else tf.float32
        image = tf.io.decode_image(encoded, channels=0, dtype=dtype, expand_animations=False)
        image = convert_channels(image, channels, bits)
    image.set_shape([None, None, channels])
    return image


def convert_channels(image: tf.Tensor, channels: int, bits: int) -> tf.Tensor:
    """[H, W, 1-4] (gray, gray + alpha, RGB, RGBA) -> [H, W, channels] of the same dtype."""
    count = tf.shape(image)[2]
    # Gray (+ alpha) replicated into R, G, B; RGB(A) as it is, without alpha.
    indices = tf.where(count >= 3, tf.constant([0, 1, 2]), tf.constant([0, 0, 0]))
    rgb = tf.gather(image, indices, axis=2)
    if channels == 3:
        return rgb
    red, green, blue = tf.unstack(tf.cast(rgb, tf.float32), axis=2)
    levels = 2.0**bits - 1.0
    weights = LUMA_WEIGHTS
    luma = (weights[0] * red + weights[1] * green + weights[2] * blue) * (
        levels / pixel_range(bits)
    )
    luma = tf.round(luma) * (pixel_range(bits) / levels)
    gray = tf.where(tf.logical_and(tf.equal(red, green), tf.equal(green, blue)), red, luma)
    return tf.cast(gray[..., None], image.dtype)


def normalise(pixels: tf.Tensor, bits: int) -> tf.Tensor:
    """Decoded pixels (as float32) -> [-1, 1]: v / 127.5 - 1 (8 bits), 2 v - 1 (16 bits)."""
    return pixels / (pixel_range(bits) / 2.0) - 1.0


def to_pixels(generated: tf.Tensor, bits: int) -> tf.Tensor:
    """[-1, 1] -> float32 PNG sample values: (x + 1) * 127.5 or (x + 1) * 32767.5."""
    return (generated + 1.0) * ((2.0**bits - 1.0) / 2.0)


def encode_png(pixels: tf.Tensor, bits: int, compression: int) -> tf.Tensor:
    """float32 [H, W, 1 or 3] sample values -> an 8- or 16-bit PNG (rounded, clipped)."""
    dtype = tf.uint8 if bits == 8 else tf.uint16
    pixels = tf.clip_by_value(tf.round(pixels), 0.0, 2.0**bits - 1.0)
    return tf.io.encode_png(tf.cast(pixels, dtype), compression=compression)
