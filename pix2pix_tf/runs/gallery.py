"""HTML galleries: a page of image rows with a summary table above.

`write_gallery` is evaluate.py's (input | generated | target per pair, the metrics
above); `write_gallery_page` any page of rows, e.g. predict.py's. Here, below
evaluation and serving, so that both write them without importing each other.
"""

from __future__ import annotations

import html
import os
import urllib.parse
from collections.abc import Sequence

import numpy as np

from pix2pix_tf import files
from pix2pix_tf.runs.grids import save_png


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
