"""The demo generating in the browser (ONNX Runtime Web) against the server-side demo.

    python -m pix2pix_tf.benchmark browser --workdir checkpoints/synthetic-quick \\
        --sizes 256x256 512x1024 --rounds 5

Both demos are served from this process (pix2pix_tf/demo/server.py): the server-side one
with the run directory (TensorFlow generates, in this process), the client-side one with
a `--format web` export of the same run (`--client_side`: COOP/COEP, so ONNX Runtime
Web's WebAssembly gets threads). Headless Chromium (the system's, through Playwright)
opens each page in a fresh context, paints a label map of the size on the canvas, and
clicks Generate:

- time to first image: from navigating to the page to the first generated image shown
  (the page, and for the browser the runtime, the model's download, compiling and the
  session). One unmeasured page per variant and size comes first, so the server has
  traced TensorFlow's function for the size, as it has for any visitor but the first;
  the browser starts cold in every fresh context (the demo sends no-store);
- per-image latency: `--images` more generations in the same page, as the page reports
  them (canvas to image shown: PNG encode, request and decode for the server; tensor
  conversion and the session's run for the browser).

The two take turns, their order alternating each round, so a load that comes and goes
on a shared machine falls on both; the ratios are browser / server. It also reports the
web export's download (the page, the WebAssembly runtime a browser without WebGPU
loads, and model.onnx) for each --quantize.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time

from pix2pix_tf.demo import backend as backend_lib
from pix2pix_tf.demo import server as server_lib
from pix2pix_tf.demo import site
from pix2pix_tf.demo.options import DemoOptions
from pix2pix_tf.serving import web_runtime

VARIANTS = ("server", "browser")
# Paints road below, a car and sky above: a label map, not a blank canvas.
_PAINT = """([width, height]) => {
    resetCanvas(width, height);
    fillBackground();
    const context = document.getElementById('input-canvas').getContext('2d');
    context.fillStyle = '#804080'; context.fillRect(0, height * 0.6, width, height * 0.4);
    context.fillStyle = '#00008e';
    context.fillRect(width * 0.3, height * 0.45, width * 0.3, height * 0.2);
    context.fillStyle = '#4682b4'; context.fillRect(0, 0, width, height * 0.3);
    markEdited();
}"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pix2pix_tf.benchmark browser", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workdir", required=True, help="Run directory (train.py's).")
    parser.add_argument(
        "--sizes", nargs="+", default=["256x256", "512x1024"],
        help="Canvas sizes HxW (multiples of the generator's pad multiple run unpadded).",
    )
    parser.add_argument("--rounds", type=int, default=5, help="Page loads per variant and size.")
    parser.add_argument(
        "--images", type=int, default=3, help="Generations per page after the first."
    )
    parser.add_argument(
        "--quantize", nargs="*", default=["float16", "int8"],
        help="Web exports whose download size is reported besides float32 (none, float16, int8).",
    )
    parser.add_argument("--chromium", default=None, help="Chromium executable; default: on PATH.")
    parser.add_argument("--json", action="store_true", help="Print one JSON object only.")
    return parser.parse_args(argv)


def _size(text: str) -> tuple[int, int]:
    height, _, width = text.lower().partition("x")
    return int(height), int(width or height)


def download_bytes(version_dir: str) -> dict:
    """What a browser without WebGPU fetches from a web export: page, runtime, model."""
    page = sum(
        os.path.getsize(os.path.join(version_dir, name))
        for name in (*site.PAGE_FILES, site.INFO_FILE)
    )
    runtime = sum(
        os.path.getsize(os.path.join(version_dir, site.RUNTIME_DIR, name))
        for name in web_runtime.RUNTIME.bundles["wasm"]
    )
    model = os.path.getsize(os.path.join(version_dir, site.MODEL_FILE))
    return {
        "page_mb": page / 2**20,
        "runtime_mb": runtime / 2**20,
        "model_mb": model / 2**20,
        "total_mb": (page + runtime + model) / 2**20,
    }


def _serve(options: DemoOptions):
    app = server_lib.DemoApp(options, backend_lib.load_backend(options), log=lambda line: None)
    return server_lib.serve_in_thread(app)


def _page_ms(page) -> float:
    status = page.inner_text("#status")
    match = re.search(r"in (\d+) ms", status)
    if match is None:
        raise RuntimeError(f"the page did not generate: {status!r} {page.inner_text('#error')!r}")
    return float(match.group(1))


def _generate(page, count: int) -> None:
    page.click("#generate")
    page.wait_for_function(
        f"Number(document.getElementById('output').dataset.generation) >= {count}",
        timeout=600_000,
    )


def _one_page(browser, url: str, size: tuple[int, int], images: int) -> dict:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    try:
        page = context.new_page()
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]", timeout=600_000)
        page.evaluate(_PAINT, [size[1], size[0]])
        _generate(page, 1)
        first = time.perf_counter() - started
        latencies = []
        for index in range(images):
            _generate(page, 2 + index)
            latencies.append(_page_ms(page))
        backend = page.get_attribute("body", "data-backend") or "server"
        status = page.inner_text("#status")
    finally:
        context.close()
    return {"first_s": first, "latencies_ms": latencies, "backend": backend, "status": status}


def _summary(pages: list[dict]) -> dict:
    latencies = sorted(value for page in pages for value in page["latencies_ms"])
    return {
        "first_image_s_median": statistics.median(page["first_s"] for page in pages),
        "first_image_s": [round(page["first_s"], 2) for page in pages],
        "latency_ms_median": statistics.median(latencies),
        "latency_ms_p95": latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))],
        "backend": pages[0]["backend"],
        "last_status": pages[-1]["status"],
    }


def _measure(args: argparse.Namespace, log) -> dict:
    from playwright.sync_api import sync_playwright

    from pix2pix_tf.benchmark.tile_benchmark import _cpu

    results: dict = {"cpu": _cpu(), "cores": os.cpu_count(), "rounds": args.rounds}
    with tempfile.TemporaryDirectory(prefix="browser-benchmark-") as root:
        log("exporting the web pages ...")
        exports = {}
        for quantize in ["none", *[q for q in args.quantize if q != "none"]]:
            exports[quantize] = site.export(
                args.workdir, os.path.join(root, f"web-{quantize}"), quantize, examples=0
            )
        results["download"] = {
            ("float32" if q == "none" else q): download_bytes(path) for q, path in exports.items()
        }
        servers = {}
        servers["server"] = _serve(DemoOptions(model=args.workdir, examples=0))
        options = DemoOptions(model=exports["none"], client_side=True, examples=0)
        servers["browser"] = _serve(options)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=args.chromium or _chromium(), headless=True
                )
                for text in args.sizes:
                    size = _size(text)
                    pages = {variant: [] for variant in VARIANTS}
                    for variant in VARIANTS:
                        _one_page(browser, servers[variant][1], size, 1)  # Warm-up.
                    for round_index in range(args.rounds):
                        order = VARIANTS if round_index % 2 == 0 else VARIANTS[::-1]
                        for variant in order:
                            page = _one_page(browser, servers[variant][1], size, args.images)
                            log(f"{text} {variant} round {round_index + 1}: first image "
                                f"{page['first_s']:.2f} s, {page['latencies_ms']} ms")
                            pages[variant].append(page)
                    entry = {variant: _summary(pages[variant]) for variant in VARIANTS}
                    entry["ratio_first_image"] = (
                        entry["browser"]["first_image_s_median"]
                        / entry["server"]["first_image_s_median"]
                    )
                    entry["ratio_latency"] = (
                        entry["browser"]["latency_ms_median"] / entry["server"]["latency_ms_median"]
                    )
                    results[text] = entry
                browser.close()
        finally:
            for server, _ in servers.values():
                server.shutdown()
                server.server_close()
    return results


def _chromium() -> str:
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("no Chromium found: apt-get install chromium, or pass --chromium PATH.")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    log = (lambda text: None) if args.json else (lambda text: print(text, flush=True))
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        results = _measure(args, log)
    print(json.dumps(results, indent=None if args.json else 2))
    return 0
