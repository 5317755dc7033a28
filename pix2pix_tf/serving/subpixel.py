"""Transposed convolutions as sub-pixel convolutions, for the LiteRT int8 export.

A LiteRT export takes any H and W, so a Keras Conv2DTranspose becomes a TRANSPOSE_CONV
whose output shape is computed at run time (SHAPE, STRIDED_SLICE, MUL, PACK), and
LiteRT's CPU delegate, XNNPACK, leaves such a node to the reference kernels. At
128x128 the int8 U-Net ran in 31 ms that way against 7 ms once converted at a fixed
size (docs/deploy.md). A stride-2 "same" transposed convolution with a k x k kernel
(k = 2, 3, 4) is exactly a 3x3 "same" convolution to 4x the filters followed by a
depth-to-space of block 2: output pixel (2m + d_h, 2n + d_w) reads inputs at offsets
-1, 0, +1 from (m, n), one kernel tap each, so each phase (d_h, d_w) is a slice of the
3x3 kernel's output channels (the taps a phase does not use are zero). Both ops
infer their shapes from the input, so XNNPACK takes them at any size. The price is
9/4 of the transposed convolution's weights and multiply-adds for k = 4 (the zero
taps): the int8 U-Net's file grows from 10.1 to 18.0 MB while its latency falls from
29.1 to 3.5 ms (cpu128, 128x128, 2 threads, side by side in one process with a second
job on the machine; on the idle machine the benchmark's int8 went from 4.8 to 1.8 ms,
docs/deploy.md). The float32 and float16 exports are not rewritten: they gained
nothing (float32) or less than the doubled file costs (float16: 32.6 -> 24.3 ms,
20.0 -> 35.8 MB).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


class DepthToSpace(keras.layers.Layer):
    """[N, H, W, 4 C] -> [N, 2 H, 2 W, C] (tf.nn.depth_to_space, block 2)."""

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, 2)


class FoldedNorm(keras.layers.Layer):
    """The identity, where a batch norm was folded into the convolution before it (it
    takes the norm's call arguments)."""

    def call(self, inputs, training=None, mask=None):
        return inputs


def _rewritable(layer) -> bool:
    if type(layer) is not keras.layers.Conv2DTranspose:
        return False
    config = layer.get_config()
    kernel = tuple(config["kernel_size"])
    return (
        tuple(config["strides"]) == (2, 2)
        and config["padding"] == "same"
        and kernel[0] == kernel[1]
        and kernel[0] in (2, 3, 4)
        and tuple(config["dilation_rate"]) == (1, 1)
        and config.get("output_padding") is None
        and config["activation"] == "linear"
        and config["data_format"] == "channels_last"
    )


def _taps(size: int) -> dict[tuple[int, int], int]:
    """{(phase d, kernel tap a): 3x3 index u}: output 2m + d reads input m + (u - 1)
    through tap a. TensorFlow's "same" transposed convolution of stride 2 pads the
    forward convolution by (size - 2) // 2 before."""
    before = (size - 2) // 2
    return {
        (phase, tap): (phase + before - tap) // 2 + 1
        for phase in (0, 1)
        for tap in range(size)
        if (phase + before - tap) % 2 == 0
    }


def subpixel_kernel(kernel: np.ndarray) -> np.ndarray:
    """A Conv2DTranspose kernel [k, k, out, in] as the 3x3 kernel [3, 3, in, 4 out] of
    the equivalent convolution, output channels phase-major as depth_to_space reads
    them (phase = 2 d_h + d_w)."""
    size, _, filters, channels = kernel.shape
    result = np.zeros((3, 3, channels, 4 * filters), kernel.dtype)
    taps = _taps(size)
    for (phase_h, tap_h), u in taps.items():
        for (phase_w, tap_w), v in taps.items():
            phase = 2 * phase_h + phase_w
            result[u, v, :, phase * filters : (phase + 1) * filters] = kernel[tap_h, tap_w].T
    return result


def _folded_norms(network: keras.Model) -> dict[str, keras.layers.Layer]:
    """{transposed convolution's name: the batch norm that alone reads its output}.

    A batch norm in inference is a per-channel affine map, which folds into the
    sub-pixel convolution's kernel and bias (LiteRT's converter folds it into a
    TRANSPOSE_CONV itself, but cannot see through the depth-to-space)."""
    consumers: dict[int, list] = {}
    for layer in network.layers:
        for node in layer._inbound_nodes:  # Keras' functional graph (no public accessor).
            for tensor in node.input_tensors:
                consumers.setdefault(id(tensor), []).append(layer)
    folded = {}
    for layer in network.layers:
        if not _rewritable(layer):
            continue
        readers = consumers.get(id(layer.output), [])
        if (
            len(readers) == 1
            and isinstance(readers[0], keras.layers.BatchNormalization)
            and not readers[0].get_config().get("synchronized", False)
            and readers[0].get_config()["axis"] in (-1, 3, [3], [-1])
        ):
            folded[layer.name] = readers[0]
    return folded


def _affine(norm: keras.layers.Layer) -> tuple[np.ndarray, np.ndarray]:
    """(a, c): the inference batch norm as x * a + c per channel."""
    variance = norm.moving_variance.numpy()
    gamma = norm.gamma.numpy() if norm.gamma is not None else np.ones_like(variance)
    beta = norm.beta.numpy() if norm.beta is not None else np.zeros_like(variance)
    scale = gamma / np.sqrt(variance + norm.epsilon)
    return scale, beta - norm.moving_mean.numpy() * scale


def rewrite(network: keras.Model) -> keras.Model:
    """A copy of `network` with each stride-2 "same" Conv2DTranspose replaced by a
    3x3 Conv2D and a DepthToSpace under the same name (a batch norm that alone reads
    it folded in, and a FoldedNorm in its place), and the weights carried over;
    `network` itself is returned when it has none."""
    if not any(_rewritable(layer) for layer in network.layers):
        return network
    folded = _folded_norms(network)
    norm_names = {norm.name for norm in folded.values()}

    def clone(layer):
        if layer.name in norm_names:
            return FoldedNorm(name=layer.name, dtype=layer.dtype_policy)
        if not _rewritable(layer):
            return layer.__class__.from_config(layer.get_config())
        return keras.Sequential(
            [
                keras.layers.Conv2D(
                    4 * layer.filters,
                    3,
                    padding="same",
                    use_bias=layer.use_bias or layer.name in folded,
                    dtype=layer.dtype_policy,
                    name=f"{layer.name}_subpixel",
                ),
                DepthToSpace(dtype=layer.dtype_policy, name=f"{layer.name}_depth_to_space"),
            ],
            name=layer.name,
        )

    copy = keras.models.clone_model(network, clone_function=clone)
    for layer in network.layers:
        if not layer.weights or layer.name in norm_names:
            continue  # Inputs, activations, concatenations; folded norms.
        target = copy.get_layer(layer.name)
        if not _rewritable(layer):
            target.set_weights(layer.get_weights())
            continue
        kernel = subpixel_kernel(layer.kernel.numpy())
        bias = layer.bias.numpy() if layer.use_bias else np.zeros(layer.filters, kernel.dtype)
        if layer.name in folded:
            scale, shift = _affine(folded[layer.name])
            kernel = kernel * np.tile(scale, 4)
            bias = bias * scale + shift
        weights = [kernel]
        if layer.use_bias or layer.name in folded:
            weights.append(np.tile(bias, 4).astype(kernel.dtype))
        target.layers[0].set_weights(weights)
    return copy
