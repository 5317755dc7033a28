"""The options of the browser demo (`python -m pix2pix_tf.demo`); no TensorFlow."""

from __future__ import annotations

import dataclasses

from pix2pix_tf.configs import choices
from pix2pix_tf.configs.choices import setting
from pix2pix_tf.serving.options import check_tile_flags

# -- the browser demo ---------------------------------------------------------------

# Uploads larger than this are refused (the page says so); 20 MiB holds a full-size
# Cityscapes frame as PNG several times over.
DEFAULT_MAX_UPLOAD_MB = 20


@dataclasses.dataclass(frozen=True)
class DemoOptions:
    """`python -m pix2pix_tf.demo`: where the model is and how the page is served."""

    model: str | None = setting(
        None,
        "SavedModel version directory, export base path or run directory (as predict.py's "
        "--model). Not needed with --serving_url.",
    )
    serving_url: str | None = setting(
        None,
        "http://host:port of a running TF Serving REST API (8501) to generate with instead "
        "of --model.",
    )
    model_name: str = setting("pix2pix", "With --serving_url: the served model's name.")
    checkpoint: str | None = setting(
        None, "With a run directory as --model: this checkpoint instead of the latest."
    )
    host: str = setting(
        "127.0.0.1",
        "Address to listen on. The default answers this machine only; any other (e.g. "
        "0.0.0.0) lets the network use the page and the model, with a warning.",
    )
    port: int = setting(8000, "Port to listen on; 0 picks a free one.")
    palette: str = setting(
        "auto",
        "Brushes: cityscapes (the Cityscapes classes by name), free (a colour picker), or "
        "auto (cityscapes when the model's dataset uses that palette; free otherwise and "
        "with --serving_url).",
        choices.DEMO_PALETTES,
    )
    data_dir: str | None = setting(
        None,
        "Where the run's prepared data is, for the val inputs offered as starting points; "
        "None: the run's --data_dir.",
    )
    examples: int = setting(12, "Val inputs offered as starting points (0: none).")
    max_upload_mb: int = setting(
        DEFAULT_MAX_UPLOAD_MB, "Largest upload accepted, in MiB; larger ones are refused."
    )
    tile: str | None = setting(
        None,
        "With --model: an upload larger than this tile (H or HxW) along either side is "
        "generated tile by tile, --overlap pixels shared and blended (predict.py --tile), "
        "and the model's --max_pixels no longer bounds uploads (the tile is the unit).",
    )
    overlap: int = setting(64, "With --tile: pixels each tile shares with its neighbours.")
    client_side: bool = setting(
        False,
        "Generate in the browser: the page runs --model (an ONNX or web export, or a run "
        "directory, exported to ONNX at start) with ONNX Runtime Web, and the server runs "
        "no model (docs/browser.md).",
    )
    max_model_mb: int = setting(
        1024,
        "With --client_side: the largest model the page loads, in MiB; a larger one is "
        "refused on the page with what to do (WebAssembly gives a page 4 GB in all).",
    )

    def validate(self) -> None:
        choices.check_choices(self)
        if (self.model is None) == (self.serving_url is None):
            raise ValueError("give one of --model PATH or --serving_url URL.")
        if self.checkpoint is not None and self.model is None:
            raise ValueError("--checkpoint needs --model (a run directory).")
        if self.serving_url is not None and not self.serving_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(
                f"--serving_url must start with http:// or https://, got {self.serving_url!r}."
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port must be in [0, 65535], got {self.port}.")
        if self.examples < 0:
            raise ValueError(f"--examples must be >= 0, got {self.examples}.")
        if self.max_upload_mb < 1:
            raise ValueError(f"--max_upload_mb must be >= 1, got {self.max_upload_mb}.")
        if self.client_side and self.model is None:
            raise ValueError("--client_side needs --model (the browser runs that model).")
        if self.client_side and self.tile is not None:
            raise ValueError(
                "--tile does not apply with --client_side (the page runs whole images)."
            )
        if self.max_model_mb < 1:
            raise ValueError(f"--max_model_mb must be >= 1, got {self.max_model_mb}.")
        if self.tile is not None:
            if self.model is None:
                raise ValueError("--tile needs --model (TF Serving runs whole images).")
            check_tile_flags(self.tile, self.overlap)
