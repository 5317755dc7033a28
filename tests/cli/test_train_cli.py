"""train.py as a command: flag errors, --help, and SIGTERM on a tiny run."""

import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf
from conftest import REPO_ROOT

TRAIN = os.path.join(REPO_ROOT, "train.py")


def _run(args, **kwargs):
    return subprocess.run(
        [sys.executable, TRAIN, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--image_size", "100"], "--image_size must be a power of two"),
        (["--steps", "abc"], "argument --steps: invalid int value: 'abc'"),
        (["--dataset", "nope"], "--dataset: unknown dataset 'nope'"),
        (["--arch", "resnet"], "--arch must be one of paper, tutorial"),
        (["--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
        (["--preset", "tiny", "--discriminator_layers", "5"], "needs --image_size >= 128"),
        (["--lr_decay_fraction", "2"], "--lr_decay_fraction must be in [0, 1]"),
    ],
)
def test_bad_flag_values_give_a_one_line_error(args, message):
    result = _run(args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr


def test_help_lists_datasets_and_presets():
    result = _run(["--help"])
    assert result.returncode == 0
    for name in ("cityscapes", "facades", "synthetic", "folder", "tiny", "quick"):
        assert f"  {name}:" in result.stdout
    for flag in ("--dataset", "--workdir", "--preset", "--arch", "--steps", "--epochs"):
        assert flag in result.stdout


# A fresh process (TensorFlow start-up, data preparation, tracing) takes 10-25 s on
# 2 busy cores; the in-process resume test covers the same signal handling by default.
@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    workdir, data_dir = tmp_path / "run", tmp_path / "tfrecords"
    args = ["--preset", "tiny", "--steps", "100000", "--image_every", "2"]
    args += ["--checkpoint_every", "100000", "--workdir", str(workdir), "--data_dir", str(data_dir)]
    log = open(tmp_path / "log.txt", "w+")
    process = subprocess.Popen(
        [sys.executable, TRAIN, *args], cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=log
    )
    try:
        deadline = time.monotonic() + 240
        while not (workdir / "samples" / "step_000002.png").exists():
            assert process.poll() is None, open(tmp_path / "log.txt").read()
            assert time.monotonic() < deadline, "training did not reach step 2"
            time.sleep(0.2)
        assert not (workdir / "checkpoint").exists()  # None yet: every 100000 steps.
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    log.seek(0)
    output = log.read()
    assert returncode == 128 + signal.SIGTERM, output
    assert "Traceback" not in output
    assert "Stopped by SIGTERM at step" in output and "Rerun the same command" in output
    step = int(output.split("Stopped by SIGTERM at step ")[1].split()[0])
    assert step >= 2
    latest = tf.train.latest_checkpoint(str(workdir))
    assert latest == str(workdir / f"ckpt-{step}")
    assert tf.train.load_checkpoint(latest).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == step
