"""The suite passes on any machine: nothing checked in names a folder of one machine.

A test that passes only because a folder from earlier work exists proves nothing. The
checked-in files are scanned for absolute paths under the roots where machines keep
their own files; each one found must be listed below with why it is harmless, and the
paths that the fixtures of earlier versions recorded (where they were written) must
not exist here, so that tests/test_compatibility.py shows that they are not read. The
tests themselves run with a fresh HOME and TMPDIR (conftest.py).
"""

import os
import re
import subprocess
import tempfile

from conftest import ISOLATION_VARIABLE, REPO_ROOT, TEST_ROOT

# An absolute path under a root where machines keep their own files (not inside a
# longer path or a URL).
ABSOLUTE_PATH = re.compile(
    rb"(?<![\w.~/-])/(?:tmp|home|root|work|Users|mnt|media|srv|scratch|data|var|opt|private)"
    rb"/[\w.+/-]*"
)
FIXTURES = "tests/fixtures/"
# This file: the table below quotes every path it lists, so it is not scanned itself.
THIS_FILE = "tests/test_portability.py"
# (file, path) -> why it is no path this suite reads or writes.
EXPECTED = {
    ("docs/datasets.md", "/data/cityscapes"): "an example in a command the reader edits",
    ("pix2pix_tf/data/datasets/folder.py", "/data/my"): "a docstring example",
    ("tests/data/test_datasets_archive.py", "/tmp/evil.jpg"): "an archive member that is refused",
    ("tests/data/test_datasets_folder.py", "/data/My"): "a name config_name() hashes",
    (
        "tests/data/test_input_pipeline.py",
        "/data/cityscapes",
    ): "replaced in docs/datasets.md's command",
    ("tests/training/test_train_faults.py", "/data/x.tfrecord"): "an error message's file name",
    (
        "tests/training/test_train_faults.py",
        "/data/train-00000.tfrecord",
    ): "an error message's file name",
    ("tests/test_compatibility.py", "/tmp/fx/tfr"): "says where the fixture was written",
}


def _checked_in_files() -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):  # Not a git checkout: every file.
        return [
            os.path.relpath(os.path.join(folder, name), REPO_ROOT)
            for folder, subfolders, names in os.walk(REPO_ROOT)
            if not {".git", "tfrecords", "checkpoints"} & set(folder.split(os.sep))
            for name in names
        ]
    return [name for name in listed.decode().split("\0") if name]


def _absolute_paths() -> dict[tuple[str, str], None]:
    found = {}
    for name in _checked_in_files():
        path = os.path.join(REPO_ROOT, name)
        if name == THIS_FILE or not os.path.isfile(path):
            continue
        with open(path, "rb") as file:
            for match in ABSOLUTE_PATH.finditer(file.read()):
                found[(name, match.group().decode(errors="replace").rstrip("./"))] = None
    return found


def test_checked_in_files_name_no_folder_of_a_machine():
    found = {key for key in _absolute_paths() if not key[0].startswith(FIXTURES)}
    assert found == set(EXPECTED), (
        f"new: {sorted(found - set(EXPECTED))}; no longer found: {sorted(set(EXPECTED) - found)}"
    )


def test_paths_the_fixtures_recorded_do_not_exist_here():
    """Else a compatibility test could pass only because the old data is still there."""
    recorded = {path for name, path in _absolute_paths() if name.startswith(FIXTURES)}
    assert recorded, "the fixtures of earlier versions record where they were written"
    for path in sorted(recorded):
        parts = path.split("/")
        # The fixture's own folder (e.g. /tmp/fx), not the shared root (/tmp) above it.
        folder = "/".join(parts[:3])
        assert not os.path.exists(folder), (
            f"{folder} exists on this machine, and a fixture records {path}: a test could "
            f"pass only because of it. Move it away and rerun."
        )


def test_tests_run_with_a_fresh_home_and_temporary_folder(tmp_path):
    assert os.environ[ISOLATION_VARIABLE] == TEST_ROOT
    assert os.path.expanduser("~") == os.path.join(TEST_ROOT, "home")
    assert tempfile.gettempdir() == os.path.join(TEST_ROOT, "tmp")
    assert str(tmp_path).startswith(os.path.join(TEST_ROOT, "tmp"))
    for variable in ("PIX2PIX_MANUAL_DIR", "PIX2PIX_DATASET_URL", "KERAS_HOME", "TFDS_DATA_DIR"):
        assert variable not in os.environ
    # Subprocesses inherit them.
    home = subprocess.run(
        ["python", "-c", "import os; print(os.path.expanduser('~'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert home == os.path.join(TEST_ROOT, "home")
