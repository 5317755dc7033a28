"""The generator as an ONNX graph (float32), and the metadata it carries.

Converted with tf2onnx's `from_function` over the inference call with an explicit
input signature (`tf2onnx.convert.from_keras` does not work on Keras 3 models; Keras'
`model.export(format="onnx")` uses the same `from_function` route). The export's
metadata (a JSON object) is stored in the model's `metadata_props` under
`METADATA_NAME`, so an .onnx file carries its contract wherever it is copied.
ONNX Runtime, TensorRT and OpenVINO read the file.
"""

from __future__ import annotations

import json
import logging
import re

import keras
import tensorflow as tf

METADATA_NAME = "pix2pix_export"
FILE_NAME = "model.onnx"
# ONNX opset 17 (ONNX Runtime >= 1.12, TensorRT 8.6, OpenVINO 2022.3 read it).
OPSET = 17
INPUT_NAME = "images"
OUTPUT_NAME = "generated"


class UnsupportedOpError(ValueError):
    """The graph has an op ONNX (through tf2onnx) cannot express; the message names it."""


class _UnsupportedOps(logging.Handler):
    """Collects the ops tf2onnx logs as unsupported or failed (it may go on and write a
    graph without them)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.ops: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        # "Tensorflow op [name: Type] is not supported", or a handler that failed (tf2onnx
        # logs it and writes a broken graph): "Failed to convert node ... Type.version_N".
        match = re.search(r"Tensorflow op \[[^\]]*: (\w+)\] is not supported", message)
        match = match or re.search(r"Failed to convert node .*bound method (\w+)\.version", message)
        if match is not None and match.group(1) not in self.ops:
            self.ops.append(match.group(1))


def convert(network: keras.Model, spec: tf.TensorSpec, record: dict) -> bytes:
    """`network` over inputs of `spec` as a serialized ONNX model with `record` attached.

    Raises UnsupportedOpError naming an op tf2onnx cannot convert.
    """
    import tf2onnx

    @tf.function
    def generate(images):
        return {OUTPUT_NAME: tf.cast(network(images, training=False), tf.float32)}

    handler = _UnsupportedOps()
    logger = logging.getLogger("tf2onnx")
    logger.addHandler(handler)
    try:
        model, _ = tf2onnx.convert.from_function(
            generate,
            input_signature=[tf.TensorSpec(spec.shape, tf.float32, INPUT_NAME)],
            opset=OPSET,
        )
    except Exception as error:  # tf2onnx raises assorted errors for unsupported graphs.
        raise UnsupportedOpError(_failure(handler.ops, error)) from None
    finally:
        logger.removeHandler(handler)
    if handler.ops:
        raise UnsupportedOpError(_failure(handler.ops, None))
    entry = model.metadata_props.add()
    entry.key = METADATA_NAME
    entry.value = json.dumps(record, sort_keys=True)
    return model.SerializeToString()


def _failure(ops: list[str], error: Exception | None) -> str:
    if ops:
        return (
            f"--format onnx: ONNX (opset {OPSET}, tf2onnx) cannot express the TensorFlow op "
            f"{', '.join(ops)} in this generator; nothing was written. Use --format saved_model."
        )
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"--format onnx: conversion failed ({lines[0] if lines else error!r})."


def float16(data: bytes) -> bytes:
    """A serialized model with float16 weights and float32 input and output (onnxruntime's
    `convert_float_to_float16`, keep_io_types), its metadata_props kept."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(
        onnx.load_from_string(data), keep_io_types=True
    ).SerializeToString()


def int8(data: bytes, inputs: list) -> bytes:
    """A serialized model with int8 weights and uint8 activations calibrated on `inputs`
    ([1, H, W, C] float32 arrays), as QuantizeLinear/DequantizeLinear pairs around float32
    input and output (onnxruntime.quantization's static QDQ quantization, min-max
    calibration); its metadata_props kept."""
    import os
    import tempfile

    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(inputs)

        def get_next(self):
            images = next(self.items, None)
            return None if images is None else {INPUT_NAME: images}

    with tempfile.TemporaryDirectory() as folder:
        source, prepared, quantized = (
            os.path.join(folder, name) for name in ("float.onnx", "pre.onnx", "int8.onnx")
        )
        with open(source, "wb") as file:
            file.write(data)
        # Symbolic shape inference cannot follow the free H and W; ONNX's own does.
        quant_pre_process(source, prepared, skip_symbolic_shape=True)
        quantize_static(
            prepared,
            quantized,
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        with open(quantized, "rb") as file:
            return file.read()


def read_metadata(session) -> dict | None:
    """The record `convert` stored, from an onnxruntime InferenceSession, or None."""
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_NAME)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None
