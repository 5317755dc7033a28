"""Reports people look at: loss curves from TensorBoard events, HTML galleries.

`write_gallery_page` is the one writer of `index.html` galleries: evaluation's
(input | generated | target per example, with the metrics) and predict's (one
output or strip per input) both go through it.
"""

from __future__ import annotations

import html
import os
import urllib.parse
from collections.abc import Sequence

import numpy as np

from pix2pix_tf import files
from pix2pix_tf.models.losses import ALL_LOSS_NAMES
from pix2pix_tf.runs.grids import save_png


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


def write_gallery(
    directory: str,
    entries: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    title: str,
    summary: dict | None = None,
) -> str:
    """Writes images/<key>_{input,generated,target}.png and index.html; returns its path.

    `entries` are (key, input, generated, target) with uint8 HxWx3 images.
    """
    image_dir = os.path.join(directory, "images")
    rows = []
    for key, *images in entries:
        stem = os.path.splitext(os.path.basename(key))[0]
        names = []
        for kind, image in zip(("input", "generated", "target"), images, strict=True):
            names.append(f"images/{stem}_{kind}.png")
            save_png(image, os.path.join(image_dir, f"{stem}_{kind}.png"))
        rows.append((key, names))
    return write_gallery_page(
        directory, title, columns=("input", "generated", "target"), rows=rows, summary=summary
    )


def write_gallery_page(
    directory: str,
    title: str,
    *,
    columns: Sequence[str],
    rows: Sequence[tuple[str, Sequence[str]]],
    summary: dict | None = None,
    note: str = "",
) -> str:
    """Writes `<directory>/index.html`: one table row per (caption, images); returns its path.

    Image paths are relative to `directory`, one per column; `summary` (e.g. the
    metrics) is shown as a table above, `note` as a paragraph.
    """
    summary_rows = "".join(
        f"<tr><th>{html.escape(str(name))}</th><td>{html.escape(_format(value))}</td></tr>"
        for name, value in (summary or {}).items()
    )
    header = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    body = []
    for caption, images in rows:
        cells = "".join(
            f'<td><img src="{html.escape(urllib.parse.quote(image))}" loading="lazy" '
            f'alt="{html.escape(caption)}"></td>'
            for image in images
        )
        body.append(f"<tr><th>{html.escape(caption)}</th>{cells}</tr>")
    paragraph = f"<p>{html.escape(note)}</p>" if note else ""
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif}} img{{max-width:100%;image-rendering:pixelated}}
td,th{{padding:2px 6px;text-align:left;vertical-align:top}}</style></head>
<body><h1>{html.escape(title)}</h1>{paragraph}
<table>{summary_rows}</table>
<table><tr><th>key</th>{header}</tr>
{chr(10).join(body)}
</table></body></html>
"""
    return files.write_atomic(os.path.join(directory, "index.html"), page)


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
