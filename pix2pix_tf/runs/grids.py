"""The images a run writes: sample grids (input | generated | target rows) and PNGs.

Training's sample grids, evaluation's galleries and predict's strips are built here.
"""

from __future__ import annotations

import os

import numpy as np
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
