"""Convolutions computed as matmuls of patches over small feature maps.

The U-Net's inner layers have large kernels (4x4x1024x512 = 8.4M weights)
over tiny maps (1x1 to 8x8 at 256x256). There, oneDNN's convolution kernels
on CPU spend their time reordering weights, and its backward-weights kernel
is slow: about 14 ms for a decoder layer with 2x2 inputs, where the same
gradient as one matmul of the extracted 4x4 patches takes about 1 ms
(bfloat16, 2 cores). The weight gradient of a convolution is

    dW[kh, kw, c_in, c_out] = sum over positions p of patch(x)[p, kh, kw, c_in] * dy[p, c_out]

i.e. `patches^T @ dy` with one row per output position. When the number of
those rows (batch x output positions of the small side) is at most the
limits below (measured; they depend on the compute dtype, and on CPUs with AMX
bfloat16 matmuls win over more rows), these layers compute

- Conv2D: the output as `patches(x) @ kernel`, the weight gradient from the
  same patches, and the input gradient as `dy @ kernel^T`, overlap-added;
- Conv2DTranspose: both gradients from the patches of the output gradient,
  and up to `MAX_MATMUL_FORWARD_ROWS` input pixels the output as
  `inputs @ kernel^T` (a 4x4 block per pixel), overlap-added.

Up to `MAX_FLOAT32_ROWS` rows (the U-Net's innermost layers at batch 1: 1x1 to
2x2 maps, 21M of its 54M weights) a layer is bound by reading its weights, not by
arithmetic, so under mixed precision it computes in float32 from the variable itself:
no bfloat16 copy of the kernel each step, no cast of its gradient back, no 16-bit
weight reorders (a 1.05-1.11x faster batch-1 step, measured side by side). Its
output is still the compute dtype.

The generator uses these layers on CPUs only (`runs_on_cpu`); GPUs and TPUs,
where the limits were not measured, keep Keras' layers. The variables are
Keras' own, so checkpoints and exports do not change, and
the values match Keras' layers to float rounding (tests/models/test_conv.py).
`python -m pix2pix_tf.benchmark train --levers` measures the effect on the
whole train step.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# Up to this many patch rows (batch x positions of the small side) the matmuls
# beat oneDNN's kernels on the 2-core CPU machines. Per layer, in bfloat16:
# 1-14 ms faster up to 256 rows, ~1 ms faster at 1024 (transposed
# convolutions), slower beyond; float32 matmuls lose from about 1024 rows.
# (Measured on an AVX512-BF16 machine without AMX; `AMX_LIMITS` below on one with.)
MAX_MATMUL_ROWS = {"bfloat16": 1024, "float16": 1024, "float32": 256}
# The transposed convolution's forward pass as a matmul plus overlap-add:
# 1-2 ms faster per decoder layer up to 256 input pixels in bfloat16, slower
# beyond 64 in float32.
MAX_MATMUL_FORWARD_ROWS = {"bfloat16": 256, "float16": 256, "float32": 64}
# The convolution's forward pass as a matmul: faster up to 64 output
# positions, even at 256, slower beyond.
MAX_CONV_MATMUL_ROWS = {"bfloat16": 256, "float16": 256, "float32": 256}
# On CPUs with AMX (Intel Sapphire Rapids and later), whose bfloat16 matmuls run on the
# tile units, the bfloat16 matmuls win over more rows: the U-Net's encoder_5 (512 rows at
# batch 8, 256x256) and decoder_5 (2048) as well. Float32 and float16 matmuls do not run
# on AMX-BF16 and keep the limits above.
MATMUL_LIMIT_KINDS = ("auto", "default", "amx")
AMX_LIMITS = {
    "MAX_MATMUL_ROWS": {"bfloat16": 2048},
    "MAX_MATMUL_FORWARD_ROWS": {"bfloat16": 2048},
    "MAX_CONV_MATMUL_ROWS": {"bfloat16": 512},
}
# Up to this many rows a layer is bound by reading its weights, not by arithmetic:
# under mixed precision it computes in float32 from the float32 variable itself.
# Measured on the batch-1 train step: 4 rows 1.05-1.11x faster than none, 16 rows
# 1.08x; at batch 8 (8 to 32 rows) within 2% either way.
MAX_FLOAT32_ROWS = 4


_HAS_AMX: bool | None = None  # Read from /proc/cpuinfo once.
_ACTIVE_LIMITS: dict[str, dict[str, int]] | None = None  # matmul_limits("auto") until set.


def has_amx() -> bool:
    """Whether this CPU has AMX bfloat16 tiles (Linux: the amx_bf16 flag of /proc/cpuinfo)."""
    global _HAS_AMX
    if _HAS_AMX is None:
        try:
            with open("/proc/cpuinfo") as cpuinfo:
                flags = next((line for line in cpuinfo if line.startswith("flags")), "")
        except OSError:
            flags = ""
        _HAS_AMX = "amx_bf16" in flags.split()
    return _HAS_AMX


def matmul_limits(kind: str = "auto") -> dict[str, dict[str, int]]:
    """{limit name: {compute dtype: rows}}: the limits above (`default`), with AMX's
    (`amx`), or the ones for this CPU (`auto`)."""
    if kind not in MATMUL_LIMIT_KINDS:
        raise ValueError(f"matmul limits: one of {', '.join(MATMUL_LIMIT_KINDS)}, not {kind!r}")
    limits = {
        "MAX_MATMUL_ROWS": dict(MAX_MATMUL_ROWS),
        "MAX_MATMUL_FORWARD_ROWS": dict(MAX_MATMUL_FORWARD_ROWS),
        "MAX_CONV_MATMUL_ROWS": dict(MAX_CONV_MATMUL_ROWS),
    }
    if kind == "amx" or (kind == "auto" and has_amx()):
        for name, rows in AMX_LIMITS.items():
            limits[name].update(rows)
    return limits


def use_matmul_limits(kind: str) -> None:
    """Makes the layers traced from now on use `matmul_limits(kind)` (the benchmark's
    side-by-side variants; training and inference use `auto`)."""
    global _ACTIVE_LIMITS
    _ACTIVE_LIMITS = matmul_limits(kind)


def _limit(name: str, dtype: str) -> int:
    if _ACTIVE_LIMITS is None:
        use_matmul_limits("auto")
    return _ACTIVE_LIMITS[name].get(dtype, 0)


def _kernel_and_dtype(layer, rows: int):
    """The kernel to compute with and its dtype: the layer's compute dtype, or float32
    (the variable as it is) for weight-bound layers under mixed precision."""
    if layer.compute_dtype != "float32" and rows <= MAX_FLOAT32_ROWS:
        # Keras' own way of reading a variable uncast inside a mixed-precision call.
        with keras.src.backend.AutocastScope(None):
            return tf.convert_to_tensor(layer.kernel), "float32"
    return tf.cast(layer.kernel, layer.compute_dtype), layer.compute_dtype


def runs_on_cpu() -> bool:
    """Whether the model is being built for CPUs (no GPU visible, not under a TPUStrategy).

    The matmul layers are what the CPU measurements support; GPUs and TPUs
    keep Keras' own convolutions.
    """
    if tf.config.list_logical_devices("GPU"):
        return False
    return not isinstance(tf.distribute.get_strategy(), tf.distribute.TPUStrategy)


def _patches(images, kernel_size: int, stride: int):
    """[N, H, W, C] -> [N * H' * W', kh * kw * C] for a 'SAME' convolution."""
    patches = tf.image.extract_patches(
        images,
        sizes=[1, kernel_size, kernel_size, 1],
        strides=[1, stride, stride, 1],
        rates=[1, 1, 1, 1],
        padding="SAME",
    )
    return tf.reshape(patches, [-1, patches.shape[-1]])


def conv2d(inputs, kernel, stride: int):
    """tf.nn.conv2d(..., padding='SAME') as a matmul of patches.

    The forward pass is `patches @ kernel`, and the weight gradient reuses the
    patches: `patches^T @ dy`. The input gradient (the transposed convolution
    of the output gradient) is `dy @ kernel^T` overlap-added for 4x4 kernels
    with stride 2 over even sizes, else TensorFlow's own op.
    """
    kernel_size, _, in_channels, out_channels = kernel.shape
    batch, height, width = inputs.shape[:3]
    output_shape = [batch, -(-height // stride), -(-width // stride), out_channels]
    matmul_input_grad = kernel_size == 4 and stride == 2 and height % 2 == 0 and width % 2 == 0

    @tf.custom_gradient
    def forward(x, w):
        patches = _patches(x, kernel_size, stride)
        y = tf.reshape(tf.matmul(patches, tf.reshape(w, [-1, out_channels])), output_shape)

        def grad(dy):
            if matmul_input_grad:
                dx = _transposed_by_matmul(dy, tf.reshape(w, [-1, out_channels]), in_channels)
            else:
                dx = tf.nn.conv2d_transpose(dy, w, tf.shape(x), strides=stride, padding="SAME")
            dw = tf.matmul(patches, tf.reshape(dy, [-1, out_channels]), transpose_a=True)
            return dx, tf.reshape(dw, kernel.shape)

        return y, grad

    return forward(inputs, kernel)


def _shift(values, axis: int, forward: bool):
    """Moves `values` one step along `axis` (towards higher indices if forward), zero-filled."""
    paddings = [[0, 0]] * len(values.shape)
    paddings[axis] = [1, 0] if forward else [0, 1]
    padded = tf.pad(values, paddings)
    begin = [0] * len(values.shape)
    begin[axis] = 0 if forward else 1
    return tf.slice(padded, begin, values.shape)


def _overlap_add(columns):
    """[N, H, W, 4, 4, C] per-input-pixel 4x4 outputs -> the [N, 2H, 2W, C] sum.

    The transposed 4x4, stride-2, 'SAME' convolution puts input pixel i's
    kernel row k at output row 2i + k - 1. So even output rows 2m take kernel
    row 1 of input row m and kernel row 3 of input row m - 1; odd rows 2m + 1
    take row 2 of input m and row 0 of input m + 1. The same holds for columns.
    """
    batch, height, width, _, _, channels = columns.shape
    even = columns[:, :, :, 1] + _shift(columns[:, :, :, 3], 1, forward=True)
    odd = columns[:, :, :, 2] + _shift(columns[:, :, :, 0], 1, forward=False)
    rows = tf.reshape(tf.stack([even, odd], axis=2), [batch, 2 * height, width, 4, channels])
    even = rows[:, :, :, 1] + _shift(rows[:, :, :, 3], 2, forward=True)
    odd = rows[:, :, :, 2] + _shift(rows[:, :, :, 0], 2, forward=False)
    return tf.reshape(tf.stack([even, odd], axis=3), [batch, 2 * height, 2 * width, channels])


def _transposed_by_matmul(values, kernel_2d, channels: int):
    """The 4x4, stride-2, 'SAME' transposed convolution of [N, H, W, C] `values`.

    `kernel_2d` is the kernel as [4 * 4 * channels, C]: each pixel's 4x4 block
    of outputs is `pixel @ kernel_2d^T`; the blocks are overlap-added in float32.
    """
    columns = tf.matmul(tf.reshape(values, [-1, values.shape[-1]]), kernel_2d, transpose_b=True)
    columns = tf.reshape(tf.cast(columns, tf.float32), [*values.shape[:3], 4, 4, channels])
    return tf.cast(_overlap_add(columns), values.dtype)


def conv2d_transpose(inputs, kernel, output_shape, stride: int, *, matmul_forward: bool):
    """tf.nn.conv2d_transpose(..., padding='SAME') with matmul gradients.

    Both gradients come from the patches of the output gradient: the input
    gradient (a convolution of it) is `patches @ kernel`, the weight gradient
    `patches^T @ inputs`. The forward pass is TensorFlow's own op, or with
    `matmul_forward` (4x4 kernels, stride 2) `inputs @ kernel^T` overlap-added.
    """
    kernel_size, _, out_channels, in_channels = kernel.shape

    @tf.custom_gradient
    def forward(x, w):
        if matmul_forward:
            y = _transposed_by_matmul(x, tf.reshape(w, [-1, in_channels]), out_channels)
        else:
            y = tf.nn.conv2d_transpose(x, w, output_shape, strides=stride, padding="SAME")

        def grad(dy):
            patches = _patches(dy, kernel_size, stride)
            dx = tf.reshape(tf.matmul(patches, tf.reshape(w, [-1, in_channels])), tf.shape(x))
            dw = tf.matmul(patches, tf.reshape(x, [-1, in_channels]), transpose_a=True)
            return dx, tf.reshape(dw, kernel.shape)

        return y, grad

    return forward(inputs, kernel)


def _matmul_applies(layer, rows: int | None, max_rows: int) -> bool:
    return (
        layer.matmul_convs
        and rows is not None
        and rows <= max_rows
        and layer.padding == "same"
        and layer.data_format == "channels_last"
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.strides[0] == layer.strides[1]
        and layer.kernel_size[0] == layer.kernel_size[1]
    )


def _add_bias(layer, outputs):
    if layer.use_bias:
        outputs = outputs + tf.cast(layer.bias, outputs.dtype)
    if layer.activation is not None:
        outputs = layer.activation(outputs)
    return outputs


class _MatmulSwitch:
    """The `matmul_convs` switch of a layer, kept in its config."""

    def __init__(self, *args, matmul_convs: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.matmul_convs = matmul_convs

    def get_config(self):
        return {**super().get_config(), "matmul_convs": self.matmul_convs}


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class Conv2D(_MatmulSwitch, keras.layers.Conv2D):
    """keras.layers.Conv2D, computed as matmuls over small maps."""

    def call(self, inputs):
        stride = self.strides[0]
        batch, height, width = inputs.shape[:3]
        rows = None
        if None not in (batch, height, width):
            rows = batch * -(-height // stride) * -(-width // stride)  # Output positions.
        if not _matmul_applies(self, rows, _limit("MAX_CONV_MATMUL_ROWS", self.compute_dtype)):
            return super().call(inputs)
        kernel, dtype = _kernel_and_dtype(self, rows)
        outputs = conv2d(tf.cast(inputs, dtype), kernel, stride)
        return tf.cast(_add_bias(self, outputs), self.compute_dtype)


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class Conv2DTranspose(_MatmulSwitch, keras.layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose, with matmul gradients (and forward) over small maps."""

    def call(self, inputs):
        batch, height, width = inputs.shape[:3]
        rows = None if None in (batch, height, width) else batch * height * width
        max_rows = _limit("MAX_MATMUL_ROWS", self.compute_dtype)
        if self.output_padding is not None or not _matmul_applies(self, rows, max_rows):
            return super().call(inputs)
        stride = self.strides[0]
        batch, height, width, _ = inputs.shape
        output_shape = [batch, height * stride, width * stride, self.filters]
        kernel, dtype = _kernel_and_dtype(self, rows)
        matmul_forward = (
            rows <= _limit("MAX_MATMUL_FORWARD_ROWS", self.compute_dtype)
            and stride == 2
            and self.kernel_size[0] == 4
        )
        outputs = conv2d_transpose(
            tf.cast(inputs, dtype),
            kernel,
            output_shape,
            stride,
            matmul_forward=matmul_forward,
        )
        return tf.cast(_add_bias(self, outputs), self.compute_dtype)
