"""U-Net generator (paper section 3.2.1 and appendix 6.1.1).

Encoder C64-C128-C256-C512-...-C512 (4x4 convolutions, stride 2), decoder
CD512-CD512-CD512-C512-C256-C128-C64 (4x4 transposed convolutions, stride 2,
dropout D on the first three blocks), skip connections between mirrored
layers, and a final transposed convolution to `out_channels` (3) channels with tanh. At
256x256 the encoder has 8 layers and ends at a 1x1 bottleneck.
"""

from __future__ import annotations

import keras

from pix2pix_tf.configs import sizes
from pix2pix_tf.models import blocks, conv


def build_unet(
    *,
    image_hw: tuple[int, int],
    in_channels: int,
    out_channels: int,
    ngf: int = 64,
    depth: int,
    norm: str = "batch",
    dropout: float = 0.5,
    arch: str = "paper",
    sync_batch_norm: bool = False,
    matmul_convs: bool = True,
    dtype_policy: str = "float32",
    input_shape: tuple | None = None,
) -> keras.Model:
    """Builds the U-Net generator.

    The model maps `input_image` [batch, H, W, in_channels] in [-1, 1], (H, W) =
    `image_hw`, to an image [batch, H, W, out_channels] in [-1, 1]. `depth` is the
    number of encoder layers, resolved by configs/sizes.py's `unet_depth` (log2 of the
    smaller side by default); each side of `image_hw` must be a multiple of 2^depth.
    `ngf` is the first layer's filters, `norm` batch or instance, `dropout` the rate of
    the first three decoder blocks (0: none), `arch` paper or tutorial (models/blocks.py).
    `sync_batch_norm` computes batch-norm statistics over the global batch across
    replicas; `matmul_convs` uses models/conv.py's convolutions (matmul gradients over
    small maps) on CPU, Keras' own elsewhere. `dtype_policy` sets the compute precision
    of the hidden layers (e.g. "mixed_bfloat16"); the output is always float32.
    `input_shape` (height, width, channels), where height and width may be None, builds
    the same layers (same weights, same checkpoint layout) for other sizes: the network
    is fully convolutional, so any height and width that are multiples of 2^depth work.
    None means (*image_hw, in_channels).

    Raises ValueError naming --unet_depth or --image_size if the depth does not fit
    `image_hw`.
    """
    spec = blocks.arch_spec(arch)
    # The same rules and messages as config validation (configs/sizes.py).
    sizes.check_unet_depth_bounds(image_hw, depth)
    sizes.check_image_size(image_hw, depth)
    height, width = image_hw
    dtype, sync = dtype_policy, sync_batch_norm
    # Keras' own layers, or ours with matmul gradients over small maps (models/conv.py).
    if matmul_convs and conv.runs_on_cpu():
        conv2d, conv2d_transpose = conv.Conv2D, conv.Conv2DTranspose
    else:
        conv2d, conv2d_transpose = keras.layers.Conv2D, keras.layers.Conv2DTranspose
    initializer = blocks.kernel_initializer

    if input_shape is None:
        input_shape = (height, width, in_channels)
    inputs = keras.Input(shape=tuple(input_shape), name="input_image")  # (batch, H, W, C_in)
    x = inputs

    # Encoder: level i maps (batch, H/2^i, W/2^i, .) to (batch, H/2^(i+1), W/2^(i+1), f_i).
    skips = []
    for level in range(depth):
        name = f"encoder_{level + 1}"
        innermost = level == depth - 1
        normalized = level > 0 and (spec.normalize_bottleneck or not innermost)
        x = conv2d(
            blocks.filters_at(level, ngf),
            4,
            strides=2,
            padding="same",
            kernel_initializer=initializer(),
            use_bias=spec.bias_without_norm and not normalized,
            name=f"{name}_conv",
            dtype=dtype,
        )(x)
        if normalized:
            x = blocks.normalization(norm, f"{name}_norm", dtype, sync)(x)
        x = keras.layers.LeakyReLU(spec.leaky_relu_slope, name=f"{name}_lrelu", dtype=dtype)(x)
        skips.append(x)

    # Decoder: level i maps (batch, H/2^(i+2), ...) to (batch, H/2^(i+1), W/2^(i+1), 2 f_i)
    # after concatenating the encoder's output at the same resolution.
    for block, level in enumerate(reversed(range(depth - 1))):
        name = f"decoder_{block + 1}"
        x = conv2d_transpose(
            blocks.filters_at(level, ngf),
            4,
            strides=2,
            padding="same",
            kernel_initializer=initializer(),
            use_bias=False,
            name=f"{name}_deconv",
            dtype=dtype,
        )(x)
        x = blocks.normalization(norm, f"{name}_norm", dtype, sync)(x)
        if block < 3 and dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"{name}_dropout", dtype=dtype)(x)
        x = keras.layers.ReLU(name=f"{name}_relu", dtype=dtype)(x)
        x = keras.layers.Concatenate(name=f"{name}_skip", dtype=dtype)([x, skips[level]])

    # Output: (batch, H, W, C_out) in [-1, 1], computed in float32.
    x = keras.layers.Conv2DTranspose(
        out_channels,
        4,
        strides=2,
        padding="same",
        kernel_initializer=initializer(),
        name="output_deconv",
        dtype=dtype,
    )(x)
    outputs = keras.layers.Activation("tanh", name="generated_image", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="generator")
