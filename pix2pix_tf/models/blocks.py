"""Building blocks shared by the generator and the discriminator.

The two architectures differ only in a few settings, collected in `ArchSpec`:

* `tutorial` reproduces the TensorFlow pix2pix tutorial layer for layer:
  Keras' default LeakyReLU slope (0.3), batch norm at every inner layer
  including the 1x1 bottleneck, and no convolution biases except on the
  output layers.
* `paper` follows the paper and its reference code where the tutorial departs
  from them: LeakyReLU slope 0.2, no normalisation at the U-Net's innermost
  layer (batch norm over a 1x1 map with batch size 1 zeroes the bottleneck),
  and a bias on every convolution that no normalisation layer follows.
"""

from __future__ import annotations

import dataclasses

import keras

from pix2pix_tf.configs import choices
from pix2pix_tf.models import norms

# Weights are drawn from N(0, 0.02), as in the paper (section 6.2).
WEIGHT_STDDEV = 0.02


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    """Architecture details that follow from `--arch`."""

    leaky_relu_slope: float
    # Whether the U-Net's innermost encoder layer is normalised.
    normalize_bottleneck: bool
    # Whether convolutions that no normalisation follows get a bias.
    bias_without_norm: bool
    # Whether the discriminator loss is halved (slows D relative to G).
    halve_discriminator_loss: bool


ARCH_SPECS = {
    # Keras' LeakyReLU default negative_slope is 0.3; the tutorial relies on it.
    "tutorial": ArchSpec(
        leaky_relu_slope=0.3,
        normalize_bottleneck=True,
        bias_without_norm=False,
        halve_discriminator_loss=False,
    ),
    "paper": ArchSpec(
        leaky_relu_slope=0.2,
        normalize_bottleneck=False,
        bias_without_norm=True,
        halve_discriminator_loss=True,
    ),
}


def arch_spec(arch: str) -> ArchSpec:
    choices.check_choice("arch", arch, choices.ARCHS)
    return ARCH_SPECS[arch]


def kernel_initializer(seed: int | None = None) -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(mean=0.0, stddev=WEIGHT_STDDEV, seed=seed)


def normalization(norm: str, name: str, dtype, synchronized: bool = False) -> keras.layers.Layer:
    """Batch norm, or instance norm (group norm with one group per channel).

    `synchronized` batch norm computes its statistics over the global batch,
    across the replicas of a tf.distribute strategy (--sync_batch_norm). Both are
    models/norms.py's: Keras' layers with a fused training pass.
    """
    choices.check_choice("norm", norm, choices.NORMS)
    if norm == "batch":
        return norms.BatchNormalization(name=name, dtype=dtype, synchronized=synchronized)
    # Keras 3 has no InstanceNormalization layer; GroupNormalization with
    # groups=-1 normalises each channel of each image on its own (norms.py's is that
    # layer with a fused training pass).
    return norms.InstanceNormalization(groups=-1, epsilon=1e-5, name=name, dtype=dtype)


def filters_at(level: int, base: int) -> int:
    """Filters double per level up to 8x the base, as in the paper's C64-C512."""
    return base * min(2**level, 8)


def downsample(images):
    """[N, H, W, C] -> [N, ceil(H/2), ceil(W/2), C]: a 3x3 average pool of stride 2 with
    zero padding 1 left out of each mean, as PyTorch's AvgPool2d(3, stride=2, padding=1,
    count_include_pad=False) with which pix2pixHD shrinks its inputs. (TensorFlow's
    "same" pooling pads only below and right, so its windows sit one pixel lower and
    further right for even sides.)"""
    paddings = [[0, 0], [1, 1], [1, 1], [0, 0]]
    total = keras.ops.average_pool(keras.ops.pad(images, paddings), 3, 2, "valid")
    ones = keras.ops.ones_like(images[:1, :, :, :1])
    count = keras.ops.average_pool(keras.ops.pad(ones, paddings), 3, 2, "valid")
    return total / count


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class Downsample(keras.layers.Layer):
    """`downsample` as a layer (the global_local generator's input, the multi-scale
    discriminators' pairs)."""

    def call(self, inputs):
        return downsample(inputs)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        half = [None if side is None else (side + 1) // 2 for side in (height, width)]
        return (batch, *half, channels)
