"""Checkpoints of a training run, resume checks, and restoring the generator.

A run directory (`--workdir`, by default `checkpoints/<dataset>[-<preset>]`)
holds `config.json`, the checkpoints `ckpt-<step>.*` written by
`tf.train.CheckpointManager`, TensorBoard events under `train/` and `eval/`,
and sample grids under `samples/`.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from pix2pix_tf import config as config_lib

CONFIG_FILE = "config.json"
CHECKPOINT_NAME = "ckpt"

# Fields that may differ when a run is resumed: how long and how it runs, how
# often it reports, where data is read from. Every other field shapes the
# models, the optimisation or the input stream, and must match config.json.
RESUMABLE_FIELDS = frozenset(
    {
        "workdir",
        "steps",
        "epochs",
        "log_every",
        "image_every",
        "checkpoint_every",
        "keep_checkpoints",
        "eval_every",
        "eval_examples",
        "num_sample_images",
        "precision",
        "deterministic",
        "strategy",
        "tpu",
        "sync_batch_norm",
        "steps_per_execution",
        "jit_compile",
        "matmul_convs",
        "data_dir",
        "manual_dir",
    }
)


def _flatten(config: config_lib.Config) -> dict:
    values = config.to_dict()
    return {name: values[section][name] for name, section in config_lib.FIELD_SECTION.items()}


def incompatible_fields(saved: config_lib.Config, current: config_lib.Config) -> dict:
    """Returns {field: (saved, current)} for fields a resumed run may not change."""
    old, new = _flatten(saved), _flatten(current)
    return {
        name: (old[name], new[name])
        for name in config_lib.FIELD_SECTION
        if name not in RESUMABLE_FIELDS and old[name] != new[name]
    }


def check_resume(workdir: str, config: config_lib.Config) -> config_lib.Config | None:
    """Raises ValueError if `workdir` holds a checkpoint `config` cannot continue.

    Returns the saved config, or None when there is no checkpoint to resume
    (a run stopped before its first checkpoint lost nothing and starts over).
    """
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path) or tf.train.latest_checkpoint(workdir) is None:
        return None
    saved = config_lib.Config.from_json(path)
    differences = incompatible_fields(saved, config)
    if differences:
        listed = ", ".join(
            f"--{name} (saved {old!r}, now {new!r})" for name, (old, new) in differences.items()
        )
        raise ValueError(
            f"--workdir {workdir} holds a run with a different configuration: {listed}. "
            f"Rerun with the saved values to resume it, or pass a new --workdir to start "
            f"a fresh run."
        )
    return saved


def seed_states(model: keras.Model) -> list:
    """The random-seed state variables of a model's dropout layers.

    Keras 3 does not track seed generators as checkpoint dependencies; saving
    them makes a resumed run draw the same dropout masks as an uninterrupted one.
    """
    weights = {id(weight) for weight in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


def make_checkpoint(
    *, step, generator, discriminator, generator_optimizer, discriminator_optimizer, iterator
) -> tf.train.Checkpoint:
    """The training checkpoint: models, optimizers, step, input iterator and seeds.

    `iterator` is None for distributed strategies, whose input is re-seeded on
    resume instead (see distribute.py).
    """
    parts = dict(
        step=step,
        generator=generator,
        discriminator=discriminator,
        generator_optimizer=generator_optimizer,
        discriminator_optimizer=discriminator_optimizer,
        generator_seeds=seed_states(generator),
        discriminator_seeds=seed_states(discriminator),
    )
    if iterator is not None:
        parts["iterator"] = iterator
    return tf.train.Checkpoint(**parts)


def make_manager(checkpoint: tf.train.Checkpoint, workdir: str, keep: int):
    return tf.train.CheckpointManager(
        checkpoint, directory=workdir, max_to_keep=keep, checkpoint_name=CHECKPOINT_NAME
    )


def restore(checkpoint: tf.train.Checkpoint, path: str) -> None:
    """Restores a training checkpoint, failing clearly if it does not fit."""
    try:
        status = checkpoint.restore(path)
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise ValueError(
            f"{path}: cannot resume from this checkpoint ({_first_line(error)}). It was "
            f"written by a different version or configuration; pass a new --workdir to "
            f"start a fresh run."
        ) from None


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def restore_generator(
    workdir: str, checkpoint_path: str | None = None
) -> tuple[config_lib.Config, keras.Model]:
    """Rebuilds the generator of a run from its config.json and restores its weights.

    `checkpoint_path` (e.g. `<workdir>/ckpt-2000`) defaults to the latest one.
    Returns (config, generator); the generator is float32.
    """
    from pix2pix_tf.models import build_generator

    if not os.path.isdir(workdir):
        raise FileNotFoundError(
            f"{workdir}: no such run directory; train one with `python train.py` first."
        )
    config = config_lib.Config.from_json(os.path.join(workdir, CONFIG_FILE))
    if checkpoint_path is None:
        checkpoint_path = tf.train.latest_checkpoint(workdir)
        if checkpoint_path is None:
            raise FileNotFoundError(
                f"{workdir}: no checkpoint ({CHECKPOINT_NAME}-<step>.index) here yet; "
                f"train longer or pass the run directory that holds one."
            )
    elif not tf.io.gfile.exists(checkpoint_path + ".index"):
        raise FileNotFoundError(f"{checkpoint_path}: no such checkpoint ({checkpoint_path}.index).")
    generator = build_generator(config)
    try:
        status = tf.train.Checkpoint(generator=generator).restore(checkpoint_path)
        status.expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise ValueError(
            f"{checkpoint_path}: does not hold the generator described by "
            f"{os.path.join(workdir, CONFIG_FILE)} ({_first_line(error)})."
        ) from None
    return config, generator
