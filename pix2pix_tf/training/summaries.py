"""What a training run reports to TensorBoard (its sample grids: runs/images.py).

TensorBoard layout under the run directory:

* `train/`: scalars `losses/gen_total`, `losses/gen_gan`, `losses/gen_l1`,
  `losses/disc`, `learning_rate`, `images_per_second`, and the resolved
  config as text (`config`);
* `eval/`: the image panel `samples` (rows of input | generated | target from
  a fixed validation batch) and `losses/gen_l1` on that batch, so TensorBoard
  overlays it on the training L1.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


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
