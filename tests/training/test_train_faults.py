"""Training runs that meet a bad --workdir, a full disk, Ctrl-C, a damaged checkpoint or a NaN.

Each ends in one line naming the path or flag and what to do (train.py, run
in-process here), or recovers: an older intact checkpoint, a lower learning rate.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT
from fs_faults import read_only_directory, small_filesystem

import train as train_script
from pix2pix_tf import configs as config_lib
from pix2pix_tf.models import losses
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.runs import resume
from pix2pix_tf.training import summaries
from pix2pix_tf.training import trainer as training
from pix2pix_tf.training.controller import Interrupted, NonFiniteLossError
from pix2pix_tf.training.step import LOSS_NAMES


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from pix2pix_tf.data import prepare

    data_dir = str(tmp_path_factory.mktemp("tfrecords"))
    prepare.prepare(config_lib.build_config(preset="tiny", data_dir=data_dir).data)
    return data_dir


def _tiny(data_dir, workdir, **overrides):
    return config_lib.build_config(
        preset="tiny", data_dir=data_dir, workdir=str(workdir), **overrides
    )


def _main(capsys, *args):
    """Runs train.py's main in-process; returns (exit status, its error lines)."""
    try:
        status = train_script.main(["--preset", "tiny", *args])
    except KeyboardInterrupt:  # Would stop pytest itself.
        pytest.fail("KeyboardInterrupt escaped train.py's main")
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    return status, [line for line in stderr.splitlines() if line.startswith("train.py:")]


# ---------------------------------------------------------------------------
# --workdir that cannot hold a run.
# ---------------------------------------------------------------------------


def test_workdir_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    workdir = tmp_path / "run"
    workdir.write_text("not a directory\n")
    status, errors = _main(capsys, "--workdir", str(workdir), "--data_dir", str(tmp_path / "d"))
    assert status == 1
    assert len(errors) == 1 and f"--workdir {workdir} is a file" in errors[0], errors
    assert workdir.read_text() == "not a directory\n"


def test_workdir_under_a_file_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    workdir = tmp_path / "file" / "run"
    status, errors = _main(capsys, "--workdir", str(workdir), "--data_dir", str(tmp_path / "d"))
    assert status == 1
    assert len(errors) == 1 and f"--workdir {workdir} is not a writable directory" in errors[0]


def test_read_only_workdir_is_a_one_line_error(tmp_path, capsys):
    with read_only_directory(str(tmp_path / "readonly")) as readonly:
        for workdir in (readonly, os.path.join(readonly, "run")):
            status, errors = _main(
                capsys, "--workdir", workdir, "--data_dir", str(tmp_path / "data")
            )
            assert status == 1
            assert len(errors) == 1, errors
            assert f"--workdir {workdir} is not a writable directory" in errors[0]
            assert "Read-only file system" in errors[0]
    # Nothing was prepared before the run directory was known to be good.
    assert not (tmp_path / "data").exists()


# ---------------------------------------------------------------------------
# Ctrl-C during start-up.
# ---------------------------------------------------------------------------


def test_ctrl_c_during_start_up_is_one_line_exit_130_and_saves_nothing(
    tiny_data, tmp_path, capsys, monkeypatch
):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "build_train_state", interrupted)
    workdir = tmp_path / "run"
    status, errors = _main(capsys, "--workdir", str(workdir), "--data_dir", tiny_data)
    assert status == 130
    assert len(errors) == 1 and "interrupted by Ctrl-C during start-up" in errors[0], errors
    assert "Rerun the same command" in errors[0]
    assert sorted(os.listdir(workdir)) == []


# ---------------------------------------------------------------------------
# A full disk while saving a checkpoint.
# ---------------------------------------------------------------------------


def _fill(directory, leave_bytes):
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize
    with open(os.path.join(directory, "filler"), "wb") as file:
        file.write(b"\0" * max(free - leave_bytes, 0))


def test_full_disk_while_saving_keeps_the_last_complete_checkpoint(
    tiny_data, tmp_path, capsys, monkeypatch
):
    write_scalars = summaries.write_scalars
    workdir = str(tmp_path / "run")

    def fill_at_step_2(writer, scalars, step):
        write_scalars(writer, scalars, step)
        if step == 2:
            _fill(workdir, leave_bytes=64 * 1024)  # Far less than one checkpoint (2.8 MB).

    monkeypatch.setattr(summaries, "write_scalars", fill_at_step_2)
    args = ["--workdir", workdir, "--data_dir", tiny_data, "--steps", "3", "--image_every", "100"]
    with small_filesystem(workdir, 16 * 1024 * 1024):
        status, errors = _main(capsys, *args)
        assert status == 1
        assert len(errors) == 1, errors
        latest = os.path.join(workdir, "ckpt-1")
        for part in (f"--workdir {workdir}", "ckpt-2", "no space left on device"):
            assert part in errors[0], errors
        assert f"latest complete checkpoint is {latest}; free space" in errors[0]
        assert "rerun the same command to resume" in errors[0]
        assert tf.train.latest_checkpoint(workdir) == latest
        assert run_dir.listed_checkpoints(workdir) == [latest]
        left = sorted(name for name in os.listdir(workdir) if "ckpt-2" in name or ".tmp" in name)
        assert left == []
        assert run_dir.checkpoint_damage(latest) is None

        # Space freed, the same command resumes from ckpt-1 and finishes.
        os.remove(os.path.join(workdir, "filler"))
        monkeypatch.setattr(summaries, "write_scalars", write_scalars)
        status, errors = _main(capsys, *args)
        assert status == 0 and errors == []
        assert tf.train.latest_checkpoint(workdir) == os.path.join(workdir, "ckpt-3")


# ---------------------------------------------------------------------------
# A damaged (truncated) latest checkpoint.
# ---------------------------------------------------------------------------


def _truncate(path):
    data = path + ".data-00000-of-00001"
    os.truncate(data, os.path.getsize(data) // 3)


@pytest.fixture
def two_checkpoints(tiny_data, tmp_path):
    """A 2-step tiny run with ckpt-1 and ckpt-2, ckpt-2's data file truncated."""
    workdir = tmp_path / "run"
    config = _tiny(tiny_data, workdir, image_every=100)
    training.train(config)
    _truncate(str(workdir / "ckpt-2"))
    return config, str(workdir)


def test_resume_falls_back_to_the_newest_intact_checkpoint(two_checkpoints, capsys):
    config, workdir = two_checkpoints
    capsys.readouterr()
    result = training.train(config.replace(steps=3))
    stderr = capsys.readouterr().err
    damaged = os.path.join(workdir, "ckpt-2")
    assert f"Warning: skipping checkpoint {damaged}: damaged (truncated or corrupt" in stderr
    assert f"Resuming {os.path.join(workdir, 'ckpt-1')} at step 1." in stderr
    assert result["step"] == 3 and result["checkpoint"] == os.path.join(workdir, "ckpt-3")
    # The step re-ran from ckpt-1 rewrote ckpt-2 whole.
    assert run_dir.checkpoint_damage(damaged) is None
    assert run_dir.checkpoint_step(result["checkpoint"]) == 3


def test_resume_with_every_checkpoint_damaged_names_them(two_checkpoints, capsys):
    config, workdir = two_checkpoints
    _truncate(os.path.join(workdir, "ckpt-1"))
    with pytest.raises(ValueError, match="no intact checkpoint to resume from") as error:
        training.train(config.replace(steps=3))
    message = str(error.value)
    assert os.path.join(workdir, "ckpt-2") in message and os.path.join(workdir, "ckpt-1") in message
    assert "\n" not in message


def test_restore_generator_names_a_damaged_checkpoint_and_the_intact_ones(two_checkpoints):
    _, workdir = two_checkpoints
    damaged, intact = os.path.join(workdir, "ckpt-2"), os.path.join(workdir, "ckpt-1")
    for checkpoint_path in (None, damaged):
        with pytest.raises(ValueError) as error:
            run_dir.restore_generator(workdir, checkpoint_path)
        message = str(error.value)
        assert f"checkpoint {damaged} is damaged (truncated or corrupt" in message
        assert f"--checkpoint {intact}" in message and "does not hold" not in message
    _, generator, restored = run_dir.restore_generator(workdir, intact)
    assert restored == intact
    assert generator.output_shape[1:] == (64, 64, 3)
    _truncate(intact)
    with pytest.raises(ValueError, match="holds no intact checkpoint"):
        run_dir.restore_generator(workdir)


# ---------------------------------------------------------------------------
# A NaN stop, then a resume with a lower --learning_rate.
# ---------------------------------------------------------------------------


def test_learning_rate_and_its_schedule_may_change_on_resume(tmp_path):
    saved = _tiny(None, tmp_path)
    changed = saved.replace(learning_rate=1e-5, lr_decay_fraction=0.0)
    assert resume.incompatible_fields(saved, changed) == {}
    line = resume.schedule_changes(saved, changed)
    assert "--learning_rate 1e-05 (saved 0.0002)" in line and "--lr_decay_fraction 0.0" in line
    assert resume.schedule_changes(saved, saved) is None


def test_nan_stop_resumes_with_a_lower_learning_rate(tiny_data, tmp_path, monkeypatch, capsys):
    # The loss diverges from step 3 on whenever the learning rate is above 1e-3.
    states = []
    build_train_state = training.build_train_state
    generator_loss = losses.generator_loss

    def recording_build_train_state(*args, **kwargs):
        states.append(build_train_state(*args, **kwargs))
        return states[-1]

    def diverging_generator_loss(*args, **kwargs):
        values = generator_loss(*args, **kwargs)
        optimizer = states[-1].generator_optimizer
        diverged = tf.logical_and(optimizer.iterations >= 2, optimizer.learning_rate > 1e-3)
        values["gen_total"] += tf.where(diverged, np.float32(np.nan), np.float32(0.0))
        return values

    monkeypatch.setattr(training, "build_train_state", recording_build_train_state)
    monkeypatch.setattr(losses, "generator_loss", diverging_generator_loss)
    workdir = str(tmp_path / "run")
    config = _tiny(tiny_data, workdir, steps=4, image_every=100, learning_rate=2e-3)
    with pytest.raises(NonFiniteLossError, match="non-finite loss at step 3") as error:
        training.train(config)
    assert "lower --learning_rate" in str(error.value)
    assert tf.train.latest_checkpoint(workdir) == os.path.join(workdir, "ckpt-2")

    capsys.readouterr()
    result = training.train(config.replace(learning_rate=1e-4))
    stderr = capsys.readouterr().err
    assert "Resuming with --learning_rate 0.0001 (saved 0.002)" in stderr
    assert f"Resuming {os.path.join(workdir, 'ckpt-2')} at step 2." in stderr
    assert result["step"] == 4 and all(np.isfinite(result[name]) for name in LOSS_NAMES)
    reader = tf.train.load_checkpoint(result["checkpoint"])
    iterations = "generator_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
    assert reader.get_tensor(iterations) == 4  # The optimizer's count carried on.
    saved = config_lib.Config.from_json(os.path.join(workdir, "config.json"))
    assert saved.train.learning_rate == 1e-4  # The next resume compares with the new rate.
    # The schedule was rebuilt from the new rate at the optimizer's step.
    schedule = states[-1].schedule
    assert schedule.learning_rate == 1e-4
    assert float(states[-1].generator_optimizer.learning_rate) == pytest.approx(float(schedule(4)))


# ---------------------------------------------------------------------------
# Any OSError or TensorFlow error: one line naming the path, never a traceback.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error, expected",
    [
        (PermissionError(13, "Permission denied", "/data/x.tfrecord"), "/data/x.tfrecord: "),
        (OSError(28, "No space left on device", "/runs/a/b"), "/runs/a/b: No space left"),
        (
            tf.errors.NotFoundError(None, None, "/data/train-00000.tfrecord; No such file"),
            "/data/train-00000.tfrecord; No such file",
        ),
    ],
)
def test_os_and_tensorflow_errors_are_one_line(tmp_path, capsys, monkeypatch, error, expected):
    from pix2pix_tf.data import prepare

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(prepare, "prepare", failing)
    args = ["--workdir", str(tmp_path / "run"), "--data_dir", str(tmp_path / "data")]
    status, errors = _main(capsys, *args)
    assert status == 1
    assert len(errors) == 1 and expected in errors[0], errors


def test_train_py_process_with_a_file_as_workdir_exits_1_with_one_line(tmp_path):
    workdir = tmp_path / "run"
    workdir.write_text("")
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "train.py"), "--preset", "tiny"]
        + ["--workdir", str(workdir), "--data_dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("train.py:")]
    assert errors == [
        f"train.py: error: --workdir {workdir} is a file, not a directory; pass a directory "
        f"(it is created if missing)."
    ]


def test_second_ctrl_c_in_the_loop_names_the_latest_complete_checkpoint(
    tiny_data, tmp_path, monkeypatch
):
    import signal

    write_scalars = summaries.write_scalars

    def two_ctrl_c_at_step_2(writer, scalars, step):
        write_scalars(writer, scalars, step)
        if step == 2:
            signal.raise_signal(signal.SIGINT)  # Asks the loop to save and stop.
            signal.raise_signal(signal.SIGINT)  # Stops it at once.

    monkeypatch.setattr(summaries, "write_scalars", two_ctrl_c_at_step_2)
    workdir = str(tmp_path / "run")
    with pytest.raises(Interrupted) as error:
        training.train(_tiny(tiny_data, workdir, steps=3, image_every=100))
    latest = os.path.join(workdir, "ckpt-1")
    assert "interrupted again at step 2 without saving" in str(error.value)
    assert f"the latest complete checkpoint is {latest}" in str(error.value)
    assert tf.train.latest_checkpoint(workdir) == latest


def test_a_save_stopped_part_way_leaves_no_partial_files(tmp_path, monkeypatch):
    from pix2pix_tf.training import distribute

    checkpoint = tf.train.Checkpoint(value=tf.Variable(tf.zeros([1000])))
    workdir = str(tmp_path)
    manager = distribute.WorkerCheckpointManager(checkpoint, workdir, 3)
    assert manager.save(checkpoint_number=1) == os.path.join(workdir, "ckpt-1")
    write = checkpoint._write  # What CheckpointManager.save calls.

    def write_then_interrupt(prefix, options=None):
        # The files are written, then Ctrl-C lands before the manager records them
        # in the state file (its callback in `options`).
        write(prefix)
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "_write", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        manager.save(checkpoint_number=2)
    assert sorted(os.listdir(workdir)) == [
        "checkpoint",
        "ckpt-1.data-00000-of-00001",
        "ckpt-1.index",
    ]
    assert manager.latest_checkpoint == os.path.join(workdir, "ckpt-1")


def test_full_disk_while_writing_a_sample_grid_names_it_and_leaves_no_file(tmp_path, monkeypatch):
    from PIL import Image

    from pix2pix_tf.training import actions

    def full_disk(image, path, *args, **kwargs):
        with open(path, "wb") as file:
            file.write(b"partial")
        raise OSError(28, "No space left on device", path)

    class Checkpoints:
        latest = "run/ckpt-4"

    monkeypatch.setattr(Image.Image, "save", full_disk)
    images = tf.zeros([1, 8, 8, 3])
    samples = actions.SamplesAction(
        1,
        lambda inputs, training: inputs,
        (images, images),
        tf.summary.create_noop_writer(),
        str(tmp_path),
        Checkpoints(),
        chief=True,
    )
    with pytest.raises(run_dir.SaveError) as error:
        samples(5)
    grid = os.path.join(str(tmp_path), "samples", "step_000005.png")
    assert f"could not write sample grid {grid} (no space left on device)" in str(error.value)
    assert "the latest complete checkpoint is run/ckpt-4" in str(error.value)
    assert os.listdir(tmp_path / "samples") == [] and samples.latest is None
