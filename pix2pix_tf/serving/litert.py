"""The generator as a LiteRT (TFLite) flatbuffer, and the metadata it carries.

Converted from a SavedModel of the float `generate` contract (TFLiteConverter's
`from_keras_model` fails on Keras 3 models; Keras' own `model.export(format="litert")`
takes the same route) with TFLite builtin ops only: a graph that would need the Flex
(Select TF ops) delegate, which the `ai-edge-litert` runtime does not ship, fails the
export naming the op. Quantization (`QUANTIZATIONS`):

- none: float32 weights and activations.
- float16: float16 weights (half the file), dequantized to float32 when loaded.
- dynamic_int8: int8 weights (a quarter of the file); activations stay float, and
  matmuls/convolutions quantize them on the fly.
- int8: int8 weights (per output channel) and activations, their ranges calibrated
  on a representative dataset (the run's own training inputs), through
  serving/quantization.py (calibrated once; the layers named in `float_layers` kept
  in float32); the input and output stay float32 (the converter adds the
  (de)quantize ops), so every variant has the same contract.

The export's metadata (a JSON object) is stored in the flatbuffer's `metadata` table
under `METADATA_NAME`, so a .tflite file carries its contract wherever it is copied.
"""

from __future__ import annotations

import json
import re
import tempfile

import keras
import numpy as np
import tensorflow as tf

METADATA_NAME = "pix2pix_export"
FILE_NAME = "model.tflite"


class UnsupportedOpError(ValueError):
    """The graph has an op the format cannot express; the message names it."""


def saved_model(network: keras.Model, spec: tf.TensorSpec, directory: str) -> None:
    archive = keras.export.ExportArchive()
    archive.track(network)
    archive.add_endpoint(
        "serve", lambda images: network(images, training=False), input_signature=[spec]
    )
    archive.write_out(directory, verbose=False)


def convert(
    network: keras.Model,
    spec: tf.TensorSpec,
    quantize: str = "none",
) -> bytes:
    """`network` over inputs of `spec` as a .tflite flatbuffer, quantized as `quantize`
    (none, float16 or dynamic_int8; int8 is serving/quantization.py's).

    Raises UnsupportedOpError naming an op LiteRT's builtins cannot express.
    """
    if quantize == "int8":
        raise ValueError("--quantize int8 is converted by serving/quantization.py.")
    with tempfile.TemporaryDirectory() as directory:
        saved_model(network, spec, directory)
        converter = tf.lite.TFLiteConverter.from_saved_model(directory)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        try:
            return converter.convert()
        except Exception as error:  # ConverterError and friends: name the op if there is one.
            raise UnsupportedOpError(conversion_failure(error, quantize)) from None


def conversion_failure(error: Exception, quantize: str) -> str:
    text = str(error)
    match = re.search(r"'tf\.(\w+)' op is neither a custom op nor a flex op", text)
    if match is None:
        match = re.search(r"'tfl?\.(\w+)' op (?:is not supported|.*quantiz)", text)
    variant = "" if quantize == "none" else f" (--quantize {quantize})"
    if match is not None:
        return (
            f"--format litert{variant}: LiteRT's builtin ops cannot express the TensorFlow "
            f"op {match.group(1)} in this generator; nothing was written. Use --format "
            "saved_model or onnx."
        )
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"--format litert{variant}: conversion failed ({lines[0] if lines else error!r})."


def embed_metadata(model: bytes, record: dict) -> bytes:
    """The flatbuffer `model` with `record` (JSON) in its metadata table."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model_object = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(record, sort_keys=True).encode(), np.uint8)
    model_object.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME.encode()
    entry.buffer = len(model_object.buffers) - 1
    model_object.metadata = [*(model_object.metadata or []), entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model_object))


def read_metadata(model: bytes) -> dict | None:
    """The record `embed_metadata` stored, or None (not a pix2pix export, or not TFLite)."""
    from tensorflow.lite.python import schema_py_generated as schema

    try:
        root = schema.Model.GetRootAs(model, 0)
        for index in range(root.MetadataLength()):
            entry = root.Metadata(index)
            if entry.Name() == METADATA_NAME.encode():
                data = root.Buffers(entry.Buffer()).DataAsNumpy()
                return json.loads(bytes(data).decode())
    except Exception:  # Arbitrary bytes make the flatbuffer reader fail in many ways.
        return None
    return None
