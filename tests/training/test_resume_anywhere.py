"""A run resumes wherever its data lives: moved, another --data_dir, re-prepared, per host.

A checkpoint holds the step, not a tf.data iterator (whose state named the shards by
absolute path), and the input is rebuilt at the step's position, so each resumed run
here must end with the weights of an uninterrupted one. When the prepared data is not
what the run was trained on, resuming says so by name.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.runs import resume
from pix2pix_tf.training import trainer as training

STEPS, STOP_AT = 4, 2


def _config(data_dir, workdir, **overrides):
    values = dict(preset="tiny", batch_size=2, image_every=100, checkpoint_every=STOP_AT)
    return config_lib.build_config(
        **{**values, **overrides}, data_dir=str(data_dir), workdir=str(workdir)
    )


def _variables(path):
    reader = tf.train.load_checkpoint(path)
    return {
        name: reader.get_tensor(name)
        for name, dtype in reader.get_variable_to_dtype_map().items()
        # save_counter counts saves, which an interrupted run makes more of.
        if (dtype.is_floating or dtype.is_integer) and not name.startswith("save_counter")
    }


def _assert_same_weights(path, expected_path):
    actual, expected = _variables(path), _variables(expected_path)
    assert sorted(actual) == sorted(expected)
    assert not any(name.startswith(run_dir.ITERATOR_PREFIX) for name in actual)
    for name, value in expected.items():
        np.testing.assert_allclose(actual[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted run of STEPS steps, and the data it read."""
    root = tmp_path_factory.mktemp("straight")
    result = training.train(_config(root / "tfrecords", root / "run", steps=STEPS))
    assert result["step"] == STEPS
    return result["checkpoint"]


def _interrupted(tmp_path):
    """A run stopped at STOP_AT (its checkpoint there), with its data beside it."""
    base = tmp_path / "A"
    result = training.train(_config(base / "tfrecords", base / "run", steps=STOP_AT))
    assert result["step"] == STOP_AT
    return base


def test_moved_run_and_data_resume_exactly(straight, tmp_path):
    base = _interrupted(tmp_path)
    moved = tmp_path / "B"
    shutil.move(str(base), moved)
    result = training.train(_config(moved / "tfrecords", moved / "run", steps=STEPS))
    assert result["step"] == STEPS
    _assert_same_weights(result["checkpoint"], straight)


def test_another_data_dir_resumes_exactly(straight, tmp_path):
    base = _interrupted(tmp_path)
    other = tmp_path / "copy" / "tfrecords"
    shutil.copytree(base / "tfrecords", other)
    result = training.train(_config(other, base / "run", steps=STEPS))
    _assert_same_weights(result["checkpoint"], straight)


def test_data_deleted_and_prepared_again_resumes_exactly(straight, tmp_path):
    base = _interrupted(tmp_path)
    shutil.rmtree(base / "tfrecords")
    elsewhere = tmp_path / "fresh" / "tfrecords"  # train.py prepares it again.
    result = training.train(_config(elsewhere, base / "run", steps=STEPS))
    assert os.path.isdir(elsewhere)
    _assert_same_weights(result["checkpoint"], straight)


def test_other_prepared_data_is_named_and_resumes_only_when_accepted(tmp_path, capsys):
    base = _interrupted(tmp_path)
    record = json.loads((base / "run" / resume.PREPARED_DATA_FILE).read_text())
    assert record["train"]["examples"] == 16 and len(record["train"]["shard_lengths"]) == 4
    assert str(tmp_path) not in json.dumps(record)  # Where it lives is not part of it.
    # Another copy whose train split differs (as if prepared from other sources).
    other = tmp_path / "other" / "tfrecords"
    shutil.copytree(base / "tfrecords", other)
    [info_path] = other.glob("*/*/*/dataset_info.json")
    info = json.loads(info_path.read_text())
    [train] = [split for split in info["splits"] if split["name"] == "train"]
    train["numBytes"] = str(int(train["numBytes"]) + 1)
    info_path.write_text(json.dumps(info))
    config = _config(other, base / "run", steps=STEPS)
    with pytest.raises(ValueError) as error:
        training.train(config)
    message = str(error.value)
    assert "was trained on synthetic_streets 1.1.0 with 16 train examples" in message
    assert "but the prepared data now holds" in message and "--accept_new_data" in message
    assert run_dir.checkpoint_step(tf.train.latest_checkpoint(str(base / "run"))) == STOP_AT
    capsys.readouterr()
    result = training.train(config.replace(accept_new_data=True))
    assert result["step"] == STEPS
    assert "resuming on it (--accept_new_data)" in capsys.readouterr().err
    # The run now records the data it went on with.
    saved = json.loads((base / "run" / resume.PREPARED_DATA_FILE).read_text())
    assert saved["train"]["bytes"] == int(train["numBytes"])
