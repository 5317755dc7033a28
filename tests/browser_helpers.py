"""Headless Chromium for the browser tests (tests/demo/): the system's Chromium through
Playwright. Without one the tests skip with the reason, except under CI (CI=true), where
they fail: CI must run them (.ci/run installs chromium)."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import shutil

import numpy as np
import pytest
from PIL import Image

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    explicit = os.environ.get("PIX2PIX_CHROMIUM")
    if explicit:
        return explicit
    return next(filter(None, (shutil.which(name) for name in CHROMIUM_NAMES)), None)


@contextlib.contextmanager
def launched_chromium(args: tuple[str, ...] = ()):
    """A headless Chromium (Playwright's Browser), or a skip (a failure under CI)."""
    executable = chromium_path()
    reason = None
    if executable is None:
        reason = "no Chromium found (apt-get install chromium, or set PIX2PIX_CHROMIUM)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "Playwright is not installed (pip install -r requirements.txt)"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}.")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(args)
        )
        try:
            yield chromium
        finally:
            chromium.close()


# -- driving the demo's page -----------------------------------------------------


def generation(page) -> int:
    return int(page.get_attribute("#output", "data-generation"))


def wait_generation(page, at_least: int) -> None:
    page.wait_for_function(
        f"Number(document.getElementById('output').dataset.generation) >= {at_least}",
        timeout=60_000,
    )


def wait_current(page) -> None:
    """Waits until the output was generated from the canvas as it is now."""
    page.wait_for_function(
        "document.getElementById('output').dataset.edits === document.body.dataset.edits",
        timeout=60_000,
    )


def output_pixels(page) -> np.ndarray:
    data = page.evaluate(
        """async () => {
            const response = await fetch(document.getElementById('output').src);
            const bytes = new Uint8Array(await response.arrayBuffer());
            let text = '';
            for (const byte of bytes) text += String.fromCharCode(byte);
            return btoa(text);
        }"""
    )
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


def canvas_pixels(page) -> np.ndarray:
    width, height, values = page.evaluate(
        """() => {
            const canvas = document.getElementById('input-canvas');
            const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
            return [canvas.width, canvas.height, Array.from(pixels.data)];
        }"""
    )
    return np.array(values, np.uint8).reshape(height, width, 4)[..., :3]


def stroke(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drags the mouse across the canvas between fractions of its width and height."""
    box = page.locator("#input-canvas").bounding_box()
    x0, y0 = box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"], steps=12)
    page.mouse.up()
