"""The model in the browser: `export.py --format web` and `python -m pix2pix_tf.demo
--client_side`, the page generating with ONNX Runtime Web in a real headless Chromium.

The web export is served as any static host would, by `python -m http.server` (no
cross-origin isolation: one thread, and the page says so); the demo's server sends
COOP/COEP (threads). The in-page output of a painted label map is compared with the
SavedModel's on the same pixels (within 2 levels of 255), on WebAssembly and, where
Chromium offers a WebGPU adapter (SwiftShader's), on WebGPU. ONNX Runtime Web's files
are downloaded once per test session into the session's fresh cache (tests/conftest.py).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from browser_helpers import (
    canvas_pixels,
    chromium_path,
    launched_chromium,
    output_pixels,
    stroke,
    wait_current,
)
from export_fixtures import encoded_image, make_prepared_run
from PIL import Image

from pix2pix_tf.cli import export as export_cli
from pix2pix_tf.data import cityscapes_labels
from pix2pix_tf.demo import __main__ as demo_cli
from pix2pix_tf.demo import backend as backend_lib
from pix2pix_tf.demo import server as server_lib
from pix2pix_tf.demo import site
from pix2pix_tf.demo.options import DemoOptions
from pix2pix_tf.serving import deploy_runtimes, predict, web_runtime
from pix2pix_tf.serving import export as export_lib

# Chromium's software WebGPU (SwiftShader over Vulkan): headless Chromium has no adapter without.
WEBGPU_ARGS = (
    "--enable-unsafe-webgpu",
    "--use-webgpu-adapter=swiftshader",
    "--enable-features=Vulkan",
)
TOLERANCE = 2  # Levels of 255 between the page's output and the SavedModel's.


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny synthetic run (textured outputs, pad multiple 16) and its prepared data."""
    return make_prepared_run(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def web_export(run, tmp_path_factory):
    export_dir = str(tmp_path_factory.mktemp("exported") / "pix2pix-web")
    return site.export(run[0], export_dir)


@pytest.fixture(scope="module")
def saved_model(run, tmp_path_factory):
    """The run's SavedModel as predict.py serves it: PNG bytes in, PNG bytes out."""
    export_dir = str(tmp_path_factory.mktemp("saved_model"))
    export_lib.export(run[0], export_dir, warmup=False)
    return predict.load_model(export_dir)


@pytest.fixture(scope="module")
def browser():
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def static_host():
    """Serves folders with `python -m http.server` (the plain static host); url(folder)."""
    processes = []

    def url(folder: str) -> str:
        process = subprocess.Popen(
            [
                sys.executable,
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
                folder,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        processes.append(process)
        port = re.search(r"port (\d+)", process.stdout.readline()).group(1)
        return f"http://127.0.0.1:{port}/"

    yield url
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


def _open(browser, url: str, requests: list | None = None):
    # Playwright's wait_for_function evaluates strings, which the page's policy forbids.
    context = browser.new_context(viewport={"width": 1400, "height": 820}, bypass_csp=True)
    page = context.new_page()
    if requests is not None:
        page.on("request", lambda request: requests.append((request.method, request.url)))
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_function("document.body.dataset.backend !== undefined", timeout=120_000)
    return context, page


def _paint(page) -> None:
    """A 40x72 upload (decoded by the page; not a multiple of 16: padded and cropped back),
    then road and car painted over it with the mouse."""
    upload = {"name": "start.png", "mimeType": "image/png", "buffer": encoded_image(40, 72)}
    page.set_input_files("#upload", files=[upload])
    page.wait_for_function("document.getElementById('input-size').textContent === '72×40'")
    page.fill("#brush-size", "6")
    page.click(".swatch[data-name=road]")
    stroke(page, (0.05, 0.8), (0.95, 0.8))
    page.click(".swatch[data-name=car]")
    stroke(page, (0.3, 0.2), (0.6, 0.5))
    wait_current(page)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _check_parity(page, saved_model) -> None:
    painted = canvas_pixels(page)
    assert {tuple(c) for c in painted.reshape(-1, 3)} >= {
        dict(cityscapes_labels.CLASSES)["road"],
        dict(cityscapes_labels.CLASSES)["car"],
    }
    in_page = output_pixels(page)
    reference = np.asarray(Image.open(io.BytesIO(saved_model.serve([_png(painted)])[0])))
    assert in_page.shape == reference.shape == (40, 72, 3)
    assert reference.std() > 5  # Textured: a wrong padding or scaling would show.
    assert np.abs(in_page.astype(int) - reference.astype(int)).max() <= TOLERANCE


# -- the export's folder and the runtime's files ---------------------------------------


def test_web_export_is_a_complete_versioned_folder(web_export, run):
    assert os.path.basename(web_export) == "1"
    names = set(os.listdir(web_export))
    assert {*site.PAGE_FILES, site.INFO_FILE, site.MODEL_FILE, site.METADATA_FILE} <= names
    assert {site.RUNTIME_DIR, site.EXAMPLES_DIR} <= names
    assert not [name for name in os.listdir(os.path.dirname(web_export)) if name.startswith(".")]
    runtime = set(os.listdir(os.path.join(web_export, site.RUNTIME_DIR)))
    assert runtime == {*web_runtime.RUNTIME.files, web_runtime.LICENSE_FILE}
    with open(os.path.join(web_export, site.RUNTIME_DIR, web_runtime.LICENSE_FILE)) as file:
        assert "MIT License" in file.read()
    with open(os.path.join(web_export, site.METADATA_FILE)) as file:
        record = json.load(file)
    assert record["format"] == "web" and record["file"] == "model.onnx"
    assert record["pad_multiple"] == 16 and record["contract"]["layout"] == "NHWC"
    # The same record is embedded in the model, as with --format onnx.
    model = onnx.load(os.path.join(web_export, site.MODEL_FILE))
    embedded = {entry.key: entry.value for entry in model.metadata_props}
    assert json.loads(embedded["pix2pix_export"]) == record
    with open(os.path.join(web_export, site.INFO_FILE)) as file:
        info = json.load(file)
    client = info["client_side"]
    assert client["model_bytes"] == os.path.getsize(os.path.join(web_export, site.MODEL_FILE))
    assert client["runtime"]["version"] == web_runtime.RUNTIME.version
    assert info["palette"]["kind"] == "cityscapes"
    assert len(info["examples"]) == run[1].data.synthetic_val_examples
    # predict.py and the deploy runtimes read it as the ONNX export it holds.
    assert deploy_runtimes.find(web_export) == ("onnx", os.path.join(web_export, "model.onnx"))


def test_float16_web_export_halves_the_model(run, web_export, tmp_path):
    half = site.export(run[0], str(tmp_path / "web16"), quantize="float16", examples=0)
    size = os.path.getsize(os.path.join(half, site.MODEL_FILE))
    assert size < 0.6 * os.path.getsize(os.path.join(web_export, site.MODEL_FILE))
    full = deploy_runtimes.load(web_export)
    loaded = deploy_runtimes.load(half)
    assert loaded.metadata["quantize"] == "float16"
    images = np.random.default_rng(0).uniform(-1, 1, (1, 32, 48, 3)).astype(np.float32)
    error = np.abs(loaded(images) - full(images)).max()
    assert error < 0.02  # Under 3 levels of 255; float16 weights, float32 input and output.


def test_export_cli_refuses_what_web_cannot_do(run, tmp_path, capsys):
    argv = ["--workdir", run[0], "--format", "web", "--export_dir", str(tmp_path / "w")]
    assert export_cli.main([*argv, "--quantize", "dynamic_int8"]) == 1
    error = capsys.readouterr().err
    assert "--quantize dynamic_int8 does not apply to --format web" in error
    assert error.count("\n") == 1
    assert export_cli.main([*argv, "--serving_size", "training"]) == 2
    assert not os.path.exists(tmp_path / "w" / "1")


def _tarball(files: dict[str, bytes]) -> bytes:
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/dist/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_runtime_cache_is_filled_atomically_and_checked(tmp_path, monkeypatch):
    import base64
    import hashlib
    import urllib.error

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(web_runtime.ENV_DIST, raising=False)
    bundles = {"wasm": ("a.mjs", "b.mjs", "c.wasm")}
    data = _tarball({"a.mjs": b"a", "b.mjs": b"b", "c.wasm": b"\0asm"})
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    runtime = web_runtime.Runtime("fake-runtime", "0.0.1", integrity, bundles)
    calls = []

    def opener(url, timeout):
        calls.append(url)
        return _Response(data)

    folder = web_runtime.runtime_dir(runtime, opener)
    assert folder == str(tmp_path / "cache" / "pix2pix_tf" / "fake-runtime-0.0.1")
    assert sorted(os.listdir(folder)) == ["LICENSE", "a.mjs", "b.mjs", "c.wasm"]
    assert web_runtime.runtime_dir(runtime, opener) == folder and len(calls) == 1
    assert calls == ["https://registry.npmjs.org/fake-runtime/-/fake-runtime-0.0.1.tgz"]

    # Other bytes than the pinned ones: refused, nothing cached.
    shutil.rmtree(folder)
    tampered = web_runtime.Runtime("fake-runtime", "0.0.1", "sha512-AAAA", bundles)
    with pytest.raises(web_runtime.WebRuntimeError, match="does not match the pinned integrity"):
        web_runtime.runtime_dir(tampered, opener)
    assert os.listdir(tmp_path / "cache" / "pix2pix_tf") == [".fake-runtime-0.0.1.lock"]

    # Offline: one line naming the variable to set.
    def offline(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    with pytest.raises(web_runtime.WebRuntimeError) as raised:
        web_runtime.runtime_dir(runtime, offline)
    assert web_runtime.ENV_DIST in str(raised.value) and "\n" not in str(raised.value)

    # Killed while extracting: no complete-looking folder.
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(web_runtime.shutil, "copyfileobj", interrupted)
    with pytest.raises(KeyboardInterrupt):
        web_runtime.runtime_dir(runtime, opener)
    assert os.listdir(tmp_path / "cache" / "pix2pix_tf") == [".fake-runtime-0.0.1.lock"]
    monkeypatch.undo()

    # The override: an unpacked dist folder, checked for the files.
    monkeypatch.setenv(web_runtime.ENV_DIST, str(tmp_path))
    with pytest.raises(web_runtime.WebRuntimeError, match="no a.mjs there"):
        web_runtime.runtime_dir(runtime, opener)


def test_client_side_flags_are_one_line(capsys):
    for argv, message in (
        (["--serving_url", "http://b", "--client_side"], "--client_side needs --model"),
        (["--model", "a", "--client_side", "--tile", "64"], "--tile does not apply"),
        (["--model", "a", "--client_side", "--max_model_mb", "0"], "--max_model_mb must be"),
    ):
        assert demo_cli.main(argv) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1


def test_client_side_refuses_a_saved_model(run, tmp_path, capsys):
    export_dir = str(tmp_path / "exported")
    export_lib.export(run[0], export_dir, warmup=False)
    assert demo_cli.main(["--client_side", "--model", export_dir]) == 1
    error = capsys.readouterr().err
    assert "--client_side runs ONNX in the browser" in error and error.count("\n") == 1


# -- the page in headless Chromium ---------------------------------------------------


def test_static_export_generates_in_the_page_on_one_thread(
    browser, static_host, web_export, saved_model
):
    requests = []
    context, page = _open(browser, static_host(web_export), requests)
    try:
        assert page.evaluate("crossOriginIsolated") is False
        assert page.get_attribute("body", "data-backend") == "wasm"
        notice = page.inner_text("#notice")
        assert "runs on one thread" in notice and "Cross-Origin-Embedder-Policy" in notice
        assert "wasm, 1 thread" in page.inner_text("#runtime")
        _paint(page)
        assert "Generated in the browser" in page.inner_text("#status")
        assert "(wasm, 1 thread)" in page.inner_text("#status")
        assert page.is_hidden("#error")
        _check_parity(page, saved_model)
    finally:
        context.close()
    assert all(url.startswith(("http://127.0.0.1:", "blob:", "data:")) for _, url in requests)
    assert not [url for method, url in requests if method != "GET"]
    loaded = {url.rsplit("/", 1)[-1] for _, url in requests if "/ort/" in url}
    # Only the WebAssembly bundle: no WebGPU adapter here.
    assert loaded == set(web_runtime.RUNTIME.bundles["wasm"])


@pytest.fixture(scope="module")
def client_side_url(web_export):
    options = DemoOptions(model=web_export, client_side=True, max_upload_mb=1)
    app = server_lib.DemoApp(options, backend_lib.load_backend(options), log=lambda line: None)
    server, url = server_lib.serve_in_thread(app)
    yield url
    server.shutdown()
    server.server_close()


def test_client_side_demo_makes_no_model_request(browser, client_side_url, saved_model):
    requests = []
    context, page = _open(browser, client_side_url, requests)
    try:
        assert page.evaluate("crossOriginIsolated") is True
        threads = page.evaluate("Math.min(4, navigator.hardwareConcurrency)")
        word = "thread" if threads == 1 else "threads"
        assert f"wasm, {threads} {word}" in page.inner_text("#runtime")
        assert page.is_hidden("#notice")
        _paint(page)
        _check_parity(page, saved_model)
        page.click("#generate")
        page.wait_for_function(
            "document.getElementById('status').textContent.startsWith('Generated')"
        )
    finally:
        context.close()
    assert not [url for method, url in requests if method == "POST"]
    assert not [url for _, url in requests if "/api/generate" in url or "/api/upload" in url]
    # The server refuses to generate: it holds no model to run.
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(f"{client_side_url}/api/generate", encoded_image(8, 8), timeout=30)
    assert raised.value.code == 400 and b"generates in the browser" in raised.value.read()
    with urllib.request.urlopen(f"{client_side_url}/", timeout=30) as response:
        assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"


def _copy_export(web_export: str, folder) -> str:
    copy = str(folder / "site")
    shutil.copytree(web_export, copy)
    return copy


def _edit_client_info(folder: str, **values) -> None:
    """Sets `values` in the `client_side` entry of the folder's info.json."""
    with open(os.path.join(folder, site.INFO_FILE)) as file:
        info = json.load(file)
    info["client_side"].update(values)
    with open(os.path.join(folder, site.INFO_FILE), "w") as file:
        json.dump(info, file)


def test_a_model_too_large_for_the_page_is_a_message(browser, static_host, web_export, tmp_path):
    copy = _copy_export(web_export, tmp_path)
    _edit_client_info(copy, max_model_bytes=2**20 // 4)  # The tiny model is larger.
    context, page = _open(browser, static_host(copy))
    try:
        page.wait_for_selector("#error:not([hidden])")
        error = page.inner_text("#error")
        assert "over this page's limit of 0.3 MiB" in error and "--quantize float16" in error
        assert page.get_attribute("body", "data-backend") == "none"
    finally:
        context.close()


def test_a_non_pix2pix_onnx_file_is_a_message(browser, static_host, web_export, tmp_path):
    copy = _copy_export(web_export, tmp_path)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["images"], ["generated"])],
        "plain",
        [onnx.helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1, 16, 16, 3])],
        [onnx.helper.make_tensor_value_info("generated", onnx.TensorProto.FLOAT, [1, 16, 16, 3])],
    )
    data = onnx.helper.make_model(graph).SerializeToString()
    with open(os.path.join(copy, site.MODEL_FILE), "wb") as file:
        file.write(data)
    _edit_client_info(copy, model_bytes=len(data))
    # The record beside it does not make it one: the page reads the model's own metadata.
    context, page = _open(browser, static_host(copy))
    try:
        page.wait_for_selector("#error:not([hidden])")
        error = page.inner_text("#error")
        assert "model.onnx is not a pix2pix export" in error and "--format web" in error
    finally:
        context.close()


def test_webgpu_where_chromium_has_an_adapter(browser, static_host, web_export, saved_model):
    chromium = browser.browser_type.launch(
        executable_path=chromium_path(), headless=True, args=list(WEBGPU_ARGS)
    )
    try:
        context, page = _open(chromium, static_host(web_export))
        if page.get_attribute("body", "data-backend") != "webgpu":
            pytest.skip("this Chromium offers no WebGPU adapter, even SwiftShader's")
        assert page.inner_text("#runtime").endswith("webgpu.")
        _paint(page)
        assert "(webgpu)" in page.inner_text("#status")
        _check_parity(page, saved_model)
    finally:
        chromium.close()


def test_int8_web_export_runs_in_the_page(browser, static_host, run, saved_model, tmp_path):
    """Static int8 (QDQ) runs on ONNX Runtime Web's WebAssembly backend, a quarter the size."""
    folder = site.export(
        run[0], str(tmp_path / "web8"), quantize="int8", examples=0, representative_examples=4
    )
    with open(os.path.join(folder, site.METADATA_FILE)) as file:
        record = json.load(file)
    assert record["quantize"] == "int8" and record["representative_examples"] == 4
    context, page = _open(browser, static_host(folder))
    try:
        assert page.get_attribute("body", "data-backend") == "wasm"
        _paint(page)
        assert page.is_hidden("#error")
        painted, in_page = canvas_pixels(page), output_pixels(page).astype(float)
    finally:
        context.close()
    reference = np.asarray(Image.open(io.BytesIO(saved_model.serve([_png(painted)])[0])))
    psnr = 10 * np.log10(255.0**2 / np.mean((in_page - reference) ** 2))
    print(f"int8 in the page vs the SavedModel: {psnr:.1f} dB")
    assert psnr > 30
