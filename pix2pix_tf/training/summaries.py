"""What a training run reports: TensorBoard summaries, sample grids, a progress bar.

TensorBoard layout under the run directory:

* `train/`: scalars `losses/gen_total`, `losses/gen_gan`, `losses/gen_l1`,
  `losses/disc`, `learning_rate`, `images_per_second`, and the resolved
  config as text (`config`);
* `eval/`: the image panel `samples` (rows of input | generated | target from
  a fixed validation batch) and `losses/gen_l1` on that batch, so TensorBoard
  overlays it on the training L1.
"""

from __future__ import annotations

import os
import sys

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from pix2pix_tf import files

SAMPLES_DIR = "samples"
# White gap, in pixels, between the images of a sample grid.
GRID_GAP = 2


def to_uint8(images) -> np.ndarray:
    """[-1, 1] floats to [0, 255] bytes."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def to_display(images) -> np.ndarray:
    """[..., H, W, 1 or 3] floats in [-1, 1] to RGB bytes [..., H, W, 3] for viewing
    (gray repeated; 16-bit images are shown at 8 bits)."""
    pixels = to_uint8(images)
    return np.repeat(pixels, 3, axis=-1) if pixels.shape[-1] == 1 else pixels


def sample_grid(inputs, generated, targets) -> np.ndarray:
    """One row per example: input | generated | target, as an [H, W, 3] uint8 image."""
    return tile_rows(
        zip(to_display(inputs), to_display(generated), to_display(targets), strict=True)
    )


def tile_rows(rows) -> np.ndarray:
    """Tiles rows of equally sized uint8 [H, W, 3] images with white gaps."""
    lines = []
    for images in rows:
        size = images[0].shape[0]
        gap = np.full((size, GRID_GAP, 3), 255, np.uint8)
        pieces = [images[0]]
        for image in images[1:]:
            pieces.extend([gap, image])
        lines.append(np.concatenate(pieces, axis=1))
    separator = np.full((GRID_GAP, lines[0].shape[1], 3), 255, np.uint8)
    pieces = []
    for line in lines:
        pieces.extend([line, separator])
    return np.concatenate(pieces[:-1], axis=0)


def save_png(image: np.ndarray, path: str) -> str:
    """Writes a uint8 image atomically (see files.py): a failed write leaves no file."""
    with files.atomic_path(path) as temporary:
        Image.fromarray(image).save(temporary, format="PNG")
    return path


def sample_path(workdir: str, step: int) -> str:
    return os.path.join(workdir, SAMPLES_DIR, f"step_{step:06d}.png")


def write_scalars(writer, scalars: dict[str, float], step: int) -> None:
    with writer.as_default(step=step):
        for name, value in scalars.items():
            tf.summary.scalar(name, value)


def write_samples(writer, grid: np.ndarray, l1: float, step: int) -> None:
    with writer.as_default(step=step):
        tf.summary.image(
            "samples",
            grid[np.newaxis],
            description="Rows from a fixed validation batch: input | generated | target.",
        )
        tf.summary.scalar("losses/gen_l1", l1)


def write_config(writer, config_json: str, step: int) -> None:
    # Indented lines render as a code block in TensorBoard's markdown.
    text = "\n".join("    " + line for line in config_json.splitlines())
    with writer.as_default(step=step):
        tf.summary.text("config", text)


# Seconds between progress bar redraws when stdout is a file or pipe (a log):
# Keras redraws every 0.05 s, which in a log file adds a copy of the bar each time.
LOG_INTERVAL = 15.0


class Progbar(keras.utils.Progbar):
    """keras.utils.Progbar whose ETA counts only the steps run since `initial`.

    A resumed run shows its global step against the total, while the time per
    step is estimated from the steps this process has run. When stdout is not
    a terminal the bar is redrawn every LOG_INTERVAL seconds (and at the end).
    """

    def __init__(self, target: int, initial: int = 0, **kwargs):
        if "interval" not in kwargs and not sys.stdout.isatty():
            kwargs["interval"] = LOG_INTERVAL
        super().__init__(target, **kwargs)
        self._initial = initial
        self._seen_so_far = initial

    def _estimate_step_duration(self, current, now):
        return super()._estimate_step_duration(current - self._initial, now)
