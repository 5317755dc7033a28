"""The run directory: its layout, checkpoints, and restoring the generator.

A run directory (`--workdir`, by default `checkpoints/<dataset>[-<preset>]`)
holds `config.json` (configs.CONFIG_FILE), the checkpoints `ckpt-<step>.*` written by
`tf.train.CheckpointManager` (CHECKPOINT_NAME) with the layout of
training/checkpoints.py's `make_checkpoint`, TensorBoard events under `train/` and
`eval/`, and sample grids under `samples/` (grids.py). Export, predict and
evaluation read a run through `restore_generator` and `checkpoint_step`; train.py
writes and resumes it (what may change on resume, and prepared_data.json: resume.py).
This package sits below training, serving and evaluation: export, predict and evaluate
read a run without the trainer.

This module also owns what can go wrong with that directory: a --workdir that
is a file or not writable, a damaged (truncated or corrupt) checkpoint, which
resuming skips for the newest intact one, and a save that fails part-way (a
full disk), whose partial files it removes.
"""

from __future__ import annotations

import contextlib
import gc
import glob
import os
import re
import shutil
import tempfile

import keras
import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf import files
from pix2pix_tf.configs.choices import EXPORT_PRECISIONS, check_choice
from pix2pix_tf.models import build_generator
from pix2pix_tf.runs import best

CHECKPOINT_NAME = "ckpt"
# The key of the step counter in a training checkpoint (training/checkpoints.py).
STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"
# The input iterator's state in checkpoints of earlier versions.
ITERATOR_PREFIX = "iterator/"


def check_workdir(workdir: str) -> None:
    """Creates `workdir` if needed; raises ValueError if it is not a writable directory.

    Checked before anything is prepared or built, so that a --workdir that is a
    file or on a read-only filesystem fails at once with one line.
    """
    if "://" in workdir:  # Remote filesystems (gs://) are checked by their first write.
        return
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ValueError(
            f"--workdir {workdir} is a file, not a directory; pass a directory (it is "
            f"created if missing)."
        )
    try:
        os.makedirs(workdir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=workdir, prefix=".write_check"):
            pass
    except OSError as error:
        raise ValueError(
            f"--workdir {workdir} is not a writable directory ({error.strerror or error}); "
            f"pass a directory this process can write to."
        ) from None


class SaveError(RuntimeError):
    """Writing a checkpoint (or another file of the run) failed; nothing partial was kept."""


def listed_checkpoints(directory: str) -> list[str]:
    """The checkpoints the CheckpointManager's state file lists, oldest first."""
    try:
        state = tf.train.get_checkpoint_state(directory)
    except (OSError, ValueError, tf.errors.OpError):  # An unreadable state file.
        state = None
    if state is None:
        return []
    paths = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path and state.model_checkpoint_path not in paths:
        paths.append(state.model_checkpoint_path)
    return [path if os.path.isabs(path) else os.path.join(directory, path) for path in paths]


def checkpoint_damage(path: str) -> str | None:
    """Why the checkpoint `path` cannot be read in full (truncated, corrupt, missing), or None.

    Reads every tensor, so each one's length and checksum is verified.
    """
    try:
        reader = tf.train.load_checkpoint(path)
        with tf.device("/cpu:0"):
            for name, dtype in reader.get_variable_to_dtype_map().items():
                # RestoreV2 reads any dtype, the input iterator's variant state included.
                tf.raw_ops.RestoreV2(
                    prefix=path, tensor_names=[name], shape_and_slices=[""], dtypes=[dtype]
                )
    except (IndexError, ValueError, OSError, tf.errors.OpError) as error:
        return _first_line(error)
    return None


def remove_partial_save(directory: str, checkpoint_name: str, number: int) -> None:
    """Removes what a failed save of `<checkpoint_name>-<number>` left in `directory`.

    The temporary directory of the save goes, and so do its final files unless
    the state file lists that checkpoint (then an earlier save completed it).
    """
    prefix = os.path.join(directory, f"{checkpoint_name}-{number}")
    shutil.rmtree(prefix + "_temp", ignore_errors=True)
    leftovers = glob.glob(os.path.join(directory, "checkpoint.tmp*"))
    if prefix not in listed_checkpoints(directory):
        leftovers += glob.glob(glob.escape(prefix) + ".*")
    for path in leftovers:
        try:
            os.remove(path)
        except OSError:
            pass


def save_error(workdir: str, what: str, error: BaseException, latest: str | None) -> SaveError:
    """The one-line error of a failed write into the run directory."""
    reason = getattr(error, "strerror", None) or _first_line(error)
    if files.is_disk_full(error) or isinstance(error, tf.errors.ResourceExhaustedError):
        reason = "no space left on device"
    resume = (
        f"the latest complete checkpoint is {latest}; free space in {workdir} and rerun the "
        f"same command to resume from it"
        if latest
        else f"no checkpoint was complete yet; free space in {workdir} and rerun the same "
        f"command to start again"
    )
    return SaveError(f"--workdir {workdir}: could not write {what} ({reason}); {resume}.")


def checkpoint_step(path: str) -> int:
    """The training step at which the checkpoint `path` was saved."""
    return int(tf.train.load_variable(path, STEP_KEY))


def saved_input_iterator(path: str) -> bool:
    """Whether the checkpoint `path` holds a tf.data iterator's state (earlier versions
    saved one, whose state names the data files by their absolute paths)."""
    try:
        return any(name.startswith(ITERATOR_PREFIX) for name, _ in tf.train.list_variables(path))
    except (ValueError, tf.errors.OpError):  # Damaged: restore() says so.
        return False


def restore(checkpoint: tf.train.Checkpoint, path: str, log=print) -> None:
    """Restores a training checkpoint, failing clearly if it does not fit or is damaged.

    The input iterator an earlier version saved is left unread, with one warning
    (through `log`): the input continues at the position the step implies.
    """
    try:
        status = checkpoint.restore(path)
        status.assert_existing_objects_matched()
        if saved_input_iterator(path):
            status.expect_partial()
            log(
                f"Warning: {path} was written by an earlier version, which saved the input "
                f"iterator (tied to where the data was then); it is not used: the input "
                f"continues at the position step {checkpoint_step(path)} implies, in this "
                f"version's order, so the batches from here on differ from an "
                f"uninterrupted run's."
            )
    except (AssertionError, IndexError, ValueError, tf.errors.OpError) as error:
        damage = checkpoint_damage(path)
        if damage is not None:
            raise DamagedCheckpointError(path, damage) from None
        raise ValueError(
            f"{path}: cannot resume from this checkpoint ({_first_line(error)}). It was "
            f"written by a different version or configuration; pass a new --workdir to "
            f"start a fresh run."
        ) from None


class DamagedCheckpointError(ValueError):
    """A checkpoint's files are truncated, corrupt or missing."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path} is damaged (truncated or corrupt: {reason})")
        self.path, self.reason = path, reason


def restore_newest_intact(checkpoint: tf.train.Checkpoint, workdir: str, log=print) -> str | None:
    """Restores the newest intact checkpoint the state file of `workdir` lists.

    A damaged checkpoint is skipped with a warning (through `log`) naming it and
    why, and the next older one is tried. Returns the restored path, or None when
    there is no checkpoint. Raises ValueError when every listed one is damaged,
    or when one does not fit this configuration.
    """
    paths = listed_checkpoints(workdir)
    damaged = []
    for path in reversed(paths):
        try:
            restore(checkpoint, path, log=log)
        except DamagedCheckpointError as error:
            damaged.append(error)
            log(
                f"Warning: skipping checkpoint {error.path}: damaged (truncated or corrupt: "
                f"{error.reason}); trying the one before it."
            )
            continue
        return path
    if damaged:
        listed = "; ".join(str(error) for error in damaged)
        raise ValueError(
            f"--workdir {workdir}: no intact checkpoint to resume from ({listed}). Move "
            f"them away or pass a new --workdir to start a fresh run."
        )
    return None


def _first_line(error: BaseException) -> str:
    """The first line of an error's message, without TensorFlow's op decorations."""
    text = error.message if isinstance(error, tf.errors.OpError) else str(error)
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\]", "", text.strip())
    lines = text.strip().splitlines()
    return lines[0] if lines else type(error).__name__


def is_run_directory(path: str) -> bool:
    """Whether `path` holds a run's config.json (written by train.py)."""
    return tf.io.gfile.exists(os.path.join(path, config_lib.CONFIG_FILE))


def restore_generator(
    workdir: str, checkpoint: str | None = None, precision: str = "float32"
) -> tuple[config_lib.Config, keras.Model, str]:
    """Rebuilds the generator of a run from its config.json and restores its weights.

    `checkpoint` (e.g. `<workdir>/ckpt-2000`, or "best": the one --keep_best kept,
    runs/best.py) defaults to the latest one. The
    generator computes in `precision` (one of EXPORT_PRECISIONS); its variables
    are float32 under every policy. Returns (config, generator, checkpoint path).
    Raises FileNotFoundError for a missing run or checkpoint and ValueError for a
    damaged one or one that does not fit config.json, each a one-line message.
    """
    check_choice("precision", precision, EXPORT_PRECISIONS)
    if not os.path.isdir(workdir):
        raise FileNotFoundError(
            f"{workdir}: no such run directory; train one with `python train.py` first."
        )
    config = config_lib.Config.from_json(os.path.join(workdir, config_lib.CONFIG_FILE))
    checkpoint = best.resolve_checkpoint(workdir, checkpoint)  # "best": best.json's.
    if checkpoint is None:
        checkpoint = tf.train.latest_checkpoint(workdir)
        if checkpoint is None:
            raise FileNotFoundError(
                f"{workdir}: no checkpoint ({CHECKPOINT_NAME}-<step>.index) here yet; "
                f"train longer or pass the run directory that holds one."
            )
    elif not tf.io.gfile.exists(checkpoint + ".index"):
        raise FileNotFoundError(f"{checkpoint}: no such checkpoint ({checkpoint}.index).")
    generator = build_generator(**config_lib.generator_arguments(config), dtype_policy=precision)
    try:
        with _quiet_restore_warnings():
            status = tf.train.Checkpoint(generator=generator).restore(checkpoint)
            status.expect_partial()
            status.assert_existing_objects_matched()
    except (AssertionError, IndexError, ValueError, tf.errors.OpError) as error:
        damage = checkpoint_damage(checkpoint)
        if damage is not None:
            raise ValueError(_damaged_message(workdir, checkpoint, damage)) from None
        raise ValueError(
            f"{checkpoint}: does not hold the generator described by "
            f"{os.path.join(workdir, config_lib.CONFIG_FILE)} ({_first_line(error)})."
        ) from None
    return config, generator, checkpoint


@contextlib.contextmanager
def _quiet_restore_warnings():
    """A failed restore logs every unused checkpoint value when its state is
    garbage-collected; the error raised says what matters, so that list is muted."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        gc.collect()
        logger.setLevel(level)


def _damaged_message(workdir: str, path: str, damage: str) -> str:
    intact = [
        other
        for other in reversed(listed_checkpoints(workdir))
        if other != path and checkpoint_damage(other) is None
    ]
    if intact:
        choices = " or ".join(f"--checkpoint {other}" for other in intact)
        advice = f"pass an older intact one: {choices}"
    else:
        advice = f"{workdir} holds no intact checkpoint; train again to write one"
    return f"checkpoint {path} is damaged (truncated or corrupt: {damage}); {advice}."
