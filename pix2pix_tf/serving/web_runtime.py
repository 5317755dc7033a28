"""ONNX Runtime Web's files for the in-browser demo and `export.py --format web`; no TensorFlow.

The page runs the ONNX export with the npm package onnxruntime-web, at the release of
the pinned onnxruntime (requirements.txt). Its files are obtained by this module, not
by node or a CDN:

- `RUNTIME` (one table) pins the version, the registry's tarball URL and its sha512
  integrity (the `dist.integrity` of `npm view onnxruntime-web@<version>`), and names the
  dist files the page loads: the WebAssembly bundle (every browser) and the WebGPU one
  (browsers with a GPU adapter), each with its emscripten glue and .wasm binary.
- `runtime_dir()` returns a folder holding exactly those files and LICENSE: the folder of
  `PIX2PIX_ONNXRUNTIME_WEB_DIST` when set (an unpacked `node_modules/onnxruntime-web/dist`,
  for hosts without the registry), else the cache `$XDG_CACHE_HOME/pix2pix_tf/
  onnxruntime-web-<version>/` (~/.cache/...), filled on first use by downloading the
  tarball from registry.npmjs.org, checking its integrity and extracting the files into
  a temporary folder that is renamed into place, so a killed download never leaves a
  complete-looking cache. A lock serialises concurrent fills (test workers, two exports).

The tarball carries no licence file (its package.json says "license": "MIT" and its
README points at the repository's LICENSE), so the MIT licence of microsoft/onnxruntime
is written beside the files as LICENSE; the bundles keep their own MIT headers.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request

ENV_DIST = "PIX2PIX_ONNXRUNTIME_WEB_DIST"
LICENSE_FILE = "LICENSE"
# A download that stalls this long (seconds) fails rather than hangs.
DOWNLOAD_TIMEOUT_S = 120


@dataclasses.dataclass(frozen=True)
class Runtime:
    package: str
    version: str
    integrity: str  # npm's "sha512-<base64>" of the tarball
    # Per backend family: (bundle the page imports, its glue script, its .wasm binary).
    bundles: dict[str, tuple[str, str, str]]

    @property
    def url(self) -> str:
        return f"https://registry.npmjs.org/{self.package}/-/{self.package}-{self.version}.tgz"

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(name for bundle in self.bundles.values() for name in bundle)


RUNTIME = Runtime(
    package="onnxruntime-web",
    version="1.31.1",
    integrity="sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw==",
    bundles={
        # The CPU execution provider compiled to WebAssembly (SIMD, threads): 14.9 MB.
        "wasm": ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"),
        # WebGPU plus the same CPU provider (asyncify build): 28.8 MB, loaded only by a
        # browser that offers a WebGPU adapter.
        "webgpu": (
            "ort.webgpu.min.mjs",
            "ort-wasm-simd-threaded.asyncify.mjs",
            "ort-wasm-simd-threaded.asyncify.wasm",
        ),
    },
)

LICENSE_TEXT = """\
onnxruntime-web {version} (https://www.npmjs.com/package/onnxruntime-web), from
https://github.com/microsoft/onnxruntime, is licensed under the MIT License:

MIT License

Copyright (c) 2018 - present Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


class WebRuntimeError(OSError):
    """The runtime's files cannot be had; the message is one line saying what to do."""


def cache_dir(runtime: Runtime = RUNTIME) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pix2pix_tf", f"{runtime.package}-{runtime.version}")


def runtime_dir(runtime: Runtime = RUNTIME, opener=urllib.request.urlopen) -> str:
    """A folder with the runtime's files and LICENSE (see the module docstring)."""
    explicit = os.environ.get(ENV_DIST)
    if explicit:
        return _checked_dist(explicit, runtime)
    folder = cache_dir(runtime)
    if _complete(folder, runtime):
        return folder
    parent = os.path.dirname(folder)
    try:
        os.makedirs(parent, exist_ok=True)
        with _locked(os.path.join(parent, f".{os.path.basename(folder)}.lock")):
            if not _complete(folder, runtime):  # Another process may have filled it meanwhile.
                _fill(folder, runtime, _download(runtime, opener))
    except OSError as error:
        if isinstance(error, WebRuntimeError):
            raise
        raise WebRuntimeError(
            f"cannot write the {runtime.package} cache {folder} ({error.strerror or error}); "
            f"make it writable, or set {ENV_DIST} to an unpacked "
            f"node_modules/{runtime.package}/dist."
        ) from None
    return folder


def _complete(folder: str, runtime: Runtime) -> bool:
    return all(os.path.isfile(os.path.join(folder, name)) for name in runtime.files)


def _checked_dist(folder: str, runtime: Runtime) -> str:
    missing = [name for name in runtime.files if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise WebRuntimeError(
            f"{ENV_DIST}={folder}: no {missing[0]} there; point it at the dist folder of "
            f"{runtime.package}@{runtime.version} (npm install {runtime.package}@"
            f"{runtime.version}, then node_modules/{runtime.package}/dist)."
        )
    return folder


def _download(runtime: Runtime, opener) -> bytes:
    offline = (
        f"cannot download {runtime.url} ({{reason}}); on a host without the npm registry, "
        f"unpack {runtime.package}@{runtime.version} elsewhere (npm pack {runtime.package}@"
        f"{runtime.version}) and set {ENV_DIST} to its package/dist folder."
    )
    try:
        with opener(runtime.url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            data = response.read()
    except urllib.error.HTTPError as error:
        raise WebRuntimeError(offline.format(reason=f"HTTP {error.code}")) from None
    except (urllib.error.URLError, OSError) as error:
        raise WebRuntimeError(offline.format(reason=getattr(error, "reason", error))) from None
    check_integrity(data, runtime)
    return data


def check_integrity(data: bytes, runtime: Runtime = RUNTIME) -> None:
    algorithm, _, expected = runtime.integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise WebRuntimeError(
            f"{runtime.url}: the download ({len(data)} bytes) does not match the pinned "
            f"integrity {runtime.integrity[:24]}...; nothing was cached. Retry; if it "
            "persists, the registry or a proxy serves other bytes."
        )


def _fill(folder: str, runtime: Runtime, tarball: bytes) -> None:
    """Extracts the runtime's files into a temporary folder beside `folder`, then renames it."""
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}-", dir=os.path.dirname(folder))
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            for name in runtime.files:
                try:
                    member = archive.extractfile(f"package/dist/{name}")
                except KeyError:
                    member = None
                if member is None:
                    raise WebRuntimeError(f"{runtime.url}: no package/dist/{name} in the tarball.")
                with open(os.path.join(staging, name), "wb") as file:
                    shutil.copyfileobj(member, file)
        with open(os.path.join(staging, LICENSE_FILE), "w") as file:
            file.write(LICENSE_TEXT.format(version=runtime.version))
        os.chmod(staging, 0o755)
        if os.path.isdir(folder):  # Incomplete (files removed by hand): replaced whole.
            shutil.rmtree(folder)
        os.rename(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def copy_files(
    destination: str, backends: tuple[str, ...] | None = None, runtime: Runtime = RUNTIME
) -> list[str]:
    """Copies the runtime's files (of `backends`, default all) and LICENSE into
    `destination`; returns the names copied."""
    source = runtime_dir(runtime)
    os.makedirs(destination, exist_ok=True)
    names = [
        name
        for backend, bundle in runtime.bundles.items()
        if backends is None or backend in backends
        for name in bundle
    ]
    for name in names:
        shutil.copyfile(os.path.join(source, name), os.path.join(destination, name))
    with open(os.path.join(destination, LICENSE_FILE), "w") as file:
        file.write(LICENSE_TEXT.format(version=runtime.version))
    return [*names, LICENSE_FILE]


@contextlib.contextmanager
def _locked(path: str):
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
