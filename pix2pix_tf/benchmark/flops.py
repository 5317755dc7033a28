"""Analytic FLOP count of a pix2pix train step.

Convention (stated with every number printed from it): only convolutions and
transposed convolutions are counted, a multiply-add is 2 FLOPs, and a layer's
training cost is 3x its forward cost (forward, gradient with respect to the
input, gradient with respect to the weights). One train step runs the
generator once and the discriminator twice (on the real and on the generated
pair). Normalisation, activations, losses and the optimizer update are left
out; they are a small fraction of the work and mostly memory-bound.
"""

from __future__ import annotations

import keras

CONVENTION = (
    "conv + transposed-conv multiply-adds x2, forward x3 for forward+backward; "
    "generator once, discriminator twice per step"
)


def conv_forward_flops(model: keras.Model, batch_size: int) -> int:
    """Forward FLOPs of the model's convolutions for one batch."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            # Each input pixel is spread over a kernel-sized patch of the output.
            _, height, width, in_channels = layer.input.shape
            kernel_height, kernel_width = layer.kernel_size
            total += height * width * in_channels * kernel_height * kernel_width * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, height, width, _ = layer.output.shape
            in_channels = layer.input.shape[-1]
            kernel_height, kernel_width = layer.kernel_size
            total += height * width * layer.filters * kernel_height * kernel_width * in_channels
    return 2 * batch_size * total


def train_step_flops(generator: keras.Model, discriminator: keras.Model, batch_size: int) -> int:
    """FLOPs of one train step under the module's convention."""
    forward = conv_forward_flops(generator, batch_size)
    forward += 2 * conv_forward_flops(discriminator, batch_size)
    return 3 * forward
