"""Resuming a run: which settings may change, and whether the data is the same.

`check_resume` compares the flags of a rerun with the run directory's config.json
(the fields in RESUMABLE_FIELDS may change, the others shape the models, the
optimisation or the input stream), `check_prepared_data` the prepared data with
what the run was trained on (PREPARED_DATA_FILE), so that a resumed run either
continues the same run or says by name what differs.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf import files

# What the run trains on: the prepared dataset's name, version and train split
# (examples, bytes, shard lengths), written at each start; resuming compares.
PREPARED_DATA_FILE = "prepared_data.json"

# Fields that may differ when a run is resumed: how long and how it runs, how
# often it reports, where data is read from, and the learning rate and its
# schedule (rebuilt from the config on resume, while the optimizer's iteration
# count carries on), so that a run stopped by a NaN loss can be resumed with a
# lower --learning_rate. Every other field shapes the models, the optimisation
# or the input stream, and must match config.json.
SCHEDULE_FIELDS = ("learning_rate", "lr_decay_fraction")
RESUMABLE_FIELDS = frozenset(
    SCHEDULE_FIELDS
    # How long it runs, and how often it reports, evaluates and saves.
    + ("workdir", "steps", "epochs", "log_every", "image_every", "checkpoint_every")
    + ("keep_checkpoints", "eval_every", "eval_examples", "eval_fid", "num_sample_images")
    + ("keep_best",)
    # How it computes, not what (and global_local's stage, see models/generators.py).
    + ("precision", "deterministic", "strategy", "tpu", "sync_batch_norm", "jit_compile")
    + ("steps_per_execution", "matmul_convs", "fused_norm", "remat", "stage")
    # Where the data is read from (prepared_data.json says whether it is the same data).
    + ("data_dir", "manual_dir", "source_dir", "accept_new_data")
)


# Fields train.py fills in from the prepared data when the flags leave them None;
# runs of earlier versions saved None, which meant 8.
BIT_FIELDS = ("input_bits", "output_bits")


def _flatten(config: config_lib.Config) -> dict:
    values = config.to_dict()
    return {name: values[section][name] for name, section in config_lib.FIELD_SECTION.items()}


def incompatible_fields(saved: config_lib.Config, current: config_lib.Config) -> dict:
    """Returns {field: (saved, current)} for fields a resumed run may not change.

    A bit depth the current config leaves None (not resolved from the data yet)
    matches any saved one; a saved None is 8.
    """
    old, new = _flatten(saved), _flatten(current)
    for name in BIT_FIELDS:
        old[name] = old[name] or 8
        new[name] = old[name] if new[name] is None else new[name]
    return {
        name: (old[name], new[name])
        for name in config_lib.FIELD_SECTION
        if name not in RESUMABLE_FIELDS and old[name] != new[name]
    }


def schedule_changes(saved: config_lib.Config, current: config_lib.Config) -> str | None:
    """One line naming the learning-rate settings a resumed run changes, or None."""
    old, new = _flatten(saved), _flatten(current)
    changed = [
        f"--{name} {new[name]!r} (saved {old[name]!r})"
        for name in SCHEDULE_FIELDS
        if old[name] != new[name]
    ]
    if not changed:
        return None
    return (
        f"Resuming with {', '.join(changed)}: the learning-rate schedule is rebuilt from "
        f"them and continues from the optimizer's saved step."
    )


def check_resume(workdir: str, config: config_lib.Config) -> config_lib.Config | None:
    """Raises ValueError if `workdir` holds a checkpoint `config` cannot continue.

    Returns the saved config, or None when there is no checkpoint to resume
    (a run stopped before its first checkpoint lost nothing and starts over).
    """
    path = os.path.join(workdir, config_lib.CONFIG_FILE)
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


def _describe_data(record: dict) -> str:
    train = record["train"]
    return (
        f"{record['builder']} with {train['examples']} train examples ({train['bytes']} "
        f"bytes in {len(train['shard_lengths'])} shards)"
    )


def check_prepared_data(workdir: str, current: dict, *, accept: bool) -> str | None:
    """Compares the prepared data a resumed run reads with what it was trained on.

    `current` is data/pipeline.py's `identity` of the data now. Raises ValueError
    naming both when they differ, unless `accept` (--accept_new_data); then returns
    a warning line. Runs of earlier versions recorded nothing: None.
    """
    path = os.path.join(workdir, PREPARED_DATA_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as file:
        saved = json.load(file)
    if saved == current:
        return None
    difference = (
        f"--workdir {workdir} was trained on {_describe_data(saved)}, but the prepared data "
        f"now holds {_describe_data(current)}"
    )
    if accept:
        return (
            f"Warning: {difference}; resuming on it (--accept_new_data), at the step's "
            f"position in the new data."
        )
    raise ValueError(
        f"{difference}. Point --data_dir (or --source_dir) at the data it was trained on, "
        f"pass --accept_new_data to go on with this data, or pass a new --workdir."
    )


def save_prepared_data(workdir: str, current: dict) -> None:
    """Records what the run trains on (PREPARED_DATA_FILE), for the next resume's check."""
    files.write_atomic(
        os.path.join(workdir, PREPARED_DATA_FILE), json.dumps(current, indent=2) + "\n"
    )
