"""LiteRT int8 that keeps its quality (`export.py --format litert --quantize int8`).

Full-integer quantization gives every activation tensor one int8 scale, calibrated as
the tensor's min/max over representative inputs. Three things decide what is lost:

- **The U-Net's skip concatenations.** LiteRT's int8 CONCATENATION has one scale for
  its inputs and its output, so the converter gives each encoder level's output the
  range of the concatenation, which the decoder's side sets. At the first level that
  range was 18x the encoder output's own (Cityscapes cpu128: [-0.25, 0.66] in a
  [-0.25, 12.0] scale, 19 of the 256 levels), and the finest detail reached the output
  through it. `equalize_skip_ranges` rescales the network, exactly in float, so that
  both sides of every concatenation span the same range: encoder level k's output is
  multiplied by s_k (its normalisation's gamma and beta, or its convolution's kernel
  and bias; LeakyReLU is positively homogeneous), and the two layers that read it,
  the next encoder convolution and the decoder convolution after the concatenation,
  divide the matching input channels of their kernels by s_k. This is cross-layer
  range equalisation (Nagel et al., "Data-Free Quantization Through Weight
  Equalization and Bias Correction", ICCV 2019) applied where LiteRT ties scales;
  LiteRT's converter has no such pass. On the measurement of docs/deploy.md it raised
  int8 from 32.6 to 46.8 dB against the float model (47.2 dB with the sub-pixel
  transposed convolutions of serving/subpixel.py).
- **Per-channel weights**: LiteRT's default for convolutions and transposed
  convolutions (one scale per output channel), kept.
- **Layers kept in float** (`float_layers`): convolutions named by their Keras layer
  (e.g. `output_deconv`) run in float32 between (de)quantize ops, chosen from the
  sensitivity sweep of `python -m pix2pix_tf.benchmark deploy --sensitivity`.

Calibration runs once (TFLiteConverter's calibrate-only mode, as
`tf.lite.experimental.QuantizationDebugger` does) and the calibrated model is then
quantized with `mlir_quantize`, so the sweep quantizes the same calibration many
times. The converter names a fused op's output tensor by all the ops it fused
("a;b;c"), which its denylist cannot match; `calibrate` renames each such tensor to
its Keras layer's name first.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from tensorflow.lite.python import convert
from tensorflow.lite.tools import flatbuffer_utils

from pix2pix_tf.serving import litert

# A fused tensor name's part that names a convolution: the converter's
# "<model>_<n>/<layer>_<n>/convolution" (or conv_transpose, BiasAdd), or one level
# deeper for a convolution inside a layer (a residual block's conv_1) or for the
# sub-pixel convolution (serving/subpixel.py) that replaces a layer.
_LAYER_PART = re.compile(
    r"^[^/]+/([^/]+?)(?:/([^/]+?))?/(?:convolution|conv_transpose|BiasAdd)\d*$"
)


def _layer_name(match: re.Match, known: set[str]) -> str | None:
    """The Keras name of the convolution a `_LAYER_PART` match names ("encoder_2_conv",
    "residual_1/conv_2"), or None when its layer is not one of `known` (the network's
    layers). Tracing suffixes each scope with "_<n>"; the layer's own name decides."""
    outer, inner = match.group(1), match.group(2)
    traced = outer not in known
    if traced:
        outer = re.sub(r"_\d+$", "", outer)
        if outer not in known:
            return None
    if inner is None:
        return outer
    if traced:
        inner = re.sub(r"_\d+$", "", inner)
    return outer if inner == f"{outer}_subpixel" else f"{outer}/{inner}"


def _skip_levels(network: keras.Model) -> list[int]:
    """The encoder levels k whose output a U-Net decoder concatenates (1-based), or []
    for networks without the U-Net's layer names (resnet, global_local: no
    concatenations, LiteRT's int8 ADD rescales each input)."""
    names = {layer.name for layer in network.layers}
    depth = sum(1 for name in names if re.fullmatch(r"encoder_\d+_lrelu", name))
    if depth < 2 or f"decoder_{depth - 1}_skip" not in names:
        return []
    return list(range(1, depth))


def _activation_maxima(network: keras.Model, names: list[str], inputs) -> dict[str, float]:
    probe = keras.Model(network.input, [network.get_layer(name).output for name in names])
    maxima = np.zeros(len(names))
    for images in inputs:
        outputs = probe(images, training=False)
        maxima = np.maximum(maxima, [float(keras.ops.max(keras.ops.abs(o))) for o in outputs])
    return dict(zip(names, maxima, strict=True))


def equalize_skip_ranges(network: keras.Model, inputs: Sequence[np.ndarray]) -> list[dict]:
    """Rescales a U-Net `network` in place (its float outputs unchanged up to rounding)
    so that both inputs of every skip concatenation have the same largest magnitude
    over `inputs` (float32 [1, H, W, C_in]). Returns one record per level: the level,
    the two maxima and the factor. A no-op (returns []) for other generators."""
    levels = _skip_levels(network)
    if not levels:
        return []
    depth = levels[-1] + 1
    encoders = [f"encoder_{k}_lrelu" for k in levels]
    decoders = [f"decoder_{depth - k}_relu" for k in levels]
    maxima = _activation_maxima(network, encoders + decoders, inputs)
    records = []
    for level, encoder, decoder in zip(levels, encoders, decoders, strict=True):
        if maxima[encoder] == 0.0 or maxima[decoder] == 0.0:
            continue  # A dead side: nothing to balance.
        factor = maxima[decoder] / maxima[encoder]
        _scale_output(network, level, factor)
        following = network.get_layer(f"encoder_{level + 1}_conv")
        following.kernel.assign(following.kernel / factor)
        block = depth - level  # decoder_<block>_skip concatenates [decoder, encoder].
        reader = (
            network.get_layer(f"decoder_{block + 1}_deconv")
            if block + 1 < depth
            else network.get_layer("output_deconv")
        )
        decoder_channels = network.get_layer(decoder).output.shape[-1]
        # Conv2DTranspose kernels are [h, w, out, in]; the encoder's channels come last.
        kernel = reader.kernel.numpy()
        kernel[..., decoder_channels:] /= factor
        reader.kernel.assign(kernel)
        records.append(
            {
                "level": level,
                "encoder_max": round(maxima[encoder], 4),
                "decoder_max": round(maxima[decoder], 4),
                "factor": round(factor, 4),
            }
        )
    return records


def _scale_output(network: keras.Model, level: int, factor: float) -> None:
    """Multiplies encoder level `level`'s output by `factor` > 0 through its last affine
    layer: the normalisation's gamma and beta, or the convolution's kernel and bias."""
    names = {layer.name for layer in network.layers}
    if f"encoder_{level}_norm" in names:
        norm = network.get_layer(f"encoder_{level}_norm")
        norm.gamma.assign(norm.gamma * factor)
        norm.beta.assign(norm.beta * factor)
        return
    conv = network.get_layer(f"encoder_{level}_conv")
    conv.kernel.assign(conv.kernel * factor)
    if conv.bias is not None:
        conv.bias.assign(conv.bias * factor)


def _name_layers(model: bytes, known: set[str]) -> tuple[bytes, list[str]]:
    """`model` with each convolution's output tensor name (fused or not) replaced by
    its Keras layer's name, and those names in graph order. Other fused names (constants such as
    a folded bias) keep their first part: a fused name anywhere in an op makes the
    quantizer fuse the op's location, which its denylist does not match either."""
    model_object = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    layers = []
    for subgraph in model_object.subgraphs:
        produced = {index for operator in subgraph.operators for index in operator.outputs}
        produced.update(subgraph.inputs)
        for operator in subgraph.operators:
            for index in operator.outputs:
                tensor = subgraph.tensors[index]
                for part in tensor.name.decode().split(";"):
                    match = _LAYER_PART.match(part)
                    name = None if match is None else _layer_name(match, known)
                    if name is not None:
                        if name not in layers:
                            tensor.name = name.encode()
                            layers.append(name)
                            # Its constant inputs (kernel, folded bias) get the same
                            # name: the quantizer fuses their locations into the op's.
                            for input_index in operator.inputs:
                                if input_index >= 0 and input_index not in produced:
                                    subgraph.tensors[input_index].name = name.encode()
                        break
        for index, tensor in enumerate(subgraph.tensors):
            name = tensor.name.decode()
            if ";" in name:
                tensor.name = f"{name.split(';')[0]}_{index}".encode()
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model_object)), layers


class Calibration:
    """A network's calibrated LiteRT model, quantized to int8 as often as asked."""

    def __init__(self, saved_model_dir: str, representative: Sequence[np.ndarray], known: set[str]):
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([images] for images in representative)
        converter._experimental_calibrate_only = True  # As QuantizationDebugger does.
        self.model, self.layers = _name_layers(converter.convert(), known)

    def quantize(self, float_layers: Sequence[str] = ()) -> bytes:
        """The int8 model with `float_layers` (names from `self.layers`) in float32."""
        unknown = [name for name in float_layers if name not in self.layers]
        if unknown:
            raise ValueError(
                f"--float_layers {','.join(unknown)}: not a convolution of this generator; "
                f"choose among {', '.join(self.layers)}."
            )
        return convert.mlir_quantize(self.model, denylisted_nodes=list(float_layers) or None)


def calibrate(network: keras.Model, spec: tf.TensorSpec, representative) -> Calibration:
    """`network` (already equalised) calibrated on `representative` inputs.

    Raises litert.UnsupportedOpError naming an op LiteRT's int8 builtins cannot express.
    """
    with tempfile.TemporaryDirectory() as directory:
        litert.saved_model(network, spec, directory)
        try:
            known = {layer.name for layer in network.layers}
            return Calibration(directory, representative, known)
        except Exception as error:  # ConverterError and friends: name the op if any.
            raise litert.UnsupportedOpError(litert.conversion_failure(error, "int8")) from None
