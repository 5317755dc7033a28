"""`--help` of export.py, evaluate.py, predict.py and the segmenter answers without
importing TensorFlow (it took 4 s and printed C++ log lines before)."""

import os
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import REPO_ROOT

# (how to run it, what its usage line starts with).
ENTRY_POINTS = [
    ("export.py", "usage: export.py"),
    ("evaluate.py", "usage: evaluate.py"),
    ("predict.py", "usage: predict.py"),
    ("-m pix2pix_tf.segmentation", "usage: python -m pix2pix_tf.segmentation"),
]


def _run_help(entry_point: str) -> subprocess.CompletedProcess:
    """Runs `<entry point> --help` as python would, then reports which modules it imported."""
    if entry_point.startswith("-m "):
        run = f"runpy.run_module({entry_point[3:]!r}, run_name='__main__', alter_sys=True)"
    else:
        run = f"runpy.run_path({os.path.join(REPO_ROOT, entry_point)!r}, run_name='__main__')"
    script = textwrap.dedent(
        f"""
        import runpy, sys
        sys.argv = ["{entry_point}", "--help"]
        try:
            {run}
        except SystemExit as exit:
            code = exit.code
        else:
            code = "no exit"
        imported = sorted(name for name in ("tensorflow", "keras", "numpy") if name in sys.modules)
        print("EXIT", code, "IMPORTED", imported)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )


@pytest.mark.parametrize("entry_point,usage", ENTRY_POINTS)
def test_help_answers_without_tensorflow(entry_point, usage):
    start = time.monotonic()
    result = _run_help(entry_point)
    elapsed = time.monotonic() - start
    assert result.stdout.startswith(usage), result.stdout + result.stderr
    assert "EXIT 0 IMPORTED []" in result.stdout, result.stdout[-500:] + result.stderr
    assert result.stderr == ""
    assert elapsed < 3.0, f"{entry_point} --help took {elapsed:.1f} s"
