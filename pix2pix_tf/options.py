"""Option defaults and choice lists of the entry points, without TensorFlow.

`export.py`, `evaluate.py`, `predict.py` and `python -m pix2pix_tf.segmentation` build
their flags from this module before importing TensorFlow, so `--help` and flag errors
answer at once. The modules that use these options (serving, export_lib, evaluation,
segmentation) import them from here; this module imports only the standard library.
"""

from __future__ import annotations

import dataclasses
import os

# -- serving and export ---------------------------------------------------------

RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area", "lanczos3")
TEST_TIME_MODES = ("inference", "paper")
# Compute precisions of an exported graph; float32 runs on any CPU or GPU.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass(frozen=True)
class ServingOptions:
    # How inputs are resized to the generator's size and outputs back to the input's.
    resize_method: str = "bilinear"
    # PNG compression of the outputs: 0 (fastest, largest) to 9; -1 is zlib's default (6).
    # Level 1 encodes a 256x256 photo about 4x faster than level 6, for 2-4% more bytes.
    png_compression: int = 1
    # Images decoded / encoded concurrently within a request.
    parallel_iterations: int = 8
    # `inference`: moving BN statistics, no dropout (repeatable, batch-independent).
    # `paper`: per-image BN statistics and dropout noise seeded from the image content
    # and `seed`, as at test time in the paper; still repeatable and stateless.
    test_time_mode: str = "inference"
    seed: int = 0

    def validate(self) -> None:
        if self.resize_method not in RESIZE_METHODS:
            raise ValueError(
                f"--resize_method must be one of {', '.join(RESIZE_METHODS)}; "
                f"got {self.resize_method!r}."
            )
        if not -1 <= self.png_compression <= 9:
            raise ValueError(f"--png_compression must be in [-1, 9], got {self.png_compression}.")
        if self.parallel_iterations < 1:
            raise ValueError(f"--parallel_iterations must be >= 1, got {self.parallel_iterations}.")
        if self.test_time_mode not in TEST_TIME_MODES:
            raise ValueError(
                f"--test_time_mode must be one of {', '.join(TEST_TIME_MODES)}; "
                f"got {self.test_time_mode!r}."
            )


# -- the FCN-score's segmenter ----------------------------------------------------

SEGMENTER_ROOT = os.path.join("checkpoints", "segmenter")


@dataclasses.dataclass(frozen=True)
class SegmenterConfig:
    dataset: str = "cityscapes"
    image_size: int = 128
    # Filters of the first encoder block; doubled at each of `depth` downsamplings.
    filters: int = 32
    depth: int = 4
    batch_size: int = 8
    # Adam with a cosine decay over all steps.
    learning_rate: float = 1e-3
    steps: int = 6000
    steps_per_epoch: int = 500
    seed: int = 0


# -- evaluation -------------------------------------------------------------------

FCN_CHOICES = ("auto", "on", "off")


@dataclasses.dataclass(frozen=True)
class EvalOptions:
    split: str | None = None  # None: the dataset's evaluation split (val).
    batch_size: int = 8
    # auto: score with the segmenter when one is trained; on: require it; off: skip.
    fcn: str = "auto"
    segmenter_root: str = SEGMENTER_ROOT
    # Examples shown in the HTML gallery; all of them are scored.
    gallery_size: int = 50
    # Evaluate only the first N examples (None: the whole split).
    max_examples: int | None = None
