"""PatchGAN discriminator (paper section 3.2.2 and appendix 6.1.2).

The input image and the real or generated target are concatenated along
channels and mapped to a grid of logits, one per overlapping patch. With
`discriminator_layers` = n strided layers the patch (receptive field) is
16, 34, 70, 142 or 286 pixels for n = 1..5; n = 3 is the paper's 70x70
PatchGAN (C64-C128-C256-C512), and n = 0 is the 1x1 PixelGAN.
"""

from __future__ import annotations

import re

import keras

from pix2pix_tf.configs import sizes
from pix2pix_tf.models import blocks
from pix2pix_tf.models import remat as remat_lib

# Stride-1 layers end the PatchGAN: one C(ndf * 2^n) layer and the 1-channel output.
_KERNEL = 4
# The names of the activations feature matching compares (see `feature_layers`).
_FEATURE_LAYER = re.compile(r"layer_\d+_lrelu")


def receptive_field(layers: int) -> int:
    """Receptive field in pixels of one output logit for `layers` strided layers."""
    if layers == 0:
        return 1
    field = 1
    field += _KERNEL - 1  # Output convolution, stride 1.
    field += _KERNEL - 1  # Last feature convolution, stride 1.
    for _ in range(layers):
        field = (field - 1) * 2 + _KERNEL
    return field


def output_size(image_size: int, layers: int) -> int:
    """Side of the logit grid: S / 2^n, then two 4x4 valid convolutions on 1-padded maps."""
    if layers == 0:
        return image_size
    return image_size // 2**layers - 2


def output_hw(image_size: int | str | tuple, layers: int) -> tuple[int, int]:
    """(P_h, P_w) of the logit grid for a square (int), "HxW" or (H, W) --image_size."""
    height, width = sizes.parse_size(image_size)
    return output_size(height, layers), output_size(width, layers)


def build_patchgan(
    *,
    image_hw: tuple[int, int],
    in_channels: int,
    out_channels: int,
    ndf: int = 64,
    layers: int = 3,
    norm: str = "batch",
    arch: str = "paper",
    sync_batch_norm: bool = False,
    dtype_policy: str = "float32",
    name: str = "discriminator",
) -> keras.Model:
    """Builds the PatchGAN with `layers` strided layers (--discriminator_layers) and `ndf`
    filters in the first.

    Inputs `input_image` [batch, H, W, in_channels] and `target_image` [batch, H, W,
    out_channels], in [-1, 1], where (H, W) is `image_hw` (models/multiscale.py builds
    the coarser scales); output float32 logits [batch, P_h, P_w, 1] with (P_h, P_w) =
    output_hw(image_hw, layers). `norm` is batch or instance, `arch` paper or tutorial
    (models/blocks.py), `sync_batch_norm` batch-norm statistics across replicas,
    `dtype_policy` the hidden layers' compute precision. `feature_layers(model)` lists
    its intermediate activations.

    Raises ValueError naming --discriminator_layers and --image_size if the patches do
    not fit `image_hw`.
    """
    model_name = name  # `name` below names each layer.
    spec = blocks.arch_spec(arch)
    height, width = image_hw
    if min(output_hw((height, width), layers)) < 1 or height % 2**layers or width % 2**layers:
        raise ValueError(
            f"--discriminator_layers {layers} ({receptive_field(layers)}x{receptive_field(layers)} "
            f"patches) needs --image_size >= {4 * 2**layers} on each side, each a multiple of "
            f"{2**layers}; got {sizes.format_size(height, width)}."
        )
    dtype, sync = dtype_policy, sync_batch_norm
    slope = spec.leaky_relu_slope

    def conv(filters, kernel, strides, padding, normalized, name):
        return keras.layers.Conv2D(
            filters,
            kernel,
            strides=strides,
            padding=padding,
            kernel_initializer=blocks.kernel_initializer(),
            use_bias=spec.bias_without_norm and not normalized,
            name=name,
            dtype=dtype,
        )

    input_image = keras.Input(shape=(height, width, in_channels), name="input_image")
    target_image = keras.Input(shape=(height, width, out_channels), name="target_image")
    x = keras.layers.Concatenate(name="pair", dtype=dtype)([input_image, target_image])
    # (batch, H, W, C_in + C_out)

    if layers == 0:
        # PixelGAN: 1x1 convolutions, (batch, H, W, ndf) -> (batch, H, W, 2 ndf).
        x = conv(ndf, 1, 1, "valid", False, "layer_1_conv")(x)
        x = keras.layers.LeakyReLU(slope, name="layer_1_lrelu", dtype=dtype)(x)
        x = conv(2 * ndf, 1, 1, "valid", True, "layer_2_conv")(x)
        x = blocks.normalization(norm, "layer_2_norm", dtype, sync)(x)
        x = keras.layers.LeakyReLU(slope, name="layer_2_lrelu", dtype=dtype)(x)
        x = keras.layers.Conv2D(
            1, 1, kernel_initializer=blocks.kernel_initializer(), name="logits_conv", dtype=dtype
        )(x)
    else:
        # Strided layer i: (batch, H/2^i, ...) -> (batch, H/2^(i+1), W/2^(i+1), f_i);
        # the first is not normalised.
        for level in range(layers):
            name = f"layer_{level + 1}"
            normalized = level > 0
            x = conv(blocks.filters_at(level, ndf), _KERNEL, 2, "same", normalized, f"{name}_conv")(
                x
            )
            if normalized:
                x = blocks.normalization(norm, f"{name}_norm", dtype, sync)(x)
            x = keras.layers.LeakyReLU(slope, name=f"{name}_lrelu", dtype=dtype)(x)
        # Stride 1: (batch, H/2^n, ...) -> pad -> (batch, H/2^n - 1, W/2^n - 1, f_n).
        name = f"layer_{layers + 1}"
        x = keras.layers.ZeroPadding2D(name=f"{name}_pad", dtype=dtype)(x)
        x = conv(blocks.filters_at(layers, ndf), _KERNEL, 1, "valid", True, f"{name}_conv")(x)
        x = blocks.normalization(norm, f"{name}_norm", dtype, sync)(x)
        x = keras.layers.LeakyReLU(slope, name=f"{name}_lrelu", dtype=dtype)(x)
        # Logits: pad -> (batch, H/2^n - 2, W/2^n - 2, 1).
        x = keras.layers.ZeroPadding2D(name="logits_pad", dtype=dtype)(x)
        x = keras.layers.Conv2D(
            1,
            _KERNEL,
            strides=1,
            kernel_initializer=blocks.kernel_initializer(),
            name="logits_conv",
            dtype=dtype,
        )(x)
    logits = keras.layers.Activation("linear", name="logits", dtype="float32")(x)
    return keras.Model([input_image, target_image], logits, name=model_name)


def feature_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The PatchGAN's LeakyReLU layers, in order: every activation but the logits.

    n + 1 of them for n strided layers (n strided, one stride 1), as the
    intermediate outputs of pix2pixHD's NLayerDiscriminator; 2 for the PixelGAN.
    """
    return [layer for layer in model.layers if _FEATURE_LAYER.fullmatch(layer.name)]


def with_features(model: keras.Model, *, remat: bool = False) -> keras.Model:
    """The PatchGAN `model` answering [feature_1, ..., feature_k, logits].

    Built over the same layers (no new variables, the same checkpoint), so the
    logits are the model's own. With `remat` (--remat) its training call recomputes
    each layer in the backward pass (models/remat.py).
    """
    outputs = [layer.output for layer in feature_layers(model)] + [model.output]
    name = f"{model.name}_features"
    if remat:
        segments = remat_lib.discriminator_segments([layer.name for layer in model.layers])
        return remat_lib.SegmentedModel(model.inputs, outputs, segments=segments, name=name)
    return keras.Model(model.inputs, outputs, name=name)
