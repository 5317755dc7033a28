"""One prepared record -> the decoded images of its A and B sides.

A record holds one side-by-side image (A left, B right) or two images (A, B), each
a JPEG or PNG with 1 or 3 channels and 8 or 16 bits (data/datasets/images.py). Each
side is read with its SideFormat: the channels the run asks for (gray replicated to
RGB; gray stored as RGB to one channel by the channel mean, exact for R = G = B) and
its bit depth (8 bits: uint8 pixels; 16 bits: float32 in [0, 1] from the PNG's 16
bits). data/formats.py checks beforehand that no colour image is read as gray.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from pix2pix_tf.data.datasets import base


@dataclasses.dataclass(frozen=True)
class SideFormat:
    """How one side (A or B) is read: 1 or 3 channels; 8 bits (uint8 pixels) or
    16 (float32 in [0, 1] from the PNG's 16 bits)."""

    channels: int = 3
    bits: int = 8


def parse(serialized: tf.Tensor, side_by_side: bool) -> dict[str, tf.Tensor]:
    """One serialized record -> {image names: encoded bytes, "key": bytes}."""
    names = (base.IMAGE,) if side_by_side else (base.IMAGE_A, base.IMAGE_B)
    spec = {name: tf.io.FixedLenFeature([], tf.string) for name in (*names, base.KEY)}
    return tf.io.parse_single_example(serialized, spec)


_DEFAULT_FORMATS = (SideFormat(), SideFormat())


def _decode(data: tf.Tensor, bits: int) -> tf.Tensor:
    """A JPEG or PNG (1 or 3 channels, 8 or 16 bits) -> [height, width, 3]: uint8, or
    float32 in [0, 1] for 16 bits (exact v / 65535 and v / 255; decoding a JPEG to
    uint16 would scale by 256)."""
    dtype = tf.float32 if bits == 16 else tf.uint8
    return tf.io.decode_image(data, channels=3, dtype=dtype, expand_animations=False)


def _to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """[h, w, 3] -> [h, w, channels]: one channel is the mean (exact for R = G = B)."""
    if channels == 3:
        return image
    gray = tf.reduce_mean(tf.cast(image, tf.float32), axis=-1, keepdims=True)
    return tf.cast(tf.round(gray), tf.uint8) if image.dtype == tf.uint8 else gray


def decode_pair(
    features: dict[str, tf.Tensor], side_formats: tuple[SideFormat, SideFormat] = _DEFAULT_FORMATS
) -> tuple[tf.Tensor, tf.Tensor]:
    """Parsed features -> (A, B) [height, width, channels] as `side_formats` say:
    uint8 (8 bits) or float32 in [0, 1] (16 bits).

    A side-by-side image of odd width loses its middle column, so both halves
    have the same width.
    """
    format_a, format_b = side_formats
    if base.IMAGE in features:
        image = _decode(features[base.IMAGE], max(format_a.bits, format_b.bits))
        width = tf.shape(image)[1]
        half = width // 2
        a, b = image[:, :half], image[:, width - half :]
    else:
        a = _decode(features[base.IMAGE_A], format_a.bits)
        b = _decode(features[base.IMAGE_B], format_b.bits)
    return _to_channels(a, format_a.channels), _to_channels(b, format_b.channels)
