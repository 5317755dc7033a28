"""ResNet generator: the authors' PyTorch `resnet_9blocks` (pytorch-CycleGAN-and-pix2pix).

c7s1-ngf, d(2 ngf), d(4 ngf), N residual blocks of 4 ngf filters, u(2 ngf), u(ngf),
c7s1-out_channels with tanh: c7s1-k is a reflection pad of 3 and a 7x7 convolution,
d-k a 3x3 convolution with stride 2, u-k a 3x3 transposed convolution with stride 2, each
followed by --norm and ReLU; a residual block is reflection pad 1, 3x3 convolution, norm,
ReLU, (dropout, as pix2pix's default), reflection pad 1, 3x3 convolution, norm, plus its
input. Strided layers use Keras' "same" padding, which places the taps one pixel from
PyTorch's padding=1 (same receptive field and parameters). Sides must be multiples of 4.
The pieces are shared with pix2pixHD's generator (models/global_local.py).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from pix2pix_tf.configs import choices
from pix2pix_tf.models import blocks, remat


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class ReflectionPad2D(keras.layers.Layer):
    """Pads height and width by `padding` on each side by reflection (PyTorch's ReflectionPad2d)."""

    def __init__(self, padding: int, **kwargs):
        super().__init__(**kwargs)
        self.padding = padding

    def call(self, inputs):
        pad = self.padding
        return tf.pad(inputs, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = 2 * self.padding
        return (
            batch,
            None if height is None else height + grow,
            None if width is None else width + grow,
            channels,
        )

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class ResidualBlock(keras.layers.Layer):
    """x + norm(conv(pad(dropout(relu(norm(conv(pad(x)))))))), 3x3 convolutions, `filters` wide.

    With `recompute` (--remat) the block is recomputed from its input in the backward pass
    (tf.recompute_grad), the dropout mask drawn once outside; with batch norm, whose moving
    statistics a recomputation would update twice, each half (pad, convolution) is.
    """

    def __init__(
        self,
        filters: int,
        norm: str,
        dropout: float = 0.0,
        use_bias: bool = True,
        synchronized: bool = False,
        recompute: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.recompute = recompute
        self.filters, self.norm, self.dropout = filters, norm, dropout
        self.use_bias, self.synchronized = use_bias, synchronized
        dtype = self.dtype_policy
        self.pad = ReflectionPad2D(1, name="pad", dtype=dtype)
        self.conv_1, self.conv_2 = (
            keras.layers.Conv2D(
                filters,
                3,
                kernel_initializer=blocks.kernel_initializer(),
                use_bias=use_bias,
                name=f"conv_{index}",
                dtype=dtype,
            )
            for index in (1, 2)
        )
        self.norm_1 = blocks.normalization(norm, "norm_1", dtype, synchronized)
        self.norm_2 = blocks.normalization(norm, "norm_2", dtype, synchronized)
        self.drop = keras.layers.Dropout(dropout, name="dropout", dtype=dtype) if dropout else None
        for layer in (self.pad, self.conv_1, self.conv_2, self.norm_1, self.norm_2, self.drop):
            if layer is not None:
                # --remat recomputes the block's halves; their parts are not recomputed again.
                layer._remat_mode = None
        # Keras' remat passes `training` as a keyword, which tf.recompute_grad refuses in
        # graphs; the block recomputes its halves itself.
        self._remat_mode = None

    def build(self, input_shape):
        padded = self.pad.compute_output_shape(input_shape)
        for conv, norm in ((self.conv_1, self.norm_1), (self.conv_2, self.norm_2)):
            conv.build(padded)
            norm.build(input_shape)

    def call(self, inputs, training=None):
        # Batch norm stays outside the recomputation, which would update its moving
        # statistics twice.
        batch_norm = self.norm == "batch"

        def half(x, conv, norm, relu):
            x = conv(self.pad(x))
            if batch_norm:
                return x
            x = remat.call_layer(norm, x, training=training)
            return keras.ops.relu(x) if relu else x

        def first(x):
            return half(x, self.conv_1, self.norm_1, relu=True)

        def second(x):
            return half(x, self.conv_2, self.norm_2, relu=False)

        if self.recompute and training and not batch_norm:
            # The whole block is recomputed from its input, so the backward pass keeps
            # only the input (recomputing each half would keep the tensor between them
            # too). The dropout mask is drawn outside: the recomputation multiplies by
            # the same one.
            if self.drop is None:
                return tf.recompute_grad(lambda x: x + second(first(x)))(inputs)
            mask = self.drop(tf.ones_like(inputs), training=training)
            return tf.recompute_grad(lambda x, m: x + second(first(x) * m))(inputs, mask)
        if self.recompute and training:
            first, second = tf.recompute_grad(first), tf.recompute_grad(second)
        x = first(inputs)
        if batch_norm:
            x = keras.ops.relu(remat.call_layer(self.norm_1, x, training=training))
        if self.drop is not None:
            x = remat.call_layer(self.drop, x, training=training)
        x = second(x)
        if batch_norm:
            x = remat.call_layer(self.norm_2, x, training=training)
        return inputs + x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "norm": self.norm,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "synchronized": self.synchronized,
            "recompute": self.recompute,
        }


class Layers:
    """Makes the named layers of the ResNet-style generators for one norm and policy.

    `use_bias` gives the convolutions biases (the output convolutions always have one),
    `sync_batch_norm` computes batch-norm statistics across replicas, and `remat` makes
    the residual blocks recompute themselves in the backward pass (--remat).
    """

    def __init__(
        self,
        *,
        norm: str,
        dtype_policy: str,
        use_bias: bool,
        sync_batch_norm: bool = False,
        remat: bool = False,
    ):
        self.norm = norm
        self.dtype = dtype_policy
        self.use_bias = use_bias
        self.sync = sync_batch_norm
        self.remat = remat

    def _norm_relu(self, x, name: str):
        x = blocks.normalization(self.norm, f"{name}_norm", self.dtype, self.sync)(x)
        return keras.layers.ReLU(name=f"{name}_relu", dtype=self.dtype)(x)

    def c7s1(self, x, filters: int, name: str, output: bool = False):
        """Reflection pad 3 and a 7x7 convolution, then norm and ReLU (or tanh in float32)."""
        x = ReflectionPad2D(3, name=f"{name}_pad", dtype=self.dtype)(x)
        x = keras.layers.Conv2D(
            filters,
            7,
            kernel_initializer=blocks.kernel_initializer(),
            use_bias=self.use_bias or output,
            name=f"{name}_conv",
            dtype=self.dtype,
        )(x)
        if output:
            return keras.layers.Activation("tanh", name=f"{name}_tanh", dtype="float32")(x)
        return self._norm_relu(x, name)

    def down(self, x, filters: int, name: str):
        """(batch, h, w, .) -> (batch, h/2, w/2, filters): 3x3 stride-2 convolution, norm, ReLU."""
        x = self._strided(keras.layers.Conv2D, x, filters, f"{name}_conv")
        return self._norm_relu(x, name)

    def up(self, x, filters: int, name: str):
        """(batch, h, w, .) -> (batch, 2h, 2w, filters): 3x3 stride-2 transposed conv, norm,
        ReLU."""
        x = self._strided(keras.layers.Conv2DTranspose, x, filters, f"{name}_deconv")
        return self._norm_relu(x, name)

    def _strided(self, layer_type, x, filters: int, name: str):
        return layer_type(
            filters,
            3,
            strides=2,
            padding="same",
            kernel_initializer=blocks.kernel_initializer(),
            use_bias=self.use_bias,
            name=name,
            dtype=self.dtype,
        )(x)

    def residual(self, x, count: int, name: str, dropout: float = 0.0):
        for index in range(count):
            x = ResidualBlock(
                x.shape[-1],
                self.norm,
                dropout,
                self.use_bias,
                self.sync,
                self.remat,
                name=f"{name}_{index + 1}",
                dtype=self.dtype,
            )(x)
        return x


def build_resnet(
    *,
    image_hw: tuple[int, int],
    in_channels: int,
    out_channels: int,
    ngf: int = 64,
    residual_blocks: int = 9,
    norm: str = "batch",
    dropout: float = 0.5,
    sync_batch_norm: bool = False,
    remat: bool = False,
    dtype_policy: str = "float32",
    input_shape: tuple | None = None,
) -> keras.Model:
    """The ResNet generator: `input_image` [batch, H, W, in_channels] -> [batch, H, W,
    out_channels] in [-1, 1].

    `residual_blocks` (--resnet_blocks) blocks of 4 `ngf` filters, each with `dropout`
    (0: none). As the reference code, convolutions have a bias only with instance norm
    (batch norm has its own offset). `remat` makes the residual blocks recompute
    themselves in the backward pass (--remat instead recomputes the whole generator in
    segments, models/remat.py, with the blocks' own recomputation off). `input_shape`
    (height, width, channels), where height and width may be None, builds the same
    layers for other sizes (multiples of 4); None means (*image_hw, in_channels).
    """
    make = Layers(
        norm=norm,
        dtype_policy=dtype_policy,
        use_bias=norm == "instance",
        sync_batch_norm=sync_batch_norm,
        remat=remat,
    )
    if input_shape is None:
        input_shape = (*image_hw, in_channels)
    inputs = keras.Input(shape=tuple(input_shape), name="input_image")  # (batch, H, W, C_in)
    x = make.c7s1(inputs, ngf, "input")  # (batch, H, W, ngf)
    for level in range(choices.RESNET_DOWNSAMPLINGS):  # -> (batch, H/4, W/4, 4 ngf)
        x = make.down(x, ngf * 2 ** (level + 1), f"down_{level + 1}")
    x = make.residual(x, residual_blocks, "residual", dropout)
    for level in reversed(range(choices.RESNET_DOWNSAMPLINGS)):  # -> (batch, H, W, ngf)
        x = make.up(x, ngf * 2**level, f"up_{choices.RESNET_DOWNSAMPLINGS - level}")
    outputs = make.c7s1(x, out_channels, "output", output=True)
    return keras.Model(inputs, outputs, name="generator")
