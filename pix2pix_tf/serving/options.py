"""The options of export.py and predict.py, and the run a command reads; no TensorFlow.

The commands generate their flags from these dataclasses before importing TensorFlow,
so `--help` and flag errors answer at once; each field's help text is in its metadata.
The serving modules (the graph, export, predict) take them as arguments.
"""

from __future__ import annotations

import dataclasses

from pix2pix_tf.configs import choices
from pix2pix_tf.configs.choices import required, setting

# -- the run a command reads --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """A run directory and one of its checkpoints (export.py, evaluate.py)."""

    workdir: str = required("Run directory written by train.py.")
    checkpoint: str | None = setting(
        None,
        "Checkpoint prefix, e.g. <workdir>/ckpt-1000, or `best` (the one train.py "
        "--keep_best kept); None: the latest.",
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
        "versioned folder under --export_dir. web: the onnx file with the demo's page and "
        "ONNX Runtime Web's files, a static folder that generates in the browser.",
        choices.EXPORT_FORMATS,
    )
    quantize: str = setting(
        "none",
        "With --format litert: float16 or int8 weights (dynamic_int8), or int8 weights "
        "(per channel) and activations calibrated on --representative_examples training "
        "pairs, the U-Net's skip ranges equalised first (int8; docs/deploy.md). "
        "With --format web: float16 (half the download) or int8 (a quarter; calibrated "
        "like LiteRT's); input and output stay float32.",
        choices.QUANTIZATIONS,
    )
    representative_examples: int = setting(
        100, "With --quantize int8: training-split inputs used to calibrate activations."
    )
    float_layers: str | None = setting(
        None,
        "With --quantize int8: convolutions kept in float32, comma-separated Keras layer "
        "names (e.g. output_deconv); `python -m pix2pix_tf.benchmark deploy --sensitivity` "
        "measures what each one gains.",
    )

    def float_layer_names(self) -> tuple[str, ...]:
        """--float_layers as a tuple of names (empty without the flag)."""
        if not self.float_layers:
            return ()
        return tuple(name.strip() for name in self.float_layers.split(",") if name.strip())


# -- predict ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PredictOptions:
    model: str = required("SavedModel, export base path or run dir.")
    input: tuple[str, ...] = required("Image files and directories.")
    output: str = required("Directory for the generated PNGs.")
    checkpoint: str | None = setting(
        None,
        "With a run directory as --model: this checkpoint (e.g. <run>/ckpt-1000, or `best`: "
        "the one train.py --keep_best kept) instead of the latest.",
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
    tile: str | None = setting(
        None,
        "Tiled inference for images of any size: H or HxW, the tile the generator runs "
        "at (rounded up to its pad multiple); tiles overlap by --overlap, are blended by a "
        "raised-cosine window and streamed into the PNG, so memory is bounded by the tile "
        "(and the decoded input), not the output. The model's --max_pixels then bounds a "
        "tile, not the image. Not with --strip, --gallery or --pairs (docs/tiling.md).",
    )
    overlap: int = setting(
        64,
        "With --tile: pixels each tile shares with its neighbours (rounded up so that "
        "tiles start on the generator's downsampling grid); must be below the tile.",
    )
    tile_statistics: str = setting(
        "auto",
        "With --tile and an instance-norm generator: tile (each tile normalised by its own "
        "statistics), image (two passes: the statistics accumulated over all tiles, then "
        "every tile normalised by them; run directories only, twice the time), auto "
        "(image for a run directory with instance norm, else tile).",
        choices.TILE_STATISTICS,
    )

    def validate(self) -> None:
        """Raises ValueError (one line naming the flag) for a malformed --tile or
        --overlap; whether the model can run that tile is checked once it is loaded."""
        if self.tile is not None:
            check_tile_flags(self.tile, self.overlap)


def check_tile_flags(tile: str, overlap: int) -> tuple[int, int]:
    """--tile and --overlap as given (predict.py, evaluate.py, the demo) -> the tile's
    (H, W); raises ValueError naming the flag. Whether the model can run that tile is
    checked once it is loaded (tiling.check_tile)."""
    tile_hw = parse_tile(tile)
    if overlap < 0:
        raise ValueError(f"--overlap must be >= 0, got {overlap}.")
    if overlap >= min(tile_hw):
        raise ValueError(
            f"--overlap {overlap} must be smaller than the --tile's shorter side ({min(tile_hw)})."
        )
    return tile_hw


def parse_tile(text: str) -> tuple[int, int]:
    """--tile H or HxW -> (H, W); raises ValueError naming --tile for anything else."""
    parts = text.lower().split("x")
    if len(parts) not in (1, 2) or not all(part.strip().isdigit() for part in parts):
        raise ValueError(f"--tile must be H or HxW in pixels (e.g. 512 or 512x1024), got {text!r}.")
    sides = [int(part) for part in parts]
    if min(sides) < 1:
        raise ValueError(f"--tile sides must be positive, got {text!r}.")
    return (sides[0], sides[-1])
