"""Exports a trained generator as a versioned SavedModel for TF Serving.

    <export_dir>/<version>/saved_model.pb
                          /variables/
                          /assets.extra/tf_serving_warmup_requests

The version directory is written aside under a name TF Serving ignores (not a
number, `.writing-<version>-*`), then renamed into place, so a server polling
`<export_dir>` never sees a half-written model, and a failed or interrupted export
leaves nothing behind. An existing version is never overwritten.

An export holds an exclusive lock (flock) on `<export_dir>` itself from choosing the
version to the rename, so concurrent exports into one directory take turns, and any
`.writing-*` folder found while holding the lock was left by an export that was killed
(SIGKILL, power loss): it is removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf import files, models
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.serving import graph as serving

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# Where the export records what it was made from (TF Serving ignores assets.extra).
METADATA_FILE = os.path.join("assets.extra", "pix2pix_export.json")
# The prefix of staging folders (TF Serving ignores names that are not numbers).
STAGING_PREFIX = ".writing-"
# Batch sizes sent once per signature when TF Serving warms the model up (the float
# signature only gets the first: its requests are large).
WARMUP_BATCH_SIZES = (1, 8)


class ExportError(Exception):
    """A problem with the run directory, checkpoint or export directory."""


def next_version(export_dir: str) -> int:
    """One above the highest numeric version in export_dir (1 if none)."""
    if not tf.io.gfile.isdir(export_dir):
        return 1
    versions = [int(name) for name in tf.io.gfile.listdir(export_dir) if name.strip("/").isdigit()]
    return max(versions, default=0) + 1


def warmup_images(
    image_size: int | tuple[int, int], batch_size: int, channels: int = 3
) -> list[bytes]:
    """Deterministic 8-bit PNG test images (colour gradients) of `image_size` (S or
    (H, W)) with `channels` 3 (RGB) or 1 (the red gradient, gray)."""
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    images = []
    for index in range(batch_size):
        red = np.broadcast_to(
            np.linspace(0, 255, width, dtype=np.float32)[None, :], (height, width)
        )
        green = np.broadcast_to(
            np.linspace(0, 255, height, dtype=np.float32)[:, None], (height, width)
        )
        blue = np.full((height, width), (index * 37) % 256, np.float32)
        pixels = np.stack([red, green, blue][:channels], axis=-1).astype(np.uint8)
        images.append(tf.io.encode_png(pixels).numpy())
    return images


def write_warmup(
    model_dir: str,
    image_size: int | tuple[int, int],
    model_name: str = "pix2pix",
    channels: int = 3,
) -> str:
    """Writes TF Serving's warmup file: a TFRecord of PredictionLog protos, with images
    of the model's input `channels` (the float request must have exactly them)."""
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError:
        raise ExportError(
            "writing the TF Serving warmup file needs tensorflow-serving-api: "
            "pip install --no-deps tensorflow-serving-api==2.21.0 "
            "(or pass --no-warmup)."
        ) from None
    path = os.path.join(model_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        requests = []
        for batch_size in WARMUP_BATCH_SIZES:
            images = warmup_images(image_size, batch_size, channels)
            requests.append(
                (serving.DEFAULT_SIGNATURE, "image_bytes", tf.make_tensor_proto(images))
            )
        pixels = tf.io.decode_png(warmup_images(image_size, 1, channels)[0]).numpy()
        floats = pixels[None].astype(np.float32) / 127.5 - 1.0
        requests.append((serving.FLOAT_SIGNATURE, "images", tf.make_tensor_proto(floats)))
        for signature, key, tensor in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature),
                inputs={key: tensor},
            )
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


def prepare_export_dir(export_dir: str, version: int | None = None) -> None:
    """Checks `version` and creates a writable `export_dir`, before the slow work (the
    version is checked again under the lock)."""
    if version is not None and version < 1:
        raise ValueError(f"--version must be >= 1, got {version}.")
    try:
        os.makedirs(export_dir, exist_ok=True)
    except OSError as error:
        raise ExportError(
            f"--export_dir {export_dir}: cannot create it ({error.strerror}); "
            "pass a writable directory."
        ) from None
    if not os.path.isdir(export_dir):
        raise ExportError(f"--export_dir {export_dir}: exists and is not a directory.")
    if not os.access(export_dir, os.W_OK | os.X_OK):
        raise ExportError(f"--export_dir {export_dir}: not writable; pass a writable directory.")
    if version is not None:
        _check_free(export_dir, version)


def write_model(
    generator: keras.Model,
    export_dir: str,
    version: int | None = None,
    options: serving.ServingOptions | None = None,
    warmup: bool = True,
    model_name: str = "pix2pix",
    metadata: dict | None = None,
    pad_multiple: int | None = None,
    input_bits: int = 8,
    output_bits: int = 8,
) -> str:
    """Writes `<export_dir>/<version>/` atomically and returns its path.

    `metadata` (e.g. the run's config and checkpoint) is saved as JSON in
    assets.extra/pix2pix_export.json, with the serving options, the training size,
    the multiple `pad_multiple` (2^unet_depth; default: the generator's downsampling
    factor) that native-size inputs are padded to, the generator's input and output
    channels and the bit depths `input_bits` / `output_bits` it serves with (exports
    from before these fields were recorded are 3-channel and 8-bit).
    """
    prepare_export_dir(export_dir, version)
    archive_options = options or serving.ServingOptions()
    functions = serving.ServingFunctions(
        generator, archive_options, pad_multiple, input_bits, output_bits
    )
    archive = serving.build_export_archive(functions)
    height, width = functions.training_size

    def write_contents(staging: str) -> None:
        archive.write_out(staging, verbose=False)
        if warmup:
            write_warmup(staging, functions.training_size, model_name, functions.input_channels)
        record = {
            **(metadata or {}),
            # An int for square sizes, as before non-square training sizes.
            "image_size": height if height == width else [height, width],
            "training_size": [height, width],
            "pad_multiple": functions.pad_multiple,
            "input_channels": functions.input_channels,
            "output_channels": functions.output_channels,
            "input_bits": functions.input_bits,
            "output_bits": functions.output_bits,
            "serving_options": dataclasses.asdict(archive_options),
        }
        tf.io.gfile.makedirs(os.path.join(staging, "assets.extra"))
        with open(os.path.join(staging, METADATA_FILE), "w") as file:
            json.dump(record, file, indent=2, sort_keys=True)

    return write_version(export_dir, version, write_contents)


def write_version(export_dir: str, version: int | None, write_contents) -> str:
    """Writes `<export_dir>/<version>/` atomically (`version` None: the next free one)
    with `write_contents(staging_dir)`, and returns its path.

    Under the export directory's lock: stale staging folders are removed, the version
    is chosen, the contents are written into a staging folder, made readable and
    renamed into place. A failure or interrupt removes the staging folder; OS and
    TensorFlow write errors become one-line ExportErrors. Every export format uses it.
    """
    with _locked(export_dir):
        _remove_stale_staging(export_dir)
        version = next_version(export_dir) if version is None else version
        final = _check_free(export_dir, version)
        try:
            staging = tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{version}-", dir=export_dir)
        except OSError as error:
            raise _write_error(export_dir, version, error) from None
        try:
            write_contents(staging)
            # mkdtemp makes the directory 0700; a server running as another user must read it.
            _make_readable(staging)
            if os.path.exists(final):
                raise ExportError(f"{final} appeared while exporting; not overwriting it.")
            os.rename(staging, final)
        except BaseException as error:
            # Interrupts included: the staging folder must not outlive a failed export.
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(error, OSError | tf.errors.OpError):
                raise _write_error(export_dir, version, error) from None
            raise
    return final


def _check_free(export_dir: str, version: int) -> str:
    """Returns `<export_dir>/<version>`, or raises if that version exists."""
    final = os.path.join(export_dir, str(version))
    if os.path.exists(final):
        raise ExportError(
            f"{final} already exists; versions are never overwritten. Pass another "
            "--version, or leave it out to use the next free one."
        )
    return final


@contextlib.contextmanager
def _locked(export_dir: str):
    """Holds an exclusive flock on the export directory (released if the process dies)."""
    descriptor = os.open(export_dir, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _remove_stale_staging(export_dir: str) -> list[str]:
    """Removes staging folders of killed exports; call only while holding the lock."""
    removed = []
    for name in sorted(os.listdir(export_dir)):
        path = os.path.join(export_dir, name)
        if name.startswith(STAGING_PREFIX) and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
            print(f"Removed {path}, left by an interrupted export.")
            removed.append(path)
    return removed


def _write_error(export_dir: str, version: int, error: BaseException) -> ExportError:
    """A one-line ExportError for a failed write; says to free space when the disk is full."""
    if isinstance(error, tf.errors.OpError):
        reason = error.message.strip().splitlines()[0] if error.message.strip() else ""
    else:
        reason = error.strerror or str(error)
    if files.is_disk_full(error) or isinstance(error, tf.errors.ResourceExhaustedError):
        return ExportError(
            f"--export_dir {export_dir}: no space left on the device while writing version "
            f"{version}; nothing was written. Free some space (or pass another --export_dir) "
            "and rerun."
        )
    return ExportError(
        f"--export_dir {export_dir}: writing version {version} failed ({reason}); "
        "nothing was written."
    )


def _make_readable(root: str) -> None:
    for directory, _, names in os.walk(root):
        os.chmod(directory, 0o755)
        for name in names:
            os.chmod(os.path.join(directory, name), 0o644)


def export(
    workdir: str,
    export_dir: str,
    checkpoint: str | None = None,
    version: int | None = None,
    options: serving.ServingOptions | None = None,
    precision: str = "float32",
    warmup: bool = True,
    model_name: str = "pix2pix",
) -> str:
    """Restores the generator from a run directory and exports it; returns the version dir."""
    if options is not None:
        options.validate()
    try:
        config, generator, path = run_dir.restore_generator(workdir, checkpoint, precision)
    except (FileNotFoundError, ValueError) as error:
        raise ExportError(str(error)) from None
    metadata = {"checkpoint": path, "precision": precision, "config": config.to_dict()}
    pad_multiple = models.pad_multiple(**config_lib.pad_multiple_arguments(config))
    input_bits, output_bits = config_lib.bit_depths(config.data)
    return write_model(
        generator,
        export_dir,
        version,
        options,
        warmup,
        model_name,
        metadata,
        pad_multiple,
        input_bits,
        output_bits,
    )
