"""python -m pix2pix_tf.demo: the server's API, and the page in a real headless Chromium.

The browser tests drive the system's Chromium (`apt-get install chromium`; .ci/run installs
it) through Playwright (tests/browser_helpers.py). Without a Chromium they are skipped with
the reason, except under CI (CI=true), where they fail: CI must run them.

PIX2PIX_DEMO_MODEL=<run or export> serves that model in the browser tests instead of the
tiny random run; PIX2PIX_DEMO_SCREENSHOT=<png> saves the painting test's screenshot there
(docs/demo.png comes from that, see docs/demo.md).
"""

import io
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from browser_helpers import (
    canvas_pixels,
    generation,
    launched_chromium,
    output_pixels,
    stroke,
    wait_current,
    wait_generation,
)
from conftest import REPO_ROOT
from data_factory import bomb_png
from export_fixtures import encoded_image, make_prepared_run
from PIL import Image

from pix2pix_tf.data import cityscapes_labels
from pix2pix_tf.demo import __main__ as demo_cli
from pix2pix_tf.demo import backend as backend_lib
from pix2pix_tf.demo import server as server_lib
from pix2pix_tf.demo.options import DemoOptions
from pix2pix_tf.serving import export as export_lib
from pix2pix_tf.serving.options import ServingOptions


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny synthetic run (textured outputs) and its prepared val split."""
    return make_prepared_run(tmp_path_factory.mktemp("demo"))


def _serve(options: DemoOptions):
    app = server_lib.DemoApp(options, backend_lib.load_backend(options), log=lambda line: None)
    return server_lib.serve_in_thread(app)


@pytest.fixture(scope="module")
def served(run):
    server, url = _serve(DemoOptions(model=run[0], max_upload_mb=1))
    yield url
    server.shutdown()
    server.server_close()


def _request(url: str, data: bytes | None = None) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def _error_of(body: bytes) -> str:
    return json.loads(body)["error"]


# -- the command line and the API ---------------------------------------------------


def test_help_answers_without_tensorflow():
    script = (
        "import runpy, sys\n"
        "sys.argv = ['demo', '--help']\n"
        "try:\n"
        "    runpy.run_module('pix2pix_tf.demo', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exit:\n"
        "    print('EXIT', exit.code)\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'numpy') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )
    assert "usage: python -m pix2pix_tf.demo" in result.stdout
    assert "--serving_url" in result.stdout and "--max_upload_mb" in result.stdout
    assert result.stdout.splitlines()[-2:] == ["EXIT 0", "[]"]


@pytest.mark.parametrize(
    "argv,message",
    [
        ([], "give one of --model PATH or --serving_url URL"),
        (["--model", "a", "--serving_url", "http://b"], "give one of"),
        (["--serving_url", "localhost:8501"], "--serving_url must start with http://"),
        (["--model", "a", "--max_upload_mb", "0"], "--max_upload_mb must be >= 1"),
    ],
)
def test_bad_flags_are_one_line(argv, message, capsys):
    assert demo_cli.main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_missing_model_is_one_line(tmp_path, capsys):
    assert demo_cli.main(["--model", str(tmp_path / "nothing")]) == 1
    error = capsys.readouterr().err
    assert "no such directory" in error and error.count("\n") == 1


@pytest.mark.slow
def test_command_serves_until_ctrl_c(run):
    process = subprocess.Popen(
        [sys.executable, "-m", "pix2pix_tf.demo", "--model", run[0], "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("Serving the demo of checkpoint ") and "http://127.0.0.1:" in line
        url = line.split(" at ")[1].split()[0].rstrip("/")
        assert json.loads(_request(f"{url}/api/info")[1])["palette"]["kind"] == "cityscapes"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        assert "warning" not in process.stderr.read()
    finally:
        process.kill()
        process.wait()


def test_only_loopback_is_quiet():
    assert demo_cli.is_loopback("127.0.0.1") and demo_cli.is_loopback("localhost")
    assert demo_cli.is_loopback("::1")
    assert not demo_cli.is_loopback("0.0.0.0") and not demo_cli.is_loopback("192.168.1.2")


def test_info_of_a_cityscapes_palette_run(served, run):
    status, body, headers = _request(f"{served}/api/info")
    info = json.loads(body)
    assert status == 200 and info["model"].startswith("checkpoint ")
    assert info["palette"]["kind"] == "cityscapes"
    names = [entry["name"] for entry in info["palette"]["classes"]]
    assert names[: cityscapes_labels.NUM_CLASSES] == list(cityscapes_labels.CLASS_NAMES)
    assert info["canvas"] == {"width": 64, "height": 64}
    # The tiny synthetic val split has 4 examples; each is a PNG at the run's size.
    assert len(info["examples"]) == run[1].data.synthetic_val_examples
    assert info["examples_note"] is None and info["max_upload_bytes"] == 2**20
    status, png, headers = _request(served + info["examples"][0]["url"])
    assert status == 200 and headers["Content-Type"] == "image/png"
    # At the pairs' own size (the synthetic scenes' 256x256 halves), as evaluate.py scores them.
    assert Image.open(io.BytesIO(png)).size == (256, 256)


def test_page_loads_nothing_from_elsewhere(served):
    status, page, headers = _request(f"{served}/")
    assert status == 200 and b"http://" not in page and b"https://" not in page
    assert headers["Content-Security-Policy"].startswith("default-src 'self'")
    for name in ("demo.js", "demo.css", "web.js"):
        status, text, _ = _request(f"{served}/{name}")
        assert status == 200 and b"http://" not in text and b"https://" not in text


def test_generate_returns_the_inputs_size_and_survives_bad_requests(served):
    status, png, _ = _request(f"{served}/api/generate", encoded_image(40, 72))
    assert status == 200 and Image.open(io.BytesIO(png)).size == (72, 40)
    status, body, _ = _request(f"{served}/api/generate", b"not an image")
    assert status == 400 and _error_of(body).startswith("generation failed:")
    status, body, _ = _request(f"{served}/api/upload", b"not an image either")
    assert status == 400 and "not an image" in _error_of(body)
    status, body, _ = _request(f"{served}/api/upload", b"\0" * (2**20 + 1))
    assert status == 413 and "limited to 1 MiB" in _error_of(body)
    # The server keeps serving.
    status, png, _ = _request(f"{served}/api/generate", encoded_image(64, 64))
    assert status == 200 and Image.open(io.BytesIO(png)).size == (64, 64)


def test_upload_is_an_upright_rgb_png(served):
    gray = io.BytesIO()
    Image.new("L", (30, 20), 128).save(gray, format="JPEG")
    status, png, headers = _request(f"{served}/api/upload", gray.getvalue())
    image = Image.open(io.BytesIO(png))
    assert status == 200 and image.mode == "RGB" and image.size == (30, 20)
    assert (headers["X-Image-Width"], headers["X-Image-Height"]) == ("30", "20")


def test_a_decompression_bomb_is_refused_by_its_size(served):
    bomb = bomb_png(20000, 20000)  # 400 M pixels, 0.4 MB on disk: over Pillow's own bound.
    status, body, _ = _request(f"{served}/api/upload", bomb)
    error = _error_of(body)
    assert status == 400 and "not an image" not in error
    assert error.startswith("the image is 20000x20000 = 400000000 pixels, over the bound of ")
    assert "4194304 pixels" in error and "--max_pixels" in error
    # Under Pillow's bound too, and at /api/generate (the model's own check).
    status, body, _ = _request(f"{served}/api/upload", bomb_png(3000, 2000))
    assert status == 400 and _error_of(body).startswith("the image is 3000x2000 = 6000000 pixels")
    status, body, _ = _request(f"{served}/api/generate", bomb)
    assert status == 400 and "20000x20000" in _error_of(body) and "--max_pixels" in _error_of(body)


def test_uploads_follow_the_exports_pixel_bound(run, tmp_path):
    export_dir = str(tmp_path / "exported")
    export_lib.export(run[0], export_dir, options=ServingOptions(max_pixels=50 * 40), warmup=False)
    server, url = _serve(DemoOptions(model=export_dir, examples=0))
    try:
        status, png, headers = _request(f"{url}/api/upload", encoded_image(40, 50))
        assert status == 200 and Image.open(io.BytesIO(png)).size == (50, 40)
        status, body, _ = _request(f"{url}/api/upload", encoded_image(41, 50))
        assert status == 400 and _error_of(body).startswith(
            "the image is 50x41 = 2050 pixels, over the bound of 2000 pixels"
        )
    finally:
        server.shutdown()
        server.server_close()


def test_export_serves_with_its_recorded_palette(run, tmp_path):
    workdir, _ = run
    export_dir = str(tmp_path / "exported")
    export_lib.export(workdir, export_dir, warmup=False)
    for palette, kind in (("auto", "cityscapes"), ("free", "free")):
        options = DemoOptions(model=export_dir, palette=palette, examples=1)
        app = server_lib.DemoApp(options, backend_lib.load_backend(options))
        assert app.info["model"].startswith("SavedModel ")
        assert app.info["palette"]["kind"] == kind and len(app.examples) == 1
        generated = app.backend.generate(encoded_image(64, 64))
        assert Image.open(io.BytesIO(generated)).size == (64, 64)


def test_without_prepared_data_the_page_says_why(run, tmp_path):
    options = DemoOptions(model=run[0], data_dir=str(tmp_path / "empty"))
    app = server_lib.DemoApp(options, backend_lib.load_backend(options))
    assert app.examples == [] and app.info["examples"] == []
    assert app.examples_note.startswith("no val inputs:") and "not prepared" in app.examples_note


def test_unreachable_tf_serving_is_an_error_on_the_page(tmp_path):
    server, url = _serve(DemoOptions(serving_url="http://127.0.0.1:9", examples=3))
    try:
        info = json.loads(_request(f"{url}/api/info")[1])
        assert info["palette"]["kind"] == "free" and info["canvas"] == {"width": 256, "height": 256}
        assert "TF Serving" in info["examples_note"]
        status, body, _ = _request(f"{url}/api/generate", encoded_image(8, 8))
        assert status == 400 and _error_of(body).startswith("TF Serving at http://127.0.0.1:9")
    finally:
        server.shutdown()
        server.server_close()


# -- the page in a headless browser -------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def page_url(run):
    model = os.environ.get("PIX2PIX_DEMO_MODEL") or run[0]
    server, url = _serve(DemoOptions(model=model, max_upload_mb=1))
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(browser, page_url):
    # Playwright's wait_for_function evaluates strings, which the page's policy forbids.
    context = browser.new_context(viewport={"width": 1400, "height": 820}, bypass_csp=True)
    page = context.new_page()
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(page_url)
    page.wait_for_selector("body[data-ready=true]")
    # The first val input is loaded and generated from at the start.
    wait_current(page)
    yield page
    context.close()
    elsewhere = [url for url in requested if not url.startswith((page_url, "blob:", "data:"))]
    assert elsewhere == []


def _class_color(name: str) -> tuple[int, int, int]:
    return dict(cityscapes_labels.CLASSES)[name]


def test_painting_two_classes_generates_and_regenerates(page):
    page.click("#clear")
    wait_current(page)
    cleared = output_pixels(page)
    page.fill("#brush-size", "12")
    page.click(".swatch[data-name=road]")
    stroke(page, (0.05, 0.8), (0.95, 0.8))
    page.click(".swatch[data-name=car]")
    stroke(page, (0.3, 0.2), (0.6, 0.5))
    # Generated after the strokes (debounced: once or twice).
    wait_current(page)
    painted = canvas_pixels(page)
    colors = {tuple(color) for color in painted.reshape(-1, 3)}
    # Whole pixels of the two classes over the unlabelled background: no blended colours.
    assert colors == {(0, 0, 0), _class_color("road"), _class_color("car")}
    height, width = painted.shape[:2]
    after_strokes = output_pixels(page)
    assert after_strokes.shape[:2] == (height, width)
    natural = page.evaluate(
        "[document.getElementById('output').naturalWidth, "
        "document.getElementById('output').naturalHeight]"
    )
    assert natural == [width, height]
    assert np.abs(after_strokes.astype(int) - cleared.astype(int)).max() > 0
    assert page.get_attribute("#download", "href").startswith("blob:")

    # By the button: another stroke with automatic generation off.
    page.uncheck("#auto")
    before = generation(page)
    stroke(page, (0.1, 0.1), (0.1, 0.9))
    page.wait_for_timeout(500)
    assert generation(page) == before
    page.click("#generate")
    wait_current(page)
    assert generation(page) == before + 1
    assert np.abs(output_pixels(page).astype(int) - after_strokes.astype(int)).max() > 0
    screenshot = os.environ.get("PIX2PIX_DEMO_SCREENSHOT")
    if screenshot:
        page.check("#auto")
        page.click("#examples button >> nth=1")
        wait_current(page)
        page.click(".swatch[data-name=car]")
        stroke(page, (0.35, 0.75), (0.65, 0.75))
        wait_current(page)
        page.screenshot(path=screenshot, full_page=False)


def test_a_bad_upload_shows_an_error_and_the_page_keeps_working(page):
    page.set_input_files(
        "#upload", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}]
    )
    page.wait_for_selector("#error:not([hidden])")
    assert "notes.txt was refused: not an image" in page.inner_text("#error")
    big = {"name": "big.png", "mimeType": "image/png", "buffer": b"\0" * (2**20 + 10)}
    page.set_input_files("#upload", files=[big])
    page.wait_for_function("document.getElementById('error').textContent.includes('big.png')")
    assert "limited to 1 MiB" in page.inner_text("#error")
    # A good upload replaces the canvas (at the upload's size) and clears the error.
    before = generation(page)
    good = {"name": "good.png", "mimeType": "image/png", "buffer": encoded_image(48, 80)}
    page.set_input_files("#upload", files=[good])
    wait_generation(page, before + 1)
    wait_current(page)
    assert page.is_hidden("#error")
    assert output_pixels(page).shape[:2] == (48, 80)


def test_uploads_larger_than_the_tile_are_generated_tiled(run):
    """--tile 32 on the tiny run: a 100x90 image is generated tile by tile, close to the
    whole-image output; one within the tile exactly as without --tile."""
    untiled = backend_lib.load_backend(DemoOptions(model=run[0], examples=0))
    tiled = backend_lib.load_backend(DemoOptions(model=run[0], examples=0, tile="32", overlap=8))
    assert tiled.max_pixels > untiled.max_pixels  # the tile is the unit, not the image

    def decoded(data):
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.float64)

    large = encoded_image(100, 90, seed=3)
    whole, pieces = decoded(untiled.generate(large)), decoded(tiled.generate(large))
    assert pieces.shape == whole.shape == (100, 90, 3)
    assert 10 * np.log10(255.0**2 / np.mean((pieces - whole) ** 2)) > 45
    small = encoded_image(30, 20, seed=4)
    assert tiled.generate(small) == untiled.generate(small)
    with pytest.raises(backend_lib.DemoError, match="--tile"):
        backend_lib.load_backend(DemoOptions(model=run[0], examples=0, tile="8", overlap=0))
    with pytest.raises(ValueError, match="--tile needs --model"):
        DemoOptions(serving_url="http://localhost:8501", tile="64").validate()
