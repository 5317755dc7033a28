"""`export.py --format litert|onnx`: the generator as a LiteRT or ONNX file.

    <export_dir>/<version>/model.tflite (or model.onnx)
                          /pix2pix_export.json

Written through serving/export.py's `write_version` (staging folder, lock, next free
version, rename; nothing half-written), with the same record as the SavedModel's
assets.extra/pix2pix_export.json (config, checkpoint, step, sizes, channels, bits)
plus the format, the quantization and the input/output contract; the record is also
embedded in the file itself (serving/litert.py, serving/onnx_export.py).

The contract is the SavedModel's float `generate` signature, not its bytes one:

    input   images     float32 [N, H, W, C_in]  NHWC, in [-1, 1] (pixel / 127.5 - 1;
                       16-bit: pixel / 65535 * 2 - 1)
    output  generated  float32 [N, H, W, C_out] NHWC, in [-1, 1] (tanh); pixel =
                       (x + 1) * 127.5 (16-bit: (x + 1) * 32767.5)

Decoding, padding and encoding are the caller's (predict.py does them in Python the
way serving/codec.py does in the graph). Both formats are converted with free height
and width: H and W may be any positive multiples of `pad_multiple` (2^unet_depth, 4
for resnet, 32 for global_local), at least `min_side` (twice the multiple for resnet
and global_local), measured to give the generator's numbers at other sizes than the
training size (tests/serving/test_deploy_export.py). The network is rebuilt
with Keras' own convolutions (the CPU matmul convolutions of models/conv.py need
ExtractImagePatches, which LiteRT's builtins lack) in float32 whatever the run's
precision, and the checkpoint's weights copied into it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf import models
from pix2pix_tf.data import pipeline, prepare
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.serving import export as export_lib
from pix2pix_tf.serving import litert, onnx_export, quantization, subpixel
from pix2pix_tf.serving.options import DEFAULT_MAX_PIXELS

# The export folder's record (the SavedModel keeps it under assets.extra/).
METADATA_FILE = "pix2pix_export.json"
# "web" is the ONNX file with the page that runs it in the browser (pix2pix_tf/demo/site.py).
FILE_NAMES = {
    "litert": litert.FILE_NAME,
    "onnx": onnx_export.FILE_NAME,
    "web": onnx_export.FILE_NAME,
}


def deploy_network(config: config_lib.Config, generator: keras.Model) -> keras.Model:
    """The generator's layers and weights on [None, None, None, C_in], float32, with
    Keras' own convolutions."""
    network = models.build_generator(
        **config_lib.generator_arguments(config.replace(matmul_convs=False)),
        input_shape=(None, None, config.data.input_channels),
    )
    network.set_weights(generator.get_weights())
    return network


def min_side(config: config_lib.Config) -> int:
    """The shortest side the generator runs at: its pad multiple for the U-Net (a 1x1
    bottleneck), twice it for resnet and global_local, whose innermost residual blocks
    reflection-pad 1 pixel of a map 1/multiple the size (a 1-pixel map cannot reflect;
    Keras, LiteRT and ONNX Runtime all refuse it)."""
    multiple = models.pad_multiple(**config_lib.pad_multiple_arguments(config))
    return multiple if config.model.generator == "unet" else 2 * multiple


def contract(config: config_lib.Config) -> dict:
    """The input/output contract recorded with (and checked by readers of) every export."""
    input_bits, output_bits = config_lib.bit_depths(config.data)
    multiple = models.pad_multiple(**config_lib.pad_multiple_arguments(config))
    minimum = min_side(config)
    at_least = f", at least {minimum}" if minimum > multiple else ""
    return {
        "layout": "NHWC",
        "dtype": "float32",
        "range": [-1.0, 1.0],
        "input": {"name": "images", "channels": config.data.input_channels, "bits": input_bits},
        "output": {
            "name": onnx_export.OUTPUT_NAME,
            "channels": config.data.output_channels,
            "bits": output_bits,
        },
        "sizes": f"any H and W that are positive multiples of {multiple}{at_least}",
        "pad_multiple": multiple,
        "min_side": minimum,
        "encoded_bytes": False,
    }


def representative_inputs(config: config_lib.Config, count: int) -> list[np.ndarray]:
    """Up to `count` inputs [1, H, W, C_in] of the run's training split (centre crops at
    the training size, no jitter), for int8 calibration."""

    if count < 1:
        raise ValueError(f"--representative_examples must be >= 1, got {count}.")
    dataset = prepare.prepare(config.data)
    batches = pipeline.build_dataset(dataset, "train", training=False, batch_size=1)
    inputs = [images.numpy() for images, _ in batches.take(count)]
    if not inputs:
        raise ValueError(f"--quantize int8: the {config.data.dataset} train split is empty.")
    return inputs


def convert(
    config: config_lib.Config,
    generator: keras.Model,
    fmt: str,
    record: dict,
    quantize: str = "none",
    representative_examples: int = 100,
    network: keras.Model | None = None,
    float_layers: Sequence[str] = (),
) -> bytes:
    """The generator as the bytes of a `fmt` file with `record` embedded. With
    --quantize int8, `record` gains an "int8" entry (calibration, equalisation, the
    layers kept in float; serving/quantization.py)."""
    network = network or deploy_network(config, generator)
    spec = tf.TensorSpec([None, None, None, config.data.input_channels], tf.float32)
    if fmt in ("onnx", "web"):
        data = onnx_export.convert(network, spec, record)
        if quantize == "int8":  # web only (export() refuses --quantize for onnx).
            return onnx_export.int8(data, representative_inputs(config, representative_examples))
        return onnx_export.float16(data) if quantize == "float16" else data
    if quantize == "int8":
        representative = representative_inputs(config, representative_examples)
        # Rescales `network` in place (exact in float); recorded with the export.
        record["int8"] = {
            "representative_examples": len(representative),
            "per_channel_weights": True,
            "equalized_skips": quantization.equalize_skip_ranges(network, representative),
            "float_layers": list(float_layers),
            "subpixel_transposed_convolutions": True,
        }
        # XNNPACK runs int8 sub-pixel convolutions at any size, not free-size
        # TRANSPOSE_CONVs (serving/subpixel.py; the float variants gain nothing).
        network = subpixel.rewrite(network)
        model = quantization.calibrate(network, spec, representative).quantize(float_layers)
    else:
        model = litert.convert(network, spec, quantize)
    return litert.embed_metadata(model, record)


def export(
    workdir: str,
    export_dir: str,
    fmt: str,
    quantize: str = "none",
    checkpoint: str | None = None,
    version: int | None = None,
    precision: str = "float32",
    representative_examples: int = 100,
    network_builder=deploy_network,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    float_layers: Sequence[str] = (),
    write_extra=None,
) -> str:
    """Restores the run's generator and writes `<export_dir>/<version>/` in `fmt`;
    `max_pixels` is recorded for predict.py, which skips larger inputs.
    `write_extra(staging, record, data)` adds files to the version (web: the page)."""
    if fmt not in FILE_NAMES:
        raise ValueError(f"--format must be one of {', '.join(FILE_NAMES)} here, got {fmt}.")
    if max_pixels < 1:
        raise ValueError(f"--max_pixels must be >= 1, got {max_pixels}.")
    if fmt == "web" and write_extra is None:
        raise ValueError("--format web is written by pix2pix_tf.demo.site.export (with its page).")
    if quantize != "none" and fmt not in ("litert", "web"):
        raise ValueError(f"--quantize {quantize} applies to --format litert only.")
    if float_layers and (quantize != "int8" or fmt != "litert"):
        raise ValueError("--float_layers applies to --format litert --quantize int8 only.")
    if precision != "float32":
        raise ValueError(
            f"--precision {precision} applies to --format saved_model; {fmt} exports "
            "compute in float32 (mixed-precision runs included). Use --quantize float16 "
            "for a half-size LiteRT file."
        )
    export_lib.prepare_export_dir(export_dir, version)
    _refuse_saved_model_base(export_dir, fmt)
    try:
        config, generator, path = run_dir.restore_generator(workdir, checkpoint, "float32")
    except (FileNotFoundError, ValueError) as error:
        raise export_lib.ExportError(str(error)) from None
    height, width = config_lib.image_hw(config.data)
    input_bits, output_bits = config_lib.bit_depths(config.data)
    record = {
        "format": fmt,
        "quantize": quantize,
        "file": FILE_NAMES[fmt],
        "checkpoint": path,
        "step": run_dir.checkpoint_step(path),
        "precision": "float32",
        "config": config.to_dict(),
        "image_size": height if height == width else [height, width],
        "training_size": [height, width],
        "pad_multiple": models.pad_multiple(**config_lib.pad_multiple_arguments(config)),
        "input_channels": config.data.input_channels,
        "output_channels": config.data.output_channels,
        "input_bits": input_bits,
        "output_bits": output_bits,
        "contract": contract(config),
        "serving_options": {"max_pixels": max_pixels},
    }
    if quantize == "int8":
        record["representative_examples"] = representative_examples
    network = network_builder(config, generator)
    data = convert(
        config, generator, fmt, record, quantize, representative_examples, network, float_layers
    )

    def write_contents(staging: str) -> None:
        with open(os.path.join(staging, FILE_NAMES[fmt]), "wb") as file:
            file.write(data)
        with open(os.path.join(staging, METADATA_FILE), "w") as file:
            json.dump(record, file, indent=2, sort_keys=True)
        if write_extra is not None:
            write_extra(staging, record, data)

    return export_lib.write_version(export_dir, version, write_contents)


def _refuse_saved_model_base(export_dir: str, fmt: str) -> None:
    """TF Serving would try to load a LiteRT/ONNX version among SavedModel versions."""
    for name in os.listdir(export_dir):
        if name.isdigit() and os.path.exists(os.path.join(export_dir, name, "saved_model.pb")):
            raise export_lib.ExportError(
                f"--export_dir {export_dir}: holds SavedModel versions for TF Serving; "
                f"write --format {fmt} to its own folder (e.g. {export_dir}-{fmt})."
            )
