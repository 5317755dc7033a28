"""The options of the entry points other than train.py, without TensorFlow.

`export.py`, `evaluate.py`, `predict.py` and `python -m pix2pix_tf.segmentation`
generate their flags from these dataclasses (`pix2pix_tf/flags.py`) before importing
TensorFlow, so `--help` and flag errors answer at once; each field's help text is
in its metadata. The modules that act on these options (serving, export,
evaluation, the segmenter, predict) take them as arguments.
"""

from __future__ import annotations

import dataclasses
import os

from pix2pix_tf import choices
from pix2pix_tf.choices import required, setting
from pix2pix_tf.config import DataConfig

# -- the run a command reads --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """A run directory and one of its checkpoints (export.py, evaluate.py)."""

    workdir: str = required("Run directory written by train.py.")
    checkpoint: str | None = setting(
        None, "Checkpoint prefix, e.g. <workdir>/ckpt-1000; None: the latest."
    )


# -- serving and export ---------------------------------------------------------


# The default bound of --max_pixels (see ServingOptions).
DEFAULT_MAX_PIXELS = 2048 * 2048


@dataclasses.dataclass(frozen=True)
class ServingOptions:
    resize_method: str = setting(
        "bilinear",
        "Resizing of inputs to the model's size and of outputs back (antialiased when shrinking).",
        choices.RESIZE_METHODS,
    )
    # Level 1 encodes a 256x256 photo about 4x faster than level 6, for 2-4% more bytes.
    png_compression: int = setting(
        1, "Output PNG compression, 0 (fastest) to 9 (smallest); -1: zlib's default (6)."
    )
    parallel_iterations: int = setting(8, "Images decoded/encoded concurrently within a request.")
    test_time_mode: str = setting(
        "inference",
        "inference: moving BN statistics, no dropout (repeatable, batch-independent). "
        "paper: per-image BN statistics and dropout noise seeded by the image content "
        "and --seed, as at test time in the paper (still repeatable and stateless).",
        choices.TEST_TIME_MODES,
    )
    seed: int = setting(0, "Seed for paper mode.")
    serving_size: str = setting(
        "native",
        "native: run the fully convolutional generator at each input's own size (padded "
        "by reflection to a multiple of 2^unet_depth, cropped back; `generate` takes any "
        "such size). training: resize every input to the training size and the output "
        "back, as exports did before (`generate` takes only the training size).",
        choices.SERVING_SIZES,
    )
    # 2048x2048: a full 1024x2048 Cityscapes frame fits twice over.
    max_pixels: int = setting(
        DEFAULT_MAX_PIXELS,
        "Largest input served, in pixels per image (height x width after EXIF "
        "orientation); larger inputs fail with InvalidArgument naming their position.",
    )

    def validate(self) -> None:
        choices.check_choices(self)
        if self.max_pixels < 1:
            raise ValueError(f"--max_pixels must be >= 1, got {self.max_pixels}.")
        if not -1 <= self.png_compression <= 9:
            raise ValueError(f"--png_compression must be in [-1, 9], got {self.png_compression}.")
        if self.parallel_iterations < 1:
            raise ValueError(f"--parallel_iterations must be >= 1, got {self.parallel_iterations}.")


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """Where and how export.py writes the SavedModel (ServingOptions: what it serves)."""

    export_dir: str = setting("exported/pix2pix", "TF Serving base path.")
    version: int | None = setting(None, "Version directory to write; None: the highest + 1.")
    precision: str = setting(
        "float32",
        "Compute precision of the exported graph; float32 runs on any CPU or GPU.",
        choices.EXPORT_PRECISIONS,
    )
    model_name: str = setting("pix2pix", "Model name in warmup requests.")
    warmup: bool = setting(True, "Write assets.extra/tf_serving_warmup_requests.")
    format: str = setting(
        "saved_model",
        "saved_model: TF Serving (bytes and float signatures). litert (.tflite) and onnx: "
        "the float `generate` contract only, NHWC float32 in [-1, 1], in their own "
        "versioned folder under --export_dir.",
        choices.EXPORT_FORMATS,
    )
    quantize: str = setting(
        "none",
        "With --format litert: float16 or int8 weights (dynamic_int8), or int8 weights "
        "and activations calibrated on --representative_examples training pairs (int8).",
        choices.QUANTIZATIONS,
    )
    representative_examples: int = setting(
        100, "With --quantize int8: training-split inputs used to calibrate activations."
    )


# -- predict ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PredictOptions:
    model: str = required("SavedModel, export base path or run dir.")
    input: tuple[str, ...] = required("Image files and directories.")
    output: str = required("Directory for the generated PNGs.")
    checkpoint: str | None = setting(
        None,
        "With a run directory as --model: this checkpoint (e.g. <run>/ckpt-1000) instead "
        "of the latest.",
    )
    batch_size: int = setting(8, "Images per generator call.")
    strip: bool = setting(False, "Also write input | output strips.")
    gallery: bool = setting(False, "Strips plus an index.html.")
    pairs: bool = setting(
        False,
        "Inputs are side-by-side pairs (as in the datasets): one half is sent to the "
        "model, the other is shown as the target in strips.",
    )
    direction: str | None = setting(
        None,
        "With --pairs: AtoB sends the left half. None: the run's direction.",
        choices.DIRECTIONS,
    )


# -- the FCN-score's segmenter ----------------------------------------------------

SEGMENTER_ROOT = os.path.join("checkpoints", "segmenter")
# evaluate.py --eval_size: each pair's own size, or the run's training size.
EVAL_SIZES = ("native", "training")


@dataclasses.dataclass(frozen=True)
class SegmenterConfig:
    dataset: str = setting("cityscapes", "Dataset whose real photos and label maps train it.")
    image_size: str | int = setting(
        128,
        "Photo size: SIZE (square) or HEIGHTxWIDTH, e.g. 64x128; evaluate.py picks the "
        "segmenter of the run's training size.",
    )
    filters: int = setting(
        32, "Filters of the first encoder block; doubled at each of `depth` downsamplings."
    )
    depth: int = setting(4, "Downsamplings of the U-Net.")
    batch_size: int = setting(8, "Examples per training step.")
    learning_rate: float = setting(1e-3, "Adam with a cosine decay over all steps.")
    steps: int = setting(6000, "Training steps.")
    steps_per_epoch: int = setting(
        500, "Steps per epoch: between validation passes and resume points."
    )
    seed: int = setting(0, "Initial weights and input order.")


@dataclasses.dataclass(frozen=True)
class SegmenterPaths:
    """Where the segmenter command keeps segmenters and finds its data."""

    root: str = setting(SEGMENTER_ROOT, "Where segmenters are kept.")
    data_dir: str = setting(DataConfig.data_dir, "Where prepared datasets live.")
    manual_dir: str | None = setting(None, "Where archives you have are.")


# -- evaluation -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EvalOptions:
    split: str | None = setting(None, "Split to score; None: the dataset's evaluation split.")
    batch_size: int = setting(8, "Examples per generator call.")
    fcn: str = setting(
        "auto",
        "FCN-score: auto (when a segmenter is trained), on (required), off.",
        choices.FCN_CHOICES,
    )
    segmenter_root: str = setting(SEGMENTER_ROOT, "Where trained segmenters are kept.")
    gallery_size: int = setting(50, "Examples shown in the HTML gallery; all of them are scored.")
    max_examples: int | None = setting(
        None, "Evaluate only the first N examples; None: the whole split."
    )
    eval_size: str = setting(
        "native",
        "native: the generator runs at each pair's own size (reflect-padded to a multiple "
        "of 2^unet_depth, cropped back), metrics and gallery at that size; training: pairs "
        "resized to the training size first (the behaviour before native size).",
        EVAL_SIZES,
    )
    fid: str = setting(
        "auto",
        "FID and KID of the generated against the real target images (InceptionV3): auto "
        "(when the weights are found), on (required; Keras downloads them when online), off.",
        choices.FID_CHOICES,
    )
    inception_weights: str | None = setting(
        None,
        "InceptionV3 weights without the top (inception_v3_weights_tf_dim_ordering_tf_"
        "kernels_notop.h5); None: the Keras cache, $KERAS_HOME or ~/.keras, under models/.",
    )

    def validate(self) -> None:
        choices.check_choices(self)
        if self.batch_size < 1:
            raise ValueError(f"--batch_size must be >= 1, got {self.batch_size}.")
        if self.max_examples is not None and self.max_examples < 1:
            raise ValueError(
                f"--max_examples must be >= 1 (or left out for the whole split), got "
                f"{self.max_examples}."
            )
        if self.gallery_size < 0:
            raise ValueError(f"--gallery_size must be >= 0, got {self.gallery_size}.")


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
