"""Reports people look at: TensorBoard scalars read back and plotted as loss curves.

The HTML galleries evaluate.py and predict.py write are runs/gallery.py's.
"""

from __future__ import annotations

import numpy as np

from pix2pix_tf import files
from pix2pix_tf.models.losses import ALL_LOSS_NAMES


def read_scalars(event_dir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{tag: (steps, values)} from the TensorBoard events in `event_dir`."""
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(
        event_dir, size_guidance={event_accumulator.TENSORS: 0, event_accumulator.SCALARS: 0}
    )
    accumulator.Reload()
    series = {}
    # tf.summary (TF 2) writes scalars as tensors; older writers as scalars.
    for tag in accumulator.Tags().get("tensors", []):
        events = accumulator.Tensors(tag)
        values = [np.asarray(_tensor_value(event.tensor_proto)) for event in events]
        # Images and text are tensors too; only numeric scalars are series.
        if all(value.ndim == 0 and value.dtype.kind in "fiu" for value in values):
            series[tag] = (
                np.array([event.step for event in events]),
                np.array([value.item() for value in values]),
            )
    for tag in accumulator.Tags().get("scalars", []):
        events = accumulator.Scalars(tag)
        series[tag] = (
            np.array([event.step for event in events]),
            np.array([event.value for event in events]),
        )
    return series


def _tensor_value(tensor_proto):
    import tensorflow as tf

    return tf.make_ndarray(tensor_proto)


def plot_loss_curves(event_dir: str, output_path: str, tags=ALL_LOSS_NAMES) -> str:
    """Plots the training losses found in `event_dir` into a PNG; returns its path."""
    import matplotlib

    matplotlib.use("Agg")  # Files only; no display is needed.
    import matplotlib.pyplot as plt

    series = read_scalars(event_dir)
    found = [tag for tag in series if tag.split("/")[-1] in tags]
    if not found:
        raise ValueError(
            f"{event_dir}: no loss scalars ({', '.join(tags)}) in the TensorBoard events; "
            "has this run logged any steps yet?"
        )
    figure, axes = plt.subplots(1, len(found), figsize=(4 * len(found), 3), squeeze=False)
    for axis, tag in zip(axes[0], sorted(found), strict=True):
        steps, values = series[tag]
        order = np.argsort(steps)
        axis.plot(steps[order], values[order], linewidth=1)
        axis.set_title(tag)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    try:
        with files.atomic_path(output_path) as temporary:
            figure.savefig(temporary, dpi=100, format="png")
    finally:
        plt.close(figure)
    return output_path
