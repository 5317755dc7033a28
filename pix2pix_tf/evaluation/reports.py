"""Reports people look at: loss curves from TensorBoard events, an HTML gallery."""

from __future__ import annotations

import html
import os

import matplotlib

matplotlib.use("Agg")  # Files only; no display is needed.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pix2pix_tf.training.summaries import save_png  # noqa: E402

LOSS_TAGS = ("gen_total", "gen_gan", "gen_l1", "disc")


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


def plot_loss_curves(event_dir: str, output_path: str, tags=LOSS_TAGS) -> str:
    """Plots the training losses found in `event_dir` into a PNG; returns its path."""
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
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    temporary = output_path + ".tmp"
    figure.savefig(temporary, dpi=100, format="png")
    plt.close(figure)
    os.replace(temporary, output_path)
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
    os.makedirs(image_dir, exist_ok=True)
    rows = []
    for key, *images in entries:
        stem = os.path.splitext(os.path.basename(key))[0]
        cells = []
        for kind, image in zip(("input", "generated", "target"), images, strict=True):
            name = f"{stem}_{kind}.png"
            save_png(image, os.path.join(image_dir, name))
            cells.append(f'<td><img src="images/{html.escape(name)}" loading="lazy"></td>')
        rows.append(f"<tr><th>{html.escape(key)}</th>{''.join(cells)}</tr>")
    summary_rows = "".join(
        f"<tr><th>{html.escape(str(name))}</th><td>{html.escape(_format(value))}</td></tr>"
        for name, value in (summary or {}).items()
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif}} img{{width:256px;image-rendering:pixelated}}
td,th{{padding:2px 6px;text-align:left}}</style></head>
<body><h1>{html.escape(title)}</h1>
<table>{summary_rows}</table>
<table><tr><th>key</th><th>input</th><th>generated</th><th>target</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""
    path = os.path.join(directory, "index.html")
    with open(path + ".tmp", "w") as file:
        file.write(page)
    os.replace(path + ".tmp", path)
    return path


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
