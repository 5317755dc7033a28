"""Run directories and exports written by an earlier version keep working.

tests/fixtures/ holds what commit e4fba66 (before the reliability and restructure
work) wrote for `python train.py --preset tiny --steps 2 --checkpoint_every 2 --ngf 4
--ndf 4` followed by `python export.py`: the run's config.json, `checkpoint` file and
ckpt-2, and export version 1. Today's code must resume the run, export it to the same
model, evaluate it, and serve the old export.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT
from export_fixtures import encoded_image

from pix2pix_tf import configs as config_lib
from pix2pix_tf.evaluation import evaluator as evaluation
from pix2pix_tf.serving import export as export_lib
from pix2pix_tf.serving import predict as predict_lib
from pix2pix_tf.training import trainer as training

FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures")
OLD_RUN = os.path.join(FIXTURES, "run_e4fba66")
OLD_EXPORT = os.path.join(FIXTURES, "export_e4fba66", "1")


@pytest.fixture
def old_run(tmp_path):
    """The old run directory, moved to another machine: its data_dir is rewritten."""
    workdir = tmp_path / "run"
    shutil.copytree(OLD_RUN, workdir)
    path = workdir / "config.json"
    values = json.loads(path.read_text())
    values["data"]["data_dir"] = str(tmp_path / "tfrecords")
    path.write_text(json.dumps(values))
    return str(workdir)


def _generate(model_dir: str, images: np.ndarray) -> np.ndarray:
    loaded = tf.saved_model.load(model_dir)
    return loaded.signatures["generate"](images=tf.constant(images))["images"].numpy()


def test_old_run_exports_the_same_model_as_the_old_export(old_run, tmp_path):
    path = export_lib.export(old_run, str(tmp_path / "exported"), warmup=False)
    images = tf.random.stateless_uniform([2, 64, 64, 3], seed=[3, 4], minval=-1.0).numpy()
    np.testing.assert_allclose(_generate(path, images), _generate(OLD_EXPORT, images), atol=1e-5)
    record = json.load(open(os.path.join(path, export_lib.METADATA_FILE)))
    assert record["image_size"] == 64 and record["config"]["model"]["ngf"] == 4


def test_old_export_still_serves_bytes_through_predict(tmp_path):
    model = predict_lib.load_model(os.path.dirname(OLD_EXPORT))
    [png] = model.serve([encoded_image(48, 80, seed=5)])
    decoded = tf.io.decode_png(png).numpy()
    assert decoded.shape == (48, 80, 3) and decoded.std() > 0


def test_old_run_evaluates(old_run):
    options = evaluation.EvalOptions(fcn="off", max_examples=4, gallery_size=2)
    metrics, output_dir = evaluation.evaluate(old_run, options)
    assert metrics["step"] == 2 and metrics["checkpoint"] == "ckpt-2"
    assert 0.0 < metrics["l1"] < 2.0 and np.isfinite(metrics["psnr"])
    assert os.path.exists(os.path.join(output_dir, "metrics.json"))


def test_old_run_resumes(old_run, tmp_path, capsys):
    """Its checkpoint's input iterator names shards under /tmp/fx/tfr, not here."""
    config = config_lib.build_config(
        preset="tiny",
        ngf=4,
        ndf=4,
        steps=3,
        checkpoint_every=2,
        workdir=old_run,
        data_dir=str(tmp_path / "tfrecords"),
    )
    capsys.readouterr()
    result = training.train(config)
    assert result["step"] == 3 and result["interrupted"] is None
    output = capsys.readouterr().err
    warnings = [line for line in output.splitlines() if "earlier version" in line]
    assert len(warnings) == 1 and "the position step 2 implies" in warnings[0], output
    assert result["checkpoint"] == os.path.join(old_run, "ckpt-3")
    reader = tf.train.load_checkpoint(result["checkpoint"])
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 3
