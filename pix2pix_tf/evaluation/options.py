"""The options of evaluate.py and of the FCN-score's segmenter; no TensorFlow.

evaluate.py and `python -m pix2pix_tf.segmentation` generate their flags from these
dataclasses before importing TensorFlow; each field's help text is in its metadata.
"""

from __future__ import annotations

import dataclasses
import os

from pix2pix_tf.configs import choices
from pix2pix_tf.configs.choices import setting
from pix2pix_tf.configs.schema import DataConfig
from pix2pix_tf.serving.options import check_tile_flags

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
    tile: str | None = setting(
        None,
        "With --eval_size native: generate each pair tile by tile, H or HxW tiles "
        "overlapping by --overlap and blended (predict.py --tile; docs/tiling.md), so the "
        "scores are those of tiled inference.",
    )
    overlap: int = setting(64, "With --tile: pixels each tile shares with its neighbours.")
    tile_statistics: str = setting(
        "auto",
        "With --tile and instance norm: tile (each tile's own statistics), image (two "
        "passes, the image's statistics; predict.py --tile_statistics), auto (image).",
        choices.TILE_STATISTICS,
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
        if self.tile is not None:
            if self.eval_size != "native":
                raise ValueError("--tile needs --eval_size native (tiles run at native size).")
            check_tile_flags(self.tile, self.overlap)
