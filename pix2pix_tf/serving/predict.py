"""Batch inference from the command line: images in, generated PNGs out.

The model is an exported SavedModel (a version directory, or a TF Serving base path,
whose highest version is used) or a run directory (its latest checkpoint, served
through the same in-graph pre- and post-processing as the export). Inputs that
cannot be read or decoded are skipped and listed; the rest are still processed.

A JPEG (or other image) whose EXIF Orientation is not 1 is turned upright with
Pillow's `ImageOps.exif_transpose` before it is sent or split into a pair, and sent
as PNG: outputs, strips and pair halves are all upright, whatever model is used.

Gray and RGB inputs of 8 or 16 bits are sent as they are (pair halves of a 16-bit PNG
keep its channels and bit depth) and converted in the graph (serving/codec.py); each output is
written as the model encodes it: 1-channel and 16-bit PNGs when the run's
--output_channels / --output_bits say so. Strips are 8-bit RGB, for viewing.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import sys
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps

from pix2pix_tf import configs as config_lib
from pix2pix_tf import models
from pix2pix_tf.files import write_atomic
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.runs import gallery as gallery_lib
from pix2pix_tf.runs.progress import Progbar
from pix2pix_tf.serving import deploy_runtimes, tiling
from pix2pix_tf.serving import export as export_lib
from pix2pix_tf.serving import graph as serving

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The IHDR chunk's bit-depth byte: after the signature, the chunk length and type,
# the width and the height.
PNG_BIT_DEPTH_OFFSET = 24
ORIENTATION_TAG = 0x0112
STRIP_DIR = "strips"


class PredictError(Exception):
    """A problem with --model, --input or --output that stops the whole run."""


class PredictUsageError(PredictError):
    """A flag the loaded model cannot be used with (--tile, --overlap): exit status 2."""


@dataclasses.dataclass
class Model:
    """A loaded model: `serve(list of encoded images) -> list of PNG bytes`."""

    serve: Callable[[list[bytes]], list[bytes]]
    description: str
    # The direction the model was trained with, when known (run directories).
    direction: str | None = None
    # A loaded SavedModel's signatures need the loaded object to stay alive.
    owner: object = None
    # The float contract tiled inference runs (--tile), when the model has one.
    tiled: tiling.TiledModel | None = None


def _is_saved_model(path: str) -> bool:
    return tf.io.gfile.exists(os.path.join(path, "saved_model.pb"))


def _latest_version(base: str) -> str | None:
    versions = [
        int(name)
        for name in tf.io.gfile.listdir(base)
        if name.isdigit() and _is_saved_model(os.path.join(base, name))
    ]
    return os.path.join(base, str(max(versions))) if versions else None


def _wrap_signature(signature) -> Callable[[list[bytes]], list[bytes]]:
    def serve(images: list[bytes]) -> list[bytes]:
        outputs = signature(image_bytes=tf.constant(images, tf.string))["image_bytes"]
        return list(outputs.numpy())

    return serve


def _exported_record(version_dir: str) -> dict:
    """What export.py recorded in assets.extra/pix2pix_export.json ({} if nothing)."""
    path = os.path.join(version_dir, export_lib.METADATA_FILE)
    try:
        with open(path) as file:
            record = json.load(file)
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _exported_direction(version_dir: str) -> str | None:
    """The training direction recorded by export.py, if any."""
    try:
        return _exported_record(version_dir)["config"]["data"]["direction"]
    except (KeyError, TypeError):
        return None


# The kinds of --model path (model_kind), each with its loader in _LOADERS.
FILE_EXPORT = "file export"  # a .tflite / .onnx file, its version folder or their base path
SAVED_MODEL = "SavedModel"  # a SavedModel version directory, or a TF Serving base path
RUN_DIRECTORY = "run directory"  # config.json and checkpoints (train.py's --workdir)


def load_model(path: str, checkpoint: str | None = None) -> Model:
    """Loads --model: a SavedModel version dir, a TF Serving base path, a run directory
    (its latest checkpoint, or `checkpoint`), or a .tflite / .onnx export (the file, its
    version folder or their base path; serving/deploy_runtimes.py)."""
    kind, found = model_kind(path, checkpoint)
    return _LOADERS[kind](found, checkpoint)


def model_kind(path: str, checkpoint: str | None = None) -> tuple[str, str]:
    """(kind, what to load) for --model `path`: (FILE_EXPORT, the .tflite/.onnx file),
    (SAVED_MODEL, the version directory: `path` or a base path's highest version) or
    (RUN_DIRECTORY, `path`). Raises PredictError, one line, when it is none of them or
    `checkpoint` is given with anything but a run directory."""
    try:
        file_export = deploy_runtimes.find_file_export(path, checkpoint)
    except deploy_runtimes.DeployModelError as error:
        raise PredictError(str(error)) from None
    if file_export is not None:
        return FILE_EXPORT, file_export
    if not tf.io.gfile.isdir(path):
        raise PredictError(f"--model {path}: no such directory.")
    if checkpoint is not None and not run_dir.is_run_directory(path):
        raise PredictError(
            f"--checkpoint needs --model to be a run directory (with config.json); {path} is not."
        )
    version_dir = path if _is_saved_model(path) else _latest_version(path)
    if version_dir is not None:
        return SAVED_MODEL, version_dir
    if run_dir.is_run_directory(path):
        return RUN_DIRECTORY, path
    raise PredictError(
        f"--model {path}: neither a SavedModel (saved_model.pb), a TF Serving base path "
        "(numbered versions) nor a run directory (config.json)."
    )


def _load_file_export(path: str, checkpoint: str | None) -> Model:
    """A .tflite / .onnx file (`checkpoint` is None: model_kind refused one)."""
    try:
        loaded = deploy_runtimes.load(path)
    except deploy_runtimes.DeployModelError as error:
        raise PredictError(str(error)) from None
    direction = loaded.metadata.get("config", {}).get("data", {}).get("direction")
    serve = deploy_runtimes.serve_bytes(loaded)
    tiled = _tiled_from_record(loaded, loaded.metadata)
    return Model(serve, f"{loaded.kind} {loaded.path}", direction, owner=loaded, tiled=tiled)


def _tiled_from_record(generate, record: dict) -> tiling.TiledModel | None:
    """The TiledModel of an export from its record (pix2pix_export.json), or None for an
    export that records no pad multiple (from before native size)."""
    if "pad_multiple" not in record:
        return None
    options = record.get("serving_options", {})
    config = record.get("config", {})
    model_config = config.get("model", {})
    multiple = int(record["pad_multiple"])
    generator = model_config.get("generator", "unet")
    minimum = record.get("contract", {}).get("min_side")
    if minimum is None:
        minimum = tiling.min_side(generator, multiple)
    fixed = None
    if options.get("serving_size") == "training":
        size = record.get("training_size") or record.get("image_size")
        fixed = tuple(size) if isinstance(size, list) else (size, size)
    return tiling.TiledModel(
        generate=generate,
        input_channels=int(record.get("input_channels", 3)),
        output_channels=int(record.get("output_channels", 3)),
        pad_multiple=multiple,
        min_side=int(minimum),
        input_bits=int(record.get("input_bits", 8)),
        output_bits=int(record.get("output_bits", 8)),
        per_image_statistics=model_config.get("norm") == "instance"
        or options.get("test_time_mode") == "paper",
        fixed_hw=fixed,
        max_pixels=options.get("max_pixels"),
        png_compression=int(options.get("png_compression", 1)),
    )


def _load_saved_model(version_dir: str, checkpoint: str | None) -> Model:
    """A SavedModel version directory through its serving_default signature (a
    `checkpoint` only applies to run directories)."""
    try:
        loaded = tf.saved_model.load(version_dir)
    except (OSError, ValueError, tf.errors.OpError) as error:
        raise PredictError(
            f"--model {version_dir}: cannot load this SavedModel ({_reason(error)}); "
            "export it again or pass another version."
        ) from None
    if serving.DEFAULT_SIGNATURE not in loaded.signatures:
        raise PredictError(f"--model {version_dir}: has no serving_default signature.")
    tiled = None
    if serving.FLOAT_SIGNATURE in loaded.signatures:
        signature = loaded.signatures[serving.FLOAT_SIGNATURE]

        def generate(images: np.ndarray) -> np.ndarray:
            return signature(images=tf.constant(images))["images"].numpy()

        tiled = _tiled_from_record(generate, _exported_record(version_dir))
    return Model(
        serve=_wrap_signature(loaded.signatures[serving.DEFAULT_SIGNATURE]),
        description=f"SavedModel {version_dir}",
        direction=_exported_direction(version_dir),
        owner=loaded,
        tiled=tiled,
    )


def _load_run_directory(path: str, checkpoint: str | None) -> Model:
    """A run's generator at `checkpoint` (default: its latest), served like a default
    export: at each input's own size, padded to 2^unet_depth, with the run's bit depths."""
    try:
        config, generator, checkpoint = run_dir.restore_generator(path, checkpoint)
    except (FileNotFoundError, ValueError) as error:
        raise PredictError(str(error)) from None
    input_bits, output_bits = config_lib.bit_depths(config.data)
    functions = serving.ServingFunctions(
        generator,
        pad_multiple=models.pad_multiple(**config_lib.pad_multiple_arguments(config)),
        input_bits=input_bits,
        output_bits=output_bits,
    )
    signature = tf.function(
        functions.serve_bytes,
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
    )

    def serve(images: list[bytes]) -> list[bytes]:
        return list(signature(tf.constant(images, tf.string))["image_bytes"].numpy())

    float_signature = tf.function(functions.generate, input_signature=[functions.float_spec()])

    def generate(images: np.ndarray) -> np.ndarray:
        return float_signature(tf.constant(images))["images"].numpy()

    multiple = functions.pad_multiple
    tiled = tiling.TiledModel(
        generate=generate,
        input_channels=functions.input_channels,
        output_channels=functions.output_channels,
        pad_multiple=multiple,
        min_side=tiling.min_side(config.model.generator, multiple),
        input_bits=input_bits,
        output_bits=output_bits,
        per_image_statistics=config.model.norm == "instance",
        max_pixels=functions.options.max_pixels,
        network=functions.network,
    )
    return Model(
        serve=serve,
        description=f"checkpoint {checkpoint}",
        direction=config.data.direction,
        tiled=tiled,
    )


_LOADERS: dict[str, Callable[[str, str | None], Model]] = {
    FILE_EXPORT: _load_file_export,
    SAVED_MODEL: _load_saved_model,
    RUN_DIRECTORY: _load_run_directory,
}


def list_inputs(inputs: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Expands files and directories (their image files, sorted); returns (files, missing)."""
    files, missing = [], []
    for item in inputs:
        if os.path.isdir(item):
            names = sorted(os.listdir(item))
            files += [
                os.path.join(item, name)
                for name in names
                if name.lower().endswith(IMAGE_EXTENSIONS)
                and os.path.isfile(os.path.join(item, name))
            ]
        elif os.path.isfile(item):
            files.append(item)
        else:
            missing.append((item, "no such file or directory"))
    return files, missing


def output_stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _check_stems(files: list[str]) -> None:
    seen: dict[str, str] = {}
    for path in files:
        stem = output_stem(path)
        if stem in seen:
            raise PredictError(
                f"--input: {seen[stem]} and {path} would both write {stem}.png; "
                "rename one or process them in separate runs."
            )
        seen[stem] = path


@dataclasses.dataclass
class Example:
    path: str
    # What is sent to the model: encoded bytes of the input-domain image.
    encoded: bytes
    # The other half of a side-by-side pair, decoded, when --pairs is given.
    target: np.ndarray | None = None


def _decode(data: bytes) -> np.ndarray:
    """[H, W, 3] uint8 (gray replicated, which a gray model reads back exactly), or for
    a 16-bit PNG its own channels as uint16, so that its low byte is kept."""
    depth = data[PNG_BIT_DEPTH_OFFSET : PNG_BIT_DEPTH_OFFSET + 1]
    if data.startswith(PNG_SIGNATURE) and depth == b"\x10":
        return tf.io.decode_png(data, channels=0, dtype=tf.uint16).numpy()
    return tf.io.decode_image(data, channels=3, expand_animations=False).numpy()


def _viewable(pixels: np.ndarray) -> np.ndarray:
    """[H, W, 1-4] uint8 or uint16 -> [H, W, 3] uint8: gray replicated, alpha dropped,
    16 bits scaled to 8."""
    if pixels.dtype == np.uint16:
        pixels = np.round(pixels / 257.0).astype(np.uint8)
    if pixels.shape[-1] < 3:
        return np.repeat(pixels[..., :1], 3, axis=-1)
    return pixels[..., :3]


def upright(data: bytes, large: bool = False) -> bytes:
    """`data` as it is, or re-encoded as an upright PNG when its EXIF Orientation is 2-8.

    Files Pillow cannot read are returned unchanged, for the model to report. With
    `large` (tiled inference) Pillow's decompression-bomb bound is lifted for this call,
    so that a huge JPEG is turned too (the image is decoded whole anyway).
    """
    bound = Image.MAX_IMAGE_PIXELS
    try:
        if large:
            Image.MAX_IMAGE_PIXELS = None
        with Image.open(io.BytesIO(data)) as image:
            if image.getexif().get(ORIENTATION_TAG, 1) not in range(2, 9):
                return data
            turned = ImageOps.exif_transpose(image)
            if turned.mode not in ("L", "LA", "I;16", "RGB", "RGBA"):
                turned = turned.convert("RGB")
            buffer = io.BytesIO()
            turned.save(buffer, format="PNG", compress_level=1)
            return buffer.getvalue()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return data
    finally:
        Image.MAX_IMAGE_PIXELS = bound


def read_example(path: str, pairs: bool, direction: str | None) -> Example:
    """Reads one input; raises OSError or tf.errors.InvalidArgumentError if unreadable."""
    with open(path, "rb") as file:
        data = upright(file.read())
    if not pairs:
        return Example(path, data)
    image = _decode(data)
    half = image.shape[1] // 2
    if half == 0:
        raise ValueError(f"{image.shape[1]} pixels wide, too narrow to split into a pair")
    left, right = image[:, :half], image[:, half : 2 * half]
    source, target = (left, right) if direction == "AtoB" else (right, left)
    return Example(path, tf.io.encode_png(source).numpy(), target)


def _serve_batch(model: Model, batch: list[Example]) -> list[bytes | Exception]:
    """Serves a batch; when it fails, serves its images one by one to isolate bad ones."""
    try:
        return model.serve([example.encoded for example in batch])
    except tf.errors.InvalidArgumentError as error:
        if len(batch) == 1:
            return [error]
    results: list[bytes | Exception] = []
    for example in batch:
        try:
            results.append(model.serve([example.encoded])[0])
        except tf.errors.InvalidArgumentError as error:
            results.append(error)
    return results


def write_strip(example: Example, generated: bytes, path: str) -> None:
    """input | output [| target], side by side at the input's size, as 8-bit RGB."""
    panels = [_decode(example.encoded), _decode(generated)]
    if example.target is not None:
        panels.append(example.target)
    panels = [_viewable(panel) for panel in panels]
    height = max(panel.shape[0] for panel in panels)
    padded = [np.pad(panel, ((0, height - panel.shape[0]), (0, 0), (0, 0))) for panel in panels]
    write_atomic(path, tf.io.encode_png(np.concatenate(padded, axis=1)).numpy())


def write_gallery(output_dir: str, stems: list[str], strips: bool, pairs: bool) -> str:
    """An index.html showing every result (strips when written, else outputs)."""
    column = ("input | output | target" if pairs else "input | output") if strips else "output"
    rows = [(stem, [f"{STRIP_DIR}/{stem}.png" if strips else f"{stem}.png"]) for stem in stems]
    return gallery_lib.write_gallery_page(
        output_dir, "pix2pix results", columns=(column,), rows=rows, note=f"{len(stems)} images."
    )


@dataclasses.dataclass
class Summary:
    written: list[str]
    skipped: list[tuple[str, str]]


def predict(
    model: Model,
    inputs: Sequence[str],
    output_dir: str,
    batch_size: int = 8,
    strip: bool = False,
    gallery: bool = False,
    pairs: bool = False,
    direction: str | None = None,
    verbose: bool = True,
    tile_hw: tuple[int, int] | None = None,
    overlap: int = 0,
    tile_statistics: str = "auto",
) -> Summary:
    """Runs the model over `inputs`, writing <output_dir>/<stem>.png for each.

    With `tile_hw` (--tile) every image is generated tile by tile (serving/tiling.py),
    `overlap` pixels shared between neighbours, and streamed into its PNG; the model's
    pixel bound then applies to a tile, not the image; `tile_statistics`
    (--tile_statistics) says how instance norm is normalised (tiling.ImageStatistics).
    """
    if batch_size < 1:
        raise PredictError(f"--batch_size must be >= 1, got {batch_size}.")
    if tile_hw is not None:
        refused = (strip, gallery, pairs)
        return _predict_tiled(
            model, inputs, output_dir, tile_hw, overlap, refused, verbose, tile_statistics
        )
    if pairs:
        direction = direction or model.direction
        if direction not in ("AtoB", "BtoA"):
            raise PredictError("--pairs needs --direction AtoB or BtoA (which half is the input).")
    files, skipped = list_inputs(inputs)
    _check_stems(files)
    strip = strip or gallery
    try:
        os.makedirs(os.path.join(output_dir, STRIP_DIR) if strip else output_dir, exist_ok=True)
    except OSError as error:
        raise PredictError(f"--output {output_dir}: cannot create it ({error.strerror}).") from None
    progress = Progbar(len(files), unit_name="image", verbose=1 if verbose else 0)
    written: list[str] = []
    for start in range(0, len(files), batch_size):
        batch = []
        for path in files[start : start + batch_size]:
            try:
                batch.append(read_example(path, pairs, direction))
            except (OSError, ValueError, tf.errors.InvalidArgumentError) as error:
                skipped.append((path, _reason(error)))
        results = _serve_batch(model, batch) if batch else []
        for example, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                skipped.append((example.path, _reason(result)))
                continue
            stem = output_stem(example.path)
            try:
                write_atomic(os.path.join(output_dir, f"{stem}.png"), result)
                if strip:
                    strip_path = os.path.join(output_dir, STRIP_DIR, f"{stem}.png")
                    write_strip(example, result, strip_path)
            except OSError as error:
                raise _output_error(output_dir, f"{stem}.png", error, len(written)) from None
            written.append(stem)
        progress.update(min(start + batch_size, len(files)))
    if gallery and written:
        try:
            write_gallery(output_dir, written, strip, pairs)
        except OSError as error:
            raise _output_error(output_dir, "index.html", error, len(written)) from None
    return Summary(written=written, skipped=skipped)


def _check_tiled(model: Model, tile_hw, overlap: int, refused: tuple[bool, bool, bool]):
    """Raises PredictUsageError (one line naming the flag) when `model` cannot be tiled
    with these settings, or --strip / --gallery / --pairs are given with --tile."""
    for given, flag in zip(refused, ("--strip", "--gallery", "--pairs"), strict=True):
        if given:
            raise PredictUsageError(
                f"--tile: {flag} is not available with tiled inference (it would hold the "
                "whole image); run without --tile for it."
            )
    if model.tiled is None:
        raise PredictUsageError(
            f"--tile: {model.description} has no float `generate` contract with a recorded "
            "pad multiple (an export from before native size); export it again."
        )
    try:
        tiling.check_tile(tile_hw, overlap, model.tiled)
    except tiling.TilingError as error:
        raise PredictUsageError(str(error)) from None


def _predict_tiled(
    model: Model,
    inputs: Sequence[str],
    output_dir: str,
    tile_hw: tuple[int, int],
    overlap: int,
    refused: tuple[bool, bool, bool],
    verbose: bool,
    tile_statistics: str = "auto",
) -> Summary:
    """predict() with --tile: one image at a time, tile by tile, streamed to its PNG."""
    _check_tiled(model, tile_hw, overlap, refused)
    try:
        tiled = model.tiled.with_statistics(tile_statistics)
    except tiling.TilingError as error:
        raise PredictUsageError(str(error)) from None
    if tiled.per_image_statistics and tiled.statistics is None and verbose:
        sys.stderr.write(
            "predict.py: warning: this generator normalises by per-image statistics "
            "(instance norm or paper test-time mode) and each tile uses its own, so tiled "
            "outputs differ from whole-image ones more than with batch norm; the larger "
            "the --tile, the closer (--tile_statistics image, for run directories, "
            "shares the image's; docs/tiling.md).\n"
        )
    files, skipped = list_inputs(inputs)
    _check_stems(files)
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as error:
        raise PredictError(f"--output {output_dir}: cannot create it ({error.strerror}).") from None
    written: list[str] = []
    for path in files:
        stem = output_stem(path)
        try:
            with open(path, "rb") as file:
                data = upright(file.read(), large=True)
        except OSError as error:
            skipped.append((path, _reason(error)))
            continue
        try:
            pixels = tiling.decode_file(path, data, tiled.input_bits)
        except tiling.TilingError as error:
            skipped.append((path, str(error).removeprefix(f"{path}: ")))
            continue
        finally:
            del data  # The encoded file is not kept while tiles run.
        bars: dict[str, Progbar] = {}

        def progress(done: int, total: int, bars=bars) -> None:
            if "bar" not in bars:
                bars["bar"] = Progbar(total, unit_name="tile", verbose=1 if verbose else 0)
            bars["bar"].update(done)

        try:
            tiling.write_tiled(
                tiled,
                pixels,
                os.path.join(output_dir, f"{stem}.png"),
                tile_hw,
                overlap,
                png_compression=tiled.png_compression,
                progress=progress,
            )
        except tiling.TilingError as error:
            skipped.append((path, str(error)))
            continue
        except tf.errors.InvalidArgumentError as error:
            skipped.append((path, _reason(error)))
            continue
        except OSError as error:
            raise _output_error(output_dir, f"{stem}.png", error, len(written)) from None
        finally:
            del pixels
        written.append(stem)
    return Summary(written=written, skipped=skipped)


def _output_error(output_dir: str, name: str, error: OSError, done: int) -> PredictError:
    return PredictError(
        f"--output {output_dir}: cannot write {name} ({error.strerror or error}); free some "
        f"space or pass another --output. The {done} images written before it are complete."
    )


def _reason(error: BaseException) -> str:
    """A one-line reason, without TensorFlow's graph locations and stack traces."""
    if isinstance(error, tf.errors.OpError):
        text = error.message
    elif isinstance(error, OSError) and error.strerror:
        text = error.strerror
    else:
        text = str(error)
    noise = ("Graph execution error", "Detected at node", "File ", "<stack", "[[")
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith(noise)]
    line = lines[-1] if lines else type(error).__name__
    line = re.sub(r"\{\{[^}]*\}\}\s*", "", line)
    line = re.sub(r"\s*\[Op:[^\]]*\]", "", line).strip()
    # The serving graph's own checks: their message without the Assert's wrapping.
    return re.sub(r"^assertion failed: \[(.*)\]$", r"\1", line)


def report(summary: Summary, output_dir: str, stream=None) -> None:
    stream = stream or sys.stderr
    stream.write(f"Wrote {len(summary.written)} images to {output_dir}.\n")
    if summary.skipped:
        stream.write(f"Skipped {len(summary.skipped)} inputs:\n")
        for path, reason in summary.skipped:
            stream.write(f"  {path}: {reason}\n")
