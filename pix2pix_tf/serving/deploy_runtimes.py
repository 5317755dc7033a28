"""Running an export on float images in-process: a SavedModel's `generate`, a LiteRT
file in the `ai-edge-litert` interpreter (its default CPU delegate, XNNPACK), or an
ONNX file in ONNX Runtime's CPU provider, behind one call
`model(images float32 [N, H, W, C_in]) -> float32 [N, H, W, C_out]`.

`load(path)` takes a .tflite or .onnx file, its export folder
(`<export_dir>/<version>/`), or a base path of such folders (the highest version),
or a SavedModel version or base path. A LiteRT/ONNX file must carry the metadata
export.py embeds and the float signature it records; anything else is refused with
one line. predict.py, the parity measurement and `benchmark deploy` use it.
`serve_bytes` turns a float model into predict's bytes-in, PNG-out call with
serving/codec.py's decoding and encoding run eagerly, as the SavedModel runs them in
its graph.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from pix2pix_tf.serving import codec, litert, onnx_export, sizes
from pix2pix_tf.serving.options import DEFAULT_MAX_PIXELS

SAVED_MODEL_METADATA = os.path.join("assets.extra", "pix2pix_export.json")
# What export.py writes beside a .tflite / .onnx file (serving/deploy.py's METADATA_FILE).
FILE_METADATA = os.path.basename(SAVED_MODEL_METADATA)
EXTENSIONS = {".tflite": "litert", ".onnx": "onnx"}
FILE_NAMES = {"litert": litert.FILE_NAME, "onnx": onnx_export.FILE_NAME}


class DeployModelError(ValueError):
    """--model is not a usable pix2pix export; the message says why, on one line."""


@dataclasses.dataclass
class FloatModel:
    """An export's float contract: `run(images)`, what it was exported with, its file."""

    kind: str  # saved_model | litert | onnx
    path: str  # the .tflite / .onnx file, or the SavedModel version directory
    metadata: dict
    run: Callable[[np.ndarray], np.ndarray]
    threads: int | None = None
    owner: object = None

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.run(np.ascontiguousarray(images, np.float32))

    @property
    def file_mb(self) -> float:
        if os.path.isfile(self.path):
            return os.path.getsize(self.path) / 2**20
        return sum(
            os.path.getsize(os.path.join(directory, name)) / 2**20
            for directory, _, names in os.walk(self.path)
            for name in names
            if "assets.extra" not in directory
        )


def find(path: str) -> tuple[str, str]:
    """(kind, file or SavedModel dir) that `path` names; raises DeployModelError."""
    extension = os.path.splitext(path)[1].lower()
    if extension in EXTENSIONS:
        if not os.path.isfile(path):
            raise DeployModelError(f"--model {path}: no such file.")
        return EXTENSIONS[extension], path
    if not os.path.isdir(path):
        raise DeployModelError(f"--model {path}: no such file or directory.")
    for directory in (path, _highest_version(path)):
        if directory is None:
            continue
        for kind, name in FILE_NAMES.items():
            if os.path.isfile(os.path.join(directory, name)):
                return kind, os.path.join(directory, name)
        if os.path.isfile(os.path.join(directory, "saved_model.pb")):
            return "saved_model", directory
    raise DeployModelError(
        f"--model {path}: no model.tflite, model.onnx or saved_model.pb here or in its "
        "highest numbered version."
    )


def _highest_version(base: str) -> str | None:
    versions = [int(name) for name in os.listdir(base) if name.isdigit()]
    return os.path.join(base, str(max(versions))) if versions else None


def load(path: str, threads: int | None = None) -> FloatModel:
    """The export at `path` (see the module docstring) ready to run on float images."""
    kind, found = find(path)
    if kind == "saved_model":
        return _load_saved_model(found)
    loader = _load_litert if kind == "litert" else _load_onnx
    return loader(found, threads)


def find_file_export(path: str, checkpoint: str | None = None) -> str | None:
    """predict.py's LiteRT/ONNX check: the .tflite/.onnx file `path` names (load() it),
    or None when it names no such export (a SavedModel or a run directory, say).

    Raises DeployModelError for a missing .tflite/.onnx file, or for `checkpoint`
    with a file export."""
    try:
        kind, found = find(path)
    except DeployModelError:
        if path.lower().endswith(tuple(EXTENSIONS)):
            raise
        return None
    if kind == "saved_model":
        return None
    if checkpoint is not None:
        raise DeployModelError(f"--checkpoint needs --model to be a run directory; {path} is not.")
    return found


def _refuse(path: str, kind: str, why: str) -> DeployModelError:
    flag = "litert" if kind == "litert" else "onnx"
    record = os.path.join(os.path.dirname(path), FILE_METADATA)
    if os.path.isfile(record):
        # export.py wrote this folder: the file was cut short or changed since.
        return DeployModelError(
            f"--model {path}: a damaged or truncated pix2pix export ({why}; its folder has "
            f"{FILE_METADATA}); export it again with "
            f"`python export.py --workdir RUN --format {flag}`."
        )
    return DeployModelError(
        f"--model {path}: not a pix2pix export ({why}); export one with "
        f"`python export.py --workdir RUN --format {flag}`."
    )


def _check_signature(path, kind, metadata, inputs, outputs) -> None:
    """inputs/outputs: [(dtype name, shape)]; one float32 rank-4 tensor each, with the
    channels the metadata records."""
    expected = (metadata.get("input_channels"), metadata.get("output_channels"))
    for tensors, channels, name in zip(
        (inputs, outputs), expected, ("input", "output"), strict=True
    ):
        if len(tensors) != 1:
            raise _refuse(path, kind, f"{len(tensors)} {name}s, expected 1")
        dtype, shape = tensors[0]
        if dtype != "float32" or len(shape) != 4 or shape[-1] != channels:
            raise _refuse(
                path,
                kind,
                f"its {name} is {dtype} {list(shape)}, expected float32 [N, H, W, {channels}]",
            )


def _load_litert(path: str, threads: int | None) -> FloatModel:
    from ai_edge_litert.interpreter import Interpreter

    with open(path, "rb") as file:
        data = file.read()
    metadata = litert.read_metadata(data)
    if metadata is None:
        raise _refuse(path, "litert", "no pix2pix_export metadata in the file")
    try:
        interpreter = Interpreter(model_content=data, num_threads=threads)
    except (ValueError, RuntimeError) as error:
        raise _refuse(path, "litert", str(error).splitlines()[0]) from None
    input_details = interpreter.get_input_details()
    output_details = interpreter.get_output_details()
    _check_signature(
        path,
        "litert",
        metadata,
        [(np.dtype(d["dtype"]).name, d["shape_signature"]) for d in input_details],
        [(np.dtype(d["dtype"]).name, d["shape_signature"]) for d in output_details],
    )
    input_index, output_index = input_details[0]["index"], output_details[0]["index"]
    current = {"shape": None}

    def run(images: np.ndarray) -> np.ndarray:
        if current["shape"] != images.shape:
            interpreter.resize_tensor_input(input_index, images.shape)
            interpreter.allocate_tensors()
            current["shape"] = images.shape
        interpreter.set_tensor(input_index, images)
        interpreter.invoke()
        return interpreter.get_tensor(output_index).copy()

    return FloatModel("litert", path, metadata, run, threads, interpreter)


def _load_onnx(path: str, threads: int | None) -> FloatModel:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types.
        raise _refuse(path, "onnx", str(error).splitlines()[0][:200]) from None
    metadata = onnx_export.read_metadata(session)
    if metadata is None:
        raise _refuse(path, "onnx", "no pix2pix_export metadata in the file")
    dtypes = {"tensor(float)": "float32"}

    def described(tensors):
        return [
            (dtypes.get(t.type, t.type), [d if isinstance(d, int) else None for d in t.shape])
            for t in tensors
        ]

    _check_signature(
        path, "onnx", metadata, described(session.get_inputs()), described(session.get_outputs())
    )
    input_name = session.get_inputs()[0].name

    def run(images: np.ndarray) -> np.ndarray:
        return session.run(None, {input_name: images})[0]

    return FloatModel("onnx", path, metadata, run, threads, session)


def _load_saved_model(directory: str) -> FloatModel:
    try:
        loaded = tf.saved_model.load(directory)
        signature = loaded.signatures["generate"]
    except (OSError, ValueError, KeyError, tf.errors.OpError) as error:
        raise DeployModelError(
            f"--model {directory}: no usable `generate` signature ({type(error).__name__})."
        ) from None
    try:
        with open(os.path.join(directory, SAVED_MODEL_METADATA)) as file:
            metadata = json.load(file)
    except (OSError, ValueError):
        metadata = {}

    def run(images: np.ndarray) -> np.ndarray:
        return signature(images=tf.constant(images))["images"].numpy()

    return FloatModel("saved_model", directory, metadata, run, None, loaded)


def serve_bytes(model: FloatModel, png_compression: int = 1) -> Callable[[list[bytes]], list]:
    """predict's `serve`: encoded images -> PNGs, each at its own size, decoded to the
    run's input channels and bits, reflection-padded to the pad multiple, generated one
    at a time, cropped back and encoded at the output bits (serving/codec.py's rules).
    An input still shorter than the contract's min_side once padded, over the export's
    --max_pixels (the default for exports that record none) or not decodable fails alone
    with InvalidArgumentError, as it does in the SavedModel (predict skips it with the
    reason)."""
    record = model.metadata
    in_channels, out_channels = record["input_channels"], record["output_channels"]
    in_bits, out_bits = record.get("input_bits", 8), record.get("output_bits", 8)
    multiple = record["pad_multiple"]
    minimum = record.get("contract", {}).get("min_side", multiple)

    recorded = record.get("serving_options", {}).get("max_pixels")
    bound = recorded or DEFAULT_MAX_PIXELS
    where = "set at export" if recorded else "of exports that record none"

    def serve(images: list[bytes]) -> list[bytes]:
        outputs = []
        for encoded in images:
            try:
                pixels = codec.decode(tf.constant(encoded), in_channels, in_bits)
            except tf.errors.InvalidArgumentError as error:
                raise tf.errors.InvalidArgumentError(
                    None,
                    None,
                    f"{len(encoded)} bytes, not a decodable JPEG, PNG, GIF or BMP image "
                    f"({error.message.strip().splitlines()[0]})",
                ) from None
            height, width = pixels.shape[:2]
            if height * width > bound:
                # As the SavedModel: refused once decoded, before the network runs on it.
                raise tf.errors.InvalidArgumentError(
                    None,
                    None,
                    f"{height}x{width} = {height * width} pixels, over the bound of {bound} "
                    f"pixels per image {where} (export.py --max_pixels); send a smaller "
                    "image or export with a larger bound.",
                )
            padded = sizes.reflect_pad(
                codec.normalise(tf.cast(pixels, tf.float32), in_bits), multiple
            )
            if min(padded.shape[:2]) < minimum:
                raise tf.errors.InvalidArgumentError(
                    None,
                    None,
                    f"{height}x{width} pixels: the {record['config']['model']['generator']} "
                    f"generator needs each side padded to at least {minimum}, this is "
                    f"{padded.shape[0]}x{padded.shape[1]}",
                )
            generated = model(padded.numpy()[None])[0][:height, :width, :out_channels]
            values = codec.to_pixels(tf.constant(generated), out_bits)
            outputs.append(codec.encode_png(values, out_bits, png_compression).numpy())
        return outputs

    return serve
