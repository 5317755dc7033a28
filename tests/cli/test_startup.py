"""A quiet start: TensorFlow's CPU-only banners are left out, nothing else is.

The commands run in subprocesses without TF_CPP_MIN_LOG_LEVEL (conftest sets it for
this process), as a user runs them.
"""

import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

from pix2pix_tf.cli import startup

# What TensorFlow 2.21 printed at start-up on the CPU-only machines of this project.
BANNERS = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796310785.555497   29251 port.cc:153] oneDNN custom operations are on. You may \
see slightly different numerical results due to floating-point round-off errors from \
different computation orders. To turn them off, set the environment variable \
`TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1796310785.555773   29251 cudart_stub.cc:31] Could not find cuda drivers on your \
machine, GPU will not be used.
I0000 00:00:1796310785.591471   29251 cpu_feature_guard.cc:227] This TensorFlow binary is \
optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other \
operations, rebuild TensorFlow with the appropriate compiler flags.
E0000 00:00:1796310681.808806   27320 cuda_platform.cc:52] failed call to cuInit: INTERNAL: \
CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
"""


def test_only_the_banners_are_left_out():
    others = (
        "E0000 00:00:1796310681.808806   27320 cuda_platform.cc:52] failed to load libcuda\n"
        "W0000 00:00:1.0 1 port.cc:1] oneDNN custom operations are on.\n"  # Not at INFO.
        "Traceback (most recent call last):\n"
        "I0000 00:00:1.0 1 other.cc:1] Could not find cuda drivers on your machine, GPU will "
        "not be used.\n"
        "unterminated last line"
    )
    assert startup.filter_banners(BANNERS) == ""
    assert startup.filter_banners(BANNERS + others) == others
    assert startup.filter_banners(others[:-22] + BANNERS) == others[:-22]


def _run(*args, env_extra=None):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, **(env_extra or {})},
    )


def _gpu_machine() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


@pytest.mark.slow
def test_a_command_that_fails_prints_its_one_line_and_nothing_of_tensorflow(tmp_path):
    if _gpu_machine():
        pytest.skip("a GPU machine prints TensorFlow's start-up lines unchanged")
    args = ["predict.py", "--model", str(tmp_path / "none"), "--input", "x", "--output", "y"]
    quiet = _run(*args)
    assert quiet.returncode == 1
    assert quiet.stderr == f"predict.py: error: --model {tmp_path / 'none'}: no such directory.\n"
    # --verbose, or the user's own TF_CPP_MIN_LOG_LEVEL, shows what TensorFlow prints.
    for verbose in (_run(*args, "--verbose"), _run(*args, env_extra={"TF_CPP_MIN_LOG_LEVEL": "0"})):
        assert verbose.returncode == 1
        assert "failed call to cuInit" in verbose.stderr, verbose.stderr
        assert verbose.stderr.endswith(quiet.stderr)


@pytest.mark.slow
def test_training_starts_quietly_and_names_the_run_for_tensorboard(tmp_path):
    workdir = tmp_path / "run"
    result = _run(
        "train.py", "--preset", "tiny", "--steps", "1", "--workdir", str(workdir),
        "--data_dir", str(tmp_path / "tfrecords"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    for banner in ("absl::InitializeLog", "oneDNN custom operations", "cudart_stub", "cuInit"):
        assert banner not in result.stderr
    assert f"TensorBoard: tensorboard --logdir {workdir}\n" in result.stdout
    # Rerun at --steps: nothing to train, so no losses to print, and it says so.
    again = _run(
        "train.py", "--preset", "tiny", "--steps", "1", "--workdir", str(workdir),
        "--data_dir", str(tmp_path / "tfrecords"),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert "step 1/1 (no new steps)\n" in again.stdout
    assert "is already trained to step 1 of 1" in again.stderr
