"""What the demo page generates with and offers: the model, the brushes, the val inputs.

The model is loaded by serving/predict.py's `load_model` (a SavedModel, an export base
path or a run directory) or reached through TF Serving's REST API (serving/client.py);
either way the page sends encoded images and gets PNG bytes back, through the same
serving graph as predict.py and TF Serving.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import struct
import threading
import urllib.error
from collections.abc import Callable

from PIL import Image, UnidentifiedImageError

from pix2pix_tf import configs as config_lib
from pix2pix_tf.data import registry
from pix2pix_tf.demo.options import DemoOptions
from pix2pix_tf.serving.options import DEFAULT_MAX_PIXELS

# The pixel bound on uploads with --tile: a quarter of what the decoder holds in RGB(A).
TILED_MAX_PIXELS = (2**31 - 1) // 4
# The canvas when nothing says what size the model was trained at (TF Serving).
DEFAULT_CANVAS_HW = (256, 256)
# The eraser paints the background: Cityscapes' unlabelled black, or white.
CITYSCAPES_BACKGROUND = "#000000"
FREE_BACKGROUND = "#ffffff"


class DemoError(ValueError):
    """A problem with the demo's flags or model that stops it from starting."""


class RequestError(ValueError):
    """A request the page made that cannot be served; its message is shown on the page."""


def _hex(color: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


@dataclasses.dataclass
class Example:
    name: str
    png: bytes


@dataclasses.dataclass
class Backend:
    """`generate(encoded image) -> PNG bytes`, and what the page needs to know."""

    generate_batch: Callable[[list[bytes]], list[bytes]]
    description: str
    config: config_lib.Config | None = None
    owner: object = None
    # The largest image the model serves (an export's --max_pixels; the default otherwise).
    max_pixels: int = DEFAULT_MAX_PIXELS
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    # --client_side: the ONNX model the page runs (demo/site.py's WebModel); None otherwise.
    web: object = None

    def generate(self, image: bytes) -> bytes:
        # One request at a time: the CPU is the limit, and TF Serving queues anyway.
        with self.lock:
            return self.generate_batch([image])[0]


# The project imports below sit inside functions: with --serving_url the demo talks to TF
# Serving and never imports TensorFlow, so only the local model's paths import it.


def _local_backend(options: DemoOptions) -> Backend:
    from pix2pix_tf.serving import predict

    try:
        model = predict.load_model(options.model, options.checkpoint)
    except predict.PredictError as error:
        raise DemoError(str(error)) from None
    config, max_pixels = _model_config(options.model)
    generate_batch = model.serve
    if options.tile is not None:
        generate_batch = _tiled_generate(model, options)
        # The tile is the unit the model runs; uploads are bounded by --max_upload_mb
        # and what the decoder holds.
        max_pixels = TILED_MAX_PIXELS
    return Backend(
        generate_batch=generate_batch,
        description=model.description,
        config=config,
        owner=model,
        max_pixels=max_pixels,
    )


def _tiled_generate(model, options: DemoOptions) -> Callable[[list[bytes]], list[bytes]]:
    """model.serve, except that an image larger than --tile along either side is generated
    tile by tile (serving/tiling.py) into an in-memory PNG. Raises DemoError (naming
    --tile) when the model has no float contract or cannot run that tile."""
    from pix2pix_tf.serving import tiling
    from pix2pix_tf.serving.options import parse_tile

    tile_hw = parse_tile(options.tile)
    if model.tiled is None:
        raise DemoError(f"--tile: {model.description} has no float `generate` contract.")
    try:
        tiling.check_tile(tile_hw, options.overlap, model.tiled)
        # Instance norm of a run directory: the image's statistics (two passes).
        tiled = model.tiled.with_statistics("auto")
    except tiling.TilingError as error:
        raise DemoError(str(error)) from None

    def generate_batch(images: list[bytes]) -> list[bytes]:
        outputs = []
        for data in images:
            size = header_size(data)
            if size is None or (size[1] <= tile_hw[0] and size[0] <= tile_hw[1]):
                outputs.append(model.serve([data])[0])
                continue
            try:
                pixels = tiling.decode_file("the image", data, tiled.input_bits)
            except tiling.TilingError as error:
                raise RequestError(str(error)) from None
            buffer = io.BytesIO()
            tiling.write_tiled(
                tiled,
                pixels,
                None,
                tile_hw,
                options.overlap,
                png_compression=tiled.png_compression,
                stream=buffer,
            )
            outputs.append(buffer.getvalue())
        return outputs

    return generate_batch


def _model_config(path: str) -> tuple[config_lib.Config | None, int]:
    """The run's config (a run directory's config.json, or the one an export recorded)
    and the pixel bound the model serves (an export's --max_pixels, else the default)."""
    from pix2pix_tf.serving import export as export_lib

    candidates = [
        os.path.join(path, config_lib.CONFIG_FILE),
        os.path.join(path, export_lib.METADATA_FILE),
    ]
    if os.path.isdir(path):
        # A TF Serving base path: the highest version is the one load_model serves.
        versions = sorted((name for name in os.listdir(path) if name.isdigit()), key=int)
        candidates += [
            os.path.join(path, name, export_lib.METADATA_FILE) for name in versions[::-1]
        ]
    for candidate in candidates:
        try:
            with open(candidate) as file:
                values = json.load(file)
            config = config_lib.Config.from_dict(values.get("config", values))
        except (OSError, ValueError, TypeError, AttributeError):
            continue
        bound = values.get("serving_options", {}).get("max_pixels")
        return config, bound if isinstance(bound, int) and bound > 0 else DEFAULT_MAX_PIXELS
    return None, DEFAULT_MAX_PIXELS


def _serving_backend(options: DemoOptions) -> Backend:
    from pix2pix_tf.serving import client

    def generate_batch(images: list[bytes]) -> list[bytes]:
        try:
            return client.rest_generate(options.serving_url, images, options.model_name)
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read())["error"]
            except (ValueError, KeyError, TypeError, OSError):
                message = f"HTTP {error.code} {error.reason}"
            raise RequestError(f"TF Serving: {message}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise RequestError(f"TF Serving at {options.serving_url}: {reason}") from None

    return Backend(generate_batch, f"TF Serving {options.serving_url} ({options.model_name})")


def load_backend(options: DemoOptions) -> Backend:
    if options.client_side:
        from pix2pix_tf.demo import site

        return site.web_backend(options)
    return _serving_backend(options) if options.serving_url else _local_backend(options)


# -- what the page shows ----------------------------------------------------------


def palette(options: DemoOptions, config: config_lib.Config | None) -> dict:
    """{"kind": "cityscapes"|"free", "classes": [{"name", "color"}], "background"}."""
    return palette_of(options.palette, config)


def palette_of(kind: str, config: config_lib.Config | None) -> dict:
    """The brushes of --palette `kind` (auto, cityscapes, free) for the run's `config`."""
    if kind == "auto":
        dataset = config.data.dataset if config is not None else None
        known = dataset in registry.DATASETS
        kind = "cityscapes" if known and registry.DATASETS[dataset].cityscapes_palette else "free"
    if kind == "free":
        return {"kind": "free", "classes": [], "background": FREE_BACKGROUND}
    from pix2pix_tf.data import cityscapes_labels

    classes = [{"name": name, "color": _hex(color)} for name, color in cityscapes_labels.CLASSES]
    classes.append({"name": "unlabelled", "color": CITYSCAPES_BACKGROUND})
    return {"kind": "cityscapes", "classes": classes, "background": CITYSCAPES_BACKGROUND}


def page_info(
    description: str,
    config: config_lib.Config | None,
    palette: dict,
    examples: list[dict],
    examples_note: str | None,
    max_upload_bytes: int,
    client_side: dict | None = None,
) -> dict:
    """What the page is told (the demo's /api/info and /info.json, a web export's
    info.json); `client_side` (demo/site.py's client_info) makes it generate itself."""
    height, width = canvas_hw(config)
    info = {
        "model": description,
        "palette": palette,
        "canvas": {"width": width, "height": height},
        "examples": examples,
        "examples_note": examples_note,
        "max_upload_bytes": max_upload_bytes,
    }
    if client_side is not None:
        info["client_side"] = client_side
    return info


def canvas_hw(config: config_lib.Config | None) -> tuple[int, int]:
    return config_lib.image_hw(config.data) if config is not None else DEFAULT_CANVAS_HW


def val_examples(
    options: DemoOptions, config: config_lib.Config | None
) -> tuple[list[Example], str | None]:
    """Up to options.examples inputs of the run's evaluation split as 8-bit PNGs, and
    why there are none (None when there are)."""
    if options.examples == 0:
        return [], "no val inputs offered (--examples 0)."
    if config is None:
        return [], "no val inputs: the model's run and dataset are not known (TF Serving)."
    import numpy as np
    import tensorflow as tf

    from pix2pix_tf.data import pipeline, prepare

    data = config.data
    if options.data_dir is not None:
        data = dataclasses.replace(data, data_dir=options.data_dir)
    split = registry.dataset_info(data.dataset).eval_split
    try:
        # Never prepares: a demo offers what is there.
        dataset = prepare.load_prepared(data)
        batches = pipeline.build_dataset(
            dataset, split, training=False, batch_size=1, with_keys=True, native_size=True
        )
        examples = []
        for inputs, _, keys in batches.take(options.examples):
            pixels = np.round((inputs[0].numpy() + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
            if pixels.shape[-1] == 1:
                pixels = np.repeat(pixels, 3, axis=-1)
            name = os.path.basename(keys[0].numpy().decode("utf-8", "replace"))
            examples.append(Example(name, tf.io.encode_png(pixels).numpy()))
    except (OSError, ValueError, tf.errors.OpError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return [], f"no val inputs: {first}"
    if not examples:
        return [], f"no val inputs: the {data.dataset} {split} split is empty."
    return examples, None


def header_size(data: bytes) -> tuple[int, int] | None:
    """The (width, height) an image file's header states, read without decoding it and
    without Pillow's decompression-bomb check (which refuses large images without
    saying their size); None when no Pillow reader recognises the file."""
    Image.init()
    for name in Image.ID:
        factory, accept = Image.OPEN[name]
        if accept is not None and not accept(data[:16]):
            continue
        try:
            with factory(io.BytesIO(data), "") as image:
                return image.size
        except Image.DecompressionBombError:
            return None  # A reader that checks its frames itself; Image.open will say so.
        except (OSError, EOFError, SyntaxError, ValueError, IndexError, TypeError, struct.error):
            continue
    return None


def _check_pixels(size: tuple[int, int] | None, max_pixels: int) -> None:
    if size is not None and size[0] * size[1] > max_pixels:
        width, height = size
        raise RequestError(
            f"the image is {width}x{height} = {width * height} pixels, over the bound of "
            f"{max_pixels} pixels per image the model serves (export.py --max_pixels); "
            "send a smaller image."
        )


def checked_upload(
    data: bytes, limit_bytes: int, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[bytes, int, int]:
    """An uploaded file as an upright 8-bit RGB PNG and its (width, height); raises
    RequestError for files over the limit, non-images and images over the pixel bound
    (checked on the header's size, before anything is decoded)."""
    from pix2pix_tf.serving import predict

    if len(data) > limit_bytes:
        raise RequestError(
            f"the file is {len(data) / 2**20:.1f} MiB; uploads are limited to "
            f"{limit_bytes / 2**20:.0f} MiB (--max_upload_mb)."
        )
    _check_pixels(header_size(data), max_pixels)
    try:
        with Image.open(io.BytesIO(predict.upright(data))) as image:
            width, height = image.size
            _check_pixels(image.size, max_pixels)
            rgb = image.convert("RGB")
    except UnidentifiedImageError:
        raise RequestError("not an image Pillow can read (PNG, JPEG, GIF, BMP ...).") from None
    except Image.DecompressionBombError as error:
        raise RequestError(f"the image is too large: {error}") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise RequestError(f"the image cannot be decoded ({error}).") from None
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue(), width, height
