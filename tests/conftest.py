"""Shared test settings: a fresh HOME and TMPDIR, quiet TensorFlow, where the real data lives.

Every test process (the pytest-xdist workers and their subprocesses inherit it) runs
with HOME, TMPDIR and the XDG folders in a new temporary folder that is removed at the
end, and without the environment variables that point the project or its libraries at
data elsewhere, so that no test can pass because of a cache, a download or a folder
that exists on one machine only (tests/test_portability.py checks it).
"""

import atexit
import os
import shutil
import signal
import tempfile

# Point the project or its libraries at data or caches outside the test's folders.
_MACHINE_VARIABLES = ("PIX2PIX_MANUAL_DIR", "PIX2PIX_DATASET_URL", "KERAS_HOME", "TFDS_DATA_DIR")
ISOLATION_VARIABLE = "PIX2PIX_TEST_ROOT"


def _isolate() -> str:
    """Sets HOME, TMPDIR and XDG_* to a fresh folder (once per test session)."""
    root = os.environ.get(ISOLATION_VARIABLE)
    if root and os.path.isdir(root):  # A worker of this session: the same folders.
        return root
    root = tempfile.mkdtemp(prefix="pix2pix-tests-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    folders = {
        "HOME": "home",
        "TMPDIR": "tmp",
        "XDG_CACHE_HOME": "home/.cache",
        "XDG_CONFIG_HOME": "home/.config",
        "XDG_DATA_HOME": "home/.local/share",
    }
    for variable, folder in folders.items():
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        os.environ[variable] = os.path.join(root, folder)
    for variable in _MACHINE_VARIABLES:
        os.environ.pop(variable, None)
    os.environ[ISOLATION_VARIABLE] = root
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again.
    return root


TEST_ROOT = _isolate()
# A suite started in the background of a non-interactive shell (`bash -c '... &'`) inherits
# SIGINT ignored, and so would every command a test starts: the tests of Ctrl-C would then
# fail without a defect. Ctrl-C gets Python's own handler back (children start with the
# default disposition again).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATASETS = os.path.join(os.path.dirname(REPO_ROOT), "shared", "datasets")
CITYSCAPES_ARCHIVE = os.path.join(SHARED_DATASETS, "cityscapes.tar.gz")

requires_cityscapes = pytest.mark.skipif(
    not os.path.exists(CITYSCAPES_ARCHIVE),
    reason=f"real Cityscapes archive not found at {CITYSCAPES_ARCHIVE}",
)
