"""The page that generates in the browser: `--client_side` and `export.py --format web`.

Both serve the demo's own page (static/: the same painting UI) with `info.json` saying
`client_side`, so that the page runs the ONNX export itself with ONNX Runtime Web
(static/web.js) and never asks a server for a generation. The folder the page needs:

    index.html demo.js demo.css web.js   the page (static/)
    info.json                            what it shows: model, brushes, canvas, limits
    model.onnx  pix2pix_export.json      the ONNX export and its record
    ort/                                 ONNX Runtime Web's files + LICENSE (web_runtime)
    examples/<n>.png                     val inputs offered as starting points, if any

`export.py --format web` writes it as a versioned export (`export`: serving/deploy.py's
ONNX export, with `write_site` filling its staging folder); the demo serves the same
names from memory. This module imports TensorFlow (through deploy.py): the demo
imports it only for --client_side.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile

from pix2pix_tf import configs as config_lib
from pix2pix_tf.demo import backend as backend_lib
from pix2pix_tf.demo.options import DemoOptions
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.serving import deploy, deploy_runtimes, web_runtime
from pix2pix_tf.serving import export as export_lib
from pix2pix_tf.serving.options import DEFAULT_MAX_PIXELS

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
PAGE_FILES = ("index.html", "demo.js", "demo.css", "web.js")
INFO_FILE = "info.json"
MODEL_FILE = deploy.FILE_NAMES["web"]  # model.onnx
METADATA_FILE = deploy.METADATA_FILE  # pix2pix_export.json
RUNTIME_DIR = "ort"
EXAMPLES_DIR = "examples"
# The page refuses larger models with a message: WebAssembly (32-bit) gives a page 4 GB,
# which must hold the model bytes, ONNX Runtime's copy of the weights and the activations
# (the demo's --max_model_mb default).
DEFAULT_MAX_MODEL_MB = DemoOptions().max_model_mb
# The largest upload the static page decodes (the demo's --max_upload_mb default).
DEFAULT_MAX_UPLOAD_MB = DemoOptions().max_upload_mb
# export.py --format web --quantize: float32 weights; float16 weights; int8 weights and
# activations calibrated on --representative_examples training inputs (QDQ). Input and
# output stay float32, so the contract is unchanged (serving/onnx_export.py).
QUANTIZATIONS = ("none", "float16", "int8")


@dataclasses.dataclass
class WebModel:
    """An ONNX export for the page: its bytes, its record, what the page calls it."""

    data: bytes
    record: dict
    description: str

    @property
    def max_pixels(self) -> int:
        bound = self.record.get("serving_options", {}).get("max_pixels")
        return bound if isinstance(bound, int) and bound > 0 else DEFAULT_MAX_PIXELS


def client_info(record: dict, model_bytes: int, max_model_mb: int = DEFAULT_MAX_MODEL_MB) -> dict:
    """info.json's `client_side`: where the model and runtime are, and the page's limits."""
    max_pixels = WebModel(b"", record, "").max_pixels
    return {
        "model_url": MODEL_FILE,
        "model_bytes": model_bytes,
        "max_model_bytes": max_model_mb * 2**20,
        "max_pixels": max_pixels,
        "runtime": {
            "package": web_runtime.RUNTIME.package,
            "version": web_runtime.RUNTIME.version,
            "dir": f"{RUNTIME_DIR}/",
            "bundles": {name: files[0] for name, files in web_runtime.RUNTIME.bundles.items()},
        },
    }


def write_site(folder: str, model: WebModel, config, examples=(), examples_note=None) -> None:
    """Writes the page's folder (see the module docstring) into `folder`, which exists."""
    for name in PAGE_FILES:
        shutil.copyfile(os.path.join(STATIC_DIR, name), os.path.join(folder, name))
    web_runtime.copy_files(os.path.join(folder, RUNTIME_DIR))
    with open(os.path.join(folder, MODEL_FILE), "wb") as file:
        file.write(model.data)
    with open(os.path.join(folder, METADATA_FILE), "w") as file:
        json.dump(model.record, file, indent=2, sort_keys=True)
    listed = []
    if examples:
        os.makedirs(os.path.join(folder, EXAMPLES_DIR))
    for index, example in enumerate(examples):
        url = f"{EXAMPLES_DIR}/{index}.png"
        with open(os.path.join(folder, url), "wb") as file:
            file.write(example.png)
        listed.append({"name": example.name, "url": url})
    palette = backend_lib.palette_of("auto", config)
    info = backend_lib.page_info(
        model.description,
        config,
        palette,
        listed,
        examples_note,
        DEFAULT_MAX_UPLOAD_MB * 2**20,
        client_info(model.record, len(model.data)),
    )
    with open(os.path.join(folder, INFO_FILE), "w") as file:
        json.dump(info, file, indent=2)


def export(
    workdir: str,
    export_dir: str,
    quantize: str = "none",
    examples: int = 12,
    **arguments,
) -> str:
    """`export.py --format web`: the run's ONNX export (deploy.export's record, format
    "web") with the page, the runtime's files and up to `examples` val inputs, written
    as one versioned folder; returns its path. `arguments` are deploy.export's."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(
            f"--quantize {quantize} does not apply to --format web; use one of "
            f"{', '.join(QUANTIZATIONS)} (dynamic_int8 is LiteRT's)."
        )
    # Fetched (or found) before the slow conversion: offline, this fails at once.
    web_runtime.runtime_dir()

    def write_extra(staging: str, record: dict, data: bytes) -> None:
        model = WebModel(data, record, f"ONNX export, step {record.get('step', '?')}")
        config = config_lib.Config.from_dict(record["config"])
        found, note = backend_lib.val_examples(DemoOptions(model="-", examples=examples), config)
        write_site(staging, model, config, found, note)

    return deploy.export(
        workdir, export_dir, "web", quantize, write_extra=write_extra, **arguments
    )


# -- the demo's --client_side model ------------------------------------------------


def load_web_model(path: str, checkpoint: str | None = None) -> WebModel:
    """--model for --client_side: an ONNX or web export (the .onnx file, its version
    folder or their base path), or a run directory, exported to ONNX on the way (in a
    temporary folder). Raises backend_lib.DemoError, one line, for anything else."""
    if os.path.isdir(path) and run_dir.is_run_directory(path):
        with tempfile.TemporaryDirectory() as folder:
            try:
                exported = deploy.export(path, folder, "onnx", checkpoint=checkpoint)
            except (export_lib.ExportError, ValueError, OSError) as error:
                raise backend_lib.DemoError(str(error)) from None
            return _read_onnx(os.path.join(exported, MODEL_FILE), run=path)
    if checkpoint is not None:
        raise backend_lib.DemoError(
            f"--checkpoint needs --model to be a run directory (with config.json); {path} is not."
        )
    try:
        kind, found = deploy_runtimes.find(path)
    except deploy_runtimes.DeployModelError as error:
        raise backend_lib.DemoError(str(error)) from None
    if kind != "onnx":
        raise backend_lib.DemoError(
            f"--model {path}: --client_side runs ONNX in the browser, and this is a "
            f"{kind} export; export the run with `python export.py --workdir RUN --format web` "
            "(or onnx), or pass the run directory."
        )
    return _read_onnx(found)


def web_backend(options: DemoOptions) -> backend_lib.Backend:
    """The demo's backend for --client_side: no generation on the server, the model
    for the page."""
    model = load_web_model(options.model, options.checkpoint)

    def refuse(images: list[bytes]) -> list[bytes]:
        raise backend_lib.RequestError(
            "this demo generates in the browser (--client_side); the server runs no model."
        )

    return backend_lib.Backend(
        generate_batch=refuse,
        description=model.description,
        config=config_lib.Config.from_dict(model.record["config"]),
        max_pixels=model.max_pixels,
        web=model,
    )


def _read_onnx(path: str, run: str | None = None) -> WebModel:
    try:
        loaded = deploy_runtimes.load(path, threads=1)  # Checks the metadata and signature.
    except deploy_runtimes.DeployModelError as error:
        raise backend_lib.DemoError(str(error)) from None
    with open(path, "rb") as file:
        data = file.read()
    record = loaded.metadata
    what = f"run {run}" if run else path
    description = f"ONNX {what} (step {record.get('step', '?')}), in the browser"
    return WebModel(data, record, description)

