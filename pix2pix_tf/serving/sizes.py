"""Sizes at serving: the generator's training size and downsampling factor, its fully
convolutional copy, and how inputs reach the network's size (reflection padding or
resizing) and come back."""

from __future__ import annotations

import keras
import tensorflow as tf


def generator_input_size(generator: keras.Model) -> tuple[int, int]:
    """The training size (H, W) of a generator built for [None, H, W, C], C 1 or 3."""
    shape = tuple(generator.inputs[0].shape)
    if len(shape) != 4 or shape[1] is None or shape[2] is None or shape[3] not in (1, 3):
        raise ValueError(f"expected a generator with input [None, H, W, C], C 1 or 3, got {shape}.")
    return int(shape[1]), int(shape[2])


def downsampling_factor(generator: keras.Model) -> int:
    """How much the generator's convolutions shrink its input: 2^unet_depth for the U-Net.

    Inputs whose sides are multiples of it go through every stride-2 layer and come
    back at their own size.
    """
    factor = 1
    for layer in generator.layers:
        # Transposed convolutions are not keras.layers.Conv2D subclasses.
        if isinstance(layer, keras.layers.Conv2D):
            factor *= max(layer.strides)
    return factor


def fully_convolutional(generator: keras.Model) -> keras.Model:
    """The same layers and weights as `generator`, on inputs [None, None, None, C]."""
    source = generator.inputs[0]
    inputs = keras.Input(shape=(None, None, source.shape[-1]), dtype=source.dtype)
    return keras.models.clone_model(
        generator, input_tensors=inputs, clone_function=lambda layer: layer
    )


def reflect_pad(image: tf.Tensor, multiple: int) -> tf.Tensor:
    """[h, w, C] -> [h', w', C], h' and w' the next multiples of `multiple`.

    Padded at the bottom and the right by reflection without repeating the edge, as
    tf.pad's REFLECT (and numpy's "reflect") do, and further back and forth when the
    padding is longer than the image, down to a 1-pixel side (repeated).
    """
    size = tf.shape(image)[:2]
    target = -(-size // multiple) * multiple
    rows = _mirrored_indices(size[0], target[0])
    columns = _mirrored_indices(size[1], target[1])
    return tf.gather(tf.gather(image, rows, axis=0), columns, axis=1)


def _mirrored_indices(length: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """0, 1, ..., length - 1, length - 2, ..., 1, 0, 1, ... (`target` indices)."""
    period = tf.maximum(2 * length - 2, 1)
    index = tf.range(target) % period
    return tf.where(index < length, index, period - index)


def resize(image: tf.Tensor, size, method: str) -> tf.Tensor:
    """Resizes [H, W, C] float32 to `size` ((height, width) or an int32 [2] tensor).

    Skips the work when the image already has that size (the common case), and
    antialiases only when shrinking, where it matters; enlarging without it gives the
    same result for bilinear and is several times faster.
    """
    if isinstance(size, tuple):
        size = tf.constant(size, tf.int32)
    current = tf.shape(image)[:2]
    return tf.case(
        [
            (tf.reduce_all(tf.equal(current, size)), lambda: image),
            (
                tf.reduce_any(tf.less(size, current)),
                lambda: tf.image.resize(image, size, method=method, antialias=True),
            ),
        ],
        default=lambda: tf.image.resize(image, size, method=method, antialias=False),
        exclusive=False,
    )
