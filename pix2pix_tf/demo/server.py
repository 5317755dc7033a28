"""The demo's web server: one page (static/), a JSON description of it, and two POSTs.

    GET  /                 the page (index.html, demo.js, demo.css; nothing from elsewhere)
    GET  /api/info         the model, the brushes, the canvas size, the val inputs
                           (also /info.json, the name a static web export gives it)
    GET  /api/examples/N   the N-th val input as a PNG
    POST /api/upload       an image file -> an upright RGB PNG for the canvas, or an error
    POST /api/generate     the canvas as a PNG -> the generated PNG, or an error

With --client_side the page generates itself (demo/site.py, static/web.js): the server
also sends web.js, /model.onnx, /pix2pix_export.json and ONNX Runtime Web's files under
/ort/, and /api/generate refuses (no model runs here). Every response carries
Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp,
so the page is cross-origin isolated and WebAssembly gets threads (SharedArrayBuffer).

Errors are JSON `{"error": message}` with a 4xx/5xx status, which the page shows; a
failing request never stops the server. Bodies over --max_upload_mb are refused
before they are read into memory.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import sys
import threading
import traceback

from pix2pix_tf.demo import backend as backend_lib

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/demo.js": ("demo.js", "text/javascript; charset=utf-8"),
    "/demo.css": ("demo.css", "text/css; charset=utf-8"),
    "/web.js": ("web.js", "text/javascript; charset=utf-8"),
}
# Only this origin's scripts, styles and images (and the page's own blob: URLs); WebAssembly
# compiled from this origin's files (ONNX Runtime Web, --client_side), in workers of it.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; "
    "img-src 'self' blob: data:; object-src 'none'"
)
# Cross-origin isolation: SharedArrayBuffer, hence WebAssembly threads, for the page.
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}
CONTENT_TYPES = {
    ".mjs": "text/javascript; charset=utf-8",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".json": "application/json",
    "": "text/plain; charset=utf-8",
}
# A refused body larger than this many times the limit is not drained: the connection closes.
_DRAIN_FACTOR = 4


class DemoApp:
    """Everything a request needs, built once before the server starts."""

    def __init__(self, options, backend: backend_lib.Backend, log=None):
        self.options = options
        self.backend = backend
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.limit_bytes = options.max_upload_mb * 2**20
        self.examples, self.examples_note = backend_lib.val_examples(options, backend.config)
        # --client_side: path -> (bytes, content type) of the model and the runtime's files.
        self.web_files: dict[str, tuple[bytes, str]] = {}
        client_side = None
        if backend.web is not None:
            client_side = self._web_files(backend.web)
        self.info = backend_lib.page_info(
            backend.description,
            backend.config,
            backend_lib.palette(options, backend.config),
            [
                {"name": example.name, "url": f"/api/examples/{index}"}
                for index, example in enumerate(self.examples)
            ],
            self.examples_note,
            self.limit_bytes,
            client_side,
        )

    def _web_files(self, model) -> dict:
        """Fills web_files; returns info's client_side."""
        from pix2pix_tf.demo import site
        from pix2pix_tf.serving import web_runtime

        runtime = web_runtime.runtime_dir()
        for name in (*web_runtime.RUNTIME.files, web_runtime.LICENSE_FILE):
            with open(os.path.join(runtime, name), "rb") as file:
                content_type = CONTENT_TYPES[os.path.splitext(name)[1]]
                self.web_files[f"/{site.RUNTIME_DIR}/{name}"] = (file.read(), content_type)
        self.web_files[f"/{site.MODEL_FILE}"] = (model.data, CONTENT_TYPES[".onnx"])
        record = json.dumps(model.record, indent=2, sort_keys=True).encode()
        self.web_files[f"/{site.METADATA_FILE}"] = (record, CONTENT_TYPES[".json"])
        return site.client_info(model.record, len(model.data), self.options.max_model_mb)


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "pix2pix-demo"
    app: DemoApp  # Set on the subclass made by make_server.

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature.
        pass  # Failures are logged by _error; successful requests are not.

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: dict):
        self._send(status, json.dumps(value).encode(), "application/json")

    def _error(self, status: int, message: str):
        self.app.log(f"{self.command} {self.path}: {status} {message}")
        self._json(status, {"error": message})

    def do_GET(self):
        try:
            if self.path in STATIC_FILES:
                name, content_type = STATIC_FILES[self.path]
                with open(os.path.join(STATIC_DIR, name), "rb") as file:
                    return self._send(200, file.read(), content_type)
            if self.path in ("/api/info", "/info.json"):
                return self._json(200, self.app.info)
            if self.path in self.app.web_files:
                return self._send(200, *self.app.web_files[self.path])
            match = re.fullmatch(r"/api/examples/(\d+)", self.path)
            if match and int(match.group(1)) < len(self.app.examples):
                return self._send(200, self.app.examples[int(match.group(1))].png, "image/png")
            self._error(404, f"no such page: {self.path}")
        except Exception as error:  # noqa: BLE001 - the server outlives any request.
            self._internal_error(error)

    def _read_body(self) -> bytes | None:
        """The request's body, or None after refusing it (an error reply was sent)."""
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._error(411, "the request has no Content-Length.")
            return None
        if length > self.app.limit_bytes:
            if length <= _DRAIN_FACTOR * self.app.limit_bytes:
                while length > 0:
                    chunk = self.rfile.read(min(length, 2**20))
                    if not chunk:
                        break
                    length -= len(chunk)
            else:
                self.close_connection = True
            self._error(
                413,
                f"the file is {int(self.headers['Content-Length']) / 2**20:.1f} MiB; uploads "
                f"are limited to {self.app.options.max_upload_mb} MiB (--max_upload_mb).",
            )
            return None
        return self.rfile.read(length)

    def do_POST(self):
        try:
            if self.path not in ("/api/upload", "/api/generate"):
                return self._error(404, f"no such endpoint: {self.path}")
            body = self._read_body()
            if body is None:
                return
            if self.path == "/api/upload":
                png, width, height = backend_lib.checked_upload(
                    body, self.app.limit_bytes, self.app.backend.max_pixels
                )
                extra = {"X-Image-Width": str(width), "X-Image-Height": str(height)}
                return self._send(200, png, "image/png", extra)
            if not body:
                return self._error(400, "nothing to generate from: the request is empty.")
            return self._send(200, self.app.backend.generate(body), "image/png")
        except backend_lib.RequestError as error:
            self._error(400, str(error))
        except Exception as error:  # noqa: BLE001 - the server outlives any request.
            self._internal_error(error)

    def _internal_error(self, error: BaseException):
        from pix2pix_tf.serving import predict

        reason = predict._reason(error)
        # The model's own checks (an image it cannot decode, too large) are the request's fault.
        status = 400 if type(error).__name__ == "InvalidArgumentError" else 500
        if status == 500:
            traceback.print_exc(file=sys.stderr)
        try:
            self._error(status, f"generation failed: {reason}")
        except OSError:
            pass  # The page went away.


def make_server(app: DemoApp, host: str, port: int) -> http.server.ThreadingHTTPServer:
    handler = type("DemoHandler", (Handler,), {"app": app})
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve_in_thread(app: DemoApp, host: str = "127.0.0.1", port: int = 0):
    """Starts a server on a thread; returns (server, url). For tests and notebooks."""
    server = make_server(app, host, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}"
