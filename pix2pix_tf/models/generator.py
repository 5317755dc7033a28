"""U-Net generator (paper section 3.2.1 and appendix 6.1.1).

Encoder C64-C128-C256-C512-...-C512 (4x4 convolutions, stride 2), decoder
CD512-CD512-CD512-C512-C256-C128-C64 (4x4 transposed convolutions, stride 2,
dropout D on the first three blocks), skip connections between mirrored
layers, and a final transposed convolution to --output_channels (3) channels with tanh. At 256x256
the encoder has 8 layers and ends at a 1x1 bottleneck.
"""

from __future__ import annotations

import keras

from pix2pix_tf.configs import sizes
from pix2pix_tf.models import blocks, conv


def unet_depth(config) -> int:
    """Number of encoder layers: the config's, or log2 of the smaller side (configs/sizes.py)."""
    return sizes.unet_depth(config.data.image_size, config.model.unet_depth)


def build_unet_generator(
    config, *, dtype_policy: str = "float32", input_shape: tuple | None = None
) -> keras.Model:
    """Builds the U-Net generator for `config` (a pix2pix_tf.configs.Config).

    The model maps `input_image` [batch, H, W, input_channels] in [-1, 1] (H x W
    the config's --image_size) to an image [batch, H, W, output_channels] in
    [-1, 1]. `dtype_policy` sets
    the compute precision of the hidden layers (e.g. "mixed_bfloat16"); the
    output is always float32.
    `input_shape` (height, width, channels), where height and width may be
    None, builds the same layers (same weights, same checkpoint layout) for
    other sizes: the network is fully convolutional, so any height and width
    that are multiples of 2 ** unet_depth(config) work. None means the
    training size.
    """
    model_config = config.model
    spec = blocks.arch_spec(model_config.arch)
    height, width = sizes.parse_size(config.data.image_size)
    depth = unet_depth(config)
    norm, ngf, dtype = model_config.norm, model_config.ngf, dtype_policy
    sync = config.train.sync_batch_norm
    # Keras' own layers, or ours with matmul gradients over small maps (models/conv.py).
    if config.train.matmul_convs and conv.runs_on_cpu():
        conv2d, conv2d_transpose = conv.Conv2D, conv.Conv2DTranspose
    else:
        conv2d, conv2d_transpose = keras.layers.Conv2D, keras.layers.Conv2DTranspose
    initializer = blocks.kernel_initializer

    if input_shape is None:
        input_shape = (height, width, config.data.input_channels)
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
        if block < 3 and model_config.dropout > 0:
            x = keras.layers.Dropout(model_config.dropout, name=f"{name}_dropout", dtype=dtype)(x)
        x = keras.layers.ReLU(name=f"{name}_relu", dtype=dtype)(x)
        x = keras.layers.Concatenate(name=f"{name}_skip", dtype=dtype)([x, skips[level]])

    # Output: (batch, H, W, C_out) in [-1, 1], computed in float32.
    x = keras.layers.Conv2DTranspose(
        config.data.output_channels,
        4,
        strides=2,
        padding="same",
        kernel_initializer=initializer(),
        name="output_deconv",
        dtype=dtype,
    )(x)
    outputs = keras.layers.Activation("tanh", name="generated_image", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="generator")
