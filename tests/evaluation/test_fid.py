"""FID and KID: the math against known answers, and evaluate.py with a stand-in for Inception.

No test needs the real InceptionV3 weights: a small random-weight network with the
same interface ([N, 299, 299, 3] in [-1, 1] -> [N, d]) stands in for it.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf

import evaluate as evaluate_cli
from pix2pix_tf import configs as config_lib
from pix2pix_tf import models
from pix2pix_tf.data import prepare
from pix2pix_tf.evaluation import evaluator as evaluation
from pix2pix_tf.evaluation import fid, reports

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stand_in_inception(dims: int = 16, seed: int = 0) -> keras.Model:
    """Random weights, Inception's interface: [N, 299, 299, 3] -> [N, dims]."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((*fid.INCEPTION_SIZE, 3))
    x = keras.layers.Conv2D(8, 5, strides=4, activation="relu")(inputs)
    x = keras.layers.Conv2D(dims, 3, strides=4, activation="relu")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="stand_in")


def scipy_fid(features1: np.ndarray, features2: np.ndarray) -> float:
    """The textbook formula with scipy.linalg.sqrtm, straight from the features."""
    mean1, mean2 = features1.mean(axis=0), features2.mean(axis=0)
    cov1, cov2 = np.cov(features1, rowvar=False), np.cov(features2, rowvar=False)
    root = scipy.linalg.sqrtm(cov1 @ cov2).real
    return float(np.sum((mean1 - mean2) ** 2) + np.trace(cov1 + cov2 - 2.0 * root))


def direct_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2, one kernel value at a time (O(n^2) loops)."""
    m, dims = x.shape

    def kernel(a, b):
        return (float(np.dot(a, b)) / dims + 1.0) ** 3

    within_x = sum(kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    within_y = sum(kernel(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    cross = sum(kernel(x[i], y[j]) for i in range(m) for j in range(m))
    return (within_x + within_y) / (m * (m - 1)) - 2.0 * cross / (m * m)


def stats_of(features: np.ndarray, batch: int = 7, **kwargs) -> fid.FeatureStats:
    stats = fid.FeatureStats(**kwargs)
    for start in range(0, len(features), batch):
        stats.add(features[start : start + batch])
    return stats


# -- the math ---------------------------------------------------------------------


def test_identical_feature_sets_give_zero():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(1000, 32)) * rng.uniform(0.5, 2.0, size=32) + 3.0
    same = fid.compare(stats_of(features), stats_of(features))
    assert same["fid"] == pytest.approx(0.0, abs=1e-9)
    shifted = fid.compare(stats_of(features), stats_of(features + 0.5))
    assert shifted["fid"] == pytest.approx(32 * 0.25, rel=1e-9)  # Only the means differ.
    # The unbiased estimator of identical samples is O(1/n) below 0, not exactly 0.
    assert abs(same["kid"]) < 0.01 * shifted["kid"] and same["kid_std"] < 1e-9


def test_gaussians_with_a_closed_form():
    rng = np.random.default_rng(1)
    dims = 20
    mean1, mean2 = rng.normal(size=dims), rng.normal(size=dims)
    var1, var2 = rng.uniform(0.1, 3.0, size=dims), rng.uniform(0.1, 3.0, size=dims)
    expected = np.sum((mean1 - mean2) ** 2) + np.sum(var1 + var2 - 2.0 * np.sqrt(var1 * var2))
    value = fid.frechet_distance(mean1, np.diag(var1), mean2, np.diag(var2))
    assert value == pytest.approx(expected, rel=1e-10)
    # The same Gaussians in a rotated basis: full covariances, the same distance.
    rotation, _ = np.linalg.qr(rng.normal(size=(dims, dims)))
    rotated = fid.frechet_distance(
        rotation @ mean1,
        rotation @ np.diag(var1) @ rotation.T,
        rotation @ mean2,
        rotation @ np.diag(var2) @ rotation.T,
    )
    assert rotated == pytest.approx(expected, rel=1e-9)


def test_fid_agrees_with_scipy_sqrtm():
    rng = np.random.default_rng(2)
    mixing = rng.normal(size=(48, 48))
    real = rng.normal(size=(400, 48)) @ mixing
    generated = rng.normal(size=(300, 48)) @ (mixing + 0.3 * rng.normal(size=(48, 48))) + 0.4
    value = fid.compare(stats_of(generated), stats_of(real))["fid"]
    assert value == pytest.approx(scipy_fid(generated, real), rel=1e-8)
    assert value > 1.0


def test_kid_agrees_with_a_direct_computation():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 6))
    y = rng.normal(size=(30, 6)) * 1.5 + 0.3
    assert fid.polynomial_mmd2(x, y) == pytest.approx(direct_mmd2(x, y), rel=1e-10)
    # Subsets as large as the sets: every subset is the whole set, the std is 0.
    mean, std = fid.kernel_inception_distance(x, y, subsets=3, subset_size=100)
    assert mean == pytest.approx(direct_mmd2(x, y), rel=1e-10) and std == pytest.approx(0.0)
    # Smaller subsets: the mean and std of the direct values on the same draws.
    draws = np.random.default_rng(5)
    values = []
    for _ in range(4):
        subset_x = x[draws.choice(30, 10, replace=False)]
        values.append(direct_mmd2(subset_x, y[draws.choice(30, 10, replace=False)]))
    mean, std = fid.kernel_inception_distance(x, y, subsets=4, subset_size=10, seed=5)
    assert mean == pytest.approx(np.mean(values), rel=1e-10)
    assert std == pytest.approx(np.std(values), rel=1e-10) and std > 0


def test_streaming_statistics_equal_the_one_shot_ones():
    rng = np.random.default_rng(4)
    # Large means: the shifted sums keep the covariance's digits.
    features = rng.normal(size=(250, 24)) + 1e4
    stats = stats_of(features, batch=9)
    assert stats.count == 250
    np.testing.assert_allclose(stats.mean(), features.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance(), np.cov(features, rowvar=False), atol=1e-9)
    np.testing.assert_array_equal(stats.kept(), features.astype(np.float32))
    one_shot = fid.compare(stats_of(features, batch=250), stats_of(features[::-1], batch=250))
    streamed = fid.compare(stats, stats_of(features[::-1], batch=13))
    assert streamed == pytest.approx(one_shot)
    # Over the cap: a uniform sample of max_kept distinct rows of the set.
    sampled = stats_of(features, batch=9, max_kept=50).kept()
    assert sampled.shape == (50, 24)
    rows = {row.tobytes() for row in features.astype(np.float32)}
    assert len({row.tobytes() for row in sampled}) == 50 and all(
        r.tobytes() in rows for r in sampled
    )


def test_features_of_batches_equal_those_of_the_whole_set():
    extractor = fid.InceptionFeatures(stand_in_inception())
    images = tf.random.stateless_uniform((6, 40, 56, 3), seed=(1, 2), minval=-1.0, maxval=1.0)
    targets = tf.random.stateless_uniform((6, 40, 56, 3), seed=(3, 4), minval=-1.0, maxval=1.0)
    whole, batched = extractor.distance(), extractor.distance()
    whole.update(images, targets)
    for start in (0, 2, 5):
        end = {0: 2, 2: 5, 5: 6}[start]
        batched.update(images[start:end], targets[start:end])
    assert batched.result() == pytest.approx(whole.result(), rel=1e-5, abs=1e-7)
    # Gray images are Inception's RGB with three equal channels.
    gray = extractor.features(images[..., :1])
    np.testing.assert_allclose(gray, extractor.features(tf.repeat(images[..., :1], 3, -1)))


# -- the weights ----------------------------------------------------------------------


def test_missing_cache_offline_is_one_line_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    cached = os.path.join(str(tmp_path / "keras"), "models", fid.WEIGHTS_FILE)
    with pytest.raises(fid.InceptionWeightsError) as error:
        fid.load_inception("on")
    message = str(error.value)
    assert "\n" not in message and cached in message and fid.WEIGHTS_URL in message
    assert "--fid off" in message
    # auto: one printed line, no model.
    assert fid.load_inception("auto") is None


@pytest.mark.slow
def test_inception_weights_from_a_path_load_into_inception_v3(tmp_path):
    keras.utils.set_random_seed(0)
    path = str(tmp_path / "inception.weights.h5")
    fid.build_inception(None).save_weights(path)
    model = fid.load_inception("on", path)
    assert model.output_shape == (None, 2048)
    reference = fid.build_inception(path)
    for mine, theirs in zip(model.weights[:5], reference.weights[:5], strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    bad = tmp_path / "bad.h5"
    bad.write_text("not weights")
    with pytest.raises(ValueError, match=r"bad\.h5: not InceptionV3 weights"):
        fid.load_inception("auto", str(bad))


# -- evaluate.py and the periodic evaluation ------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory with config.json and one checkpoint of an untrained tiny generator."""
    root = tmp_path_factory.mktemp("fid")
    config = config_lib.build_config(
        preset="tiny", data_dir=str(root / "tfrecords"), workdir=str(root / "run")
    )
    keras.utils.set_random_seed(0)
    generator = models.build_generator(**config_lib.generator_arguments(config))
    config.save(config.train.workdir)
    prepare.prepare(config.data)
    tf.train.Checkpoint(step=tf.Variable(7, dtype=tf.int64), generator=generator).save(
        os.path.join(config.train.workdir, "ckpt")
    )
    return config


def test_evaluate_writes_fid_and_kid_to_metrics_json(run_dir):
    options = evaluation.EvalOptions(fcn="off", fid="on", batch_size=3)
    results, output_dir = evaluation.evaluate(
        run_dir.train.workdir, options, feature_model=stand_in_inception()
    )
    with open(os.path.join(output_dir, "metrics.json")) as file:
        written = json.load(file)
    assert written["fid"] == pytest.approx(results["fid"]) and results["fid"] > 0
    assert np.isfinite(written["kid"]) and written["kid_std"] >= 0
    assert written["kid_subset_size"] == results["examples"] == 4
    series = reports.read_scalars(os.path.join(run_dir.train.workdir, "eval"))
    assert "val_native/fid" in series and "val_native/kid" in series
    assert "FID" in evaluation.format_report(results)
    # --fid off: no Inception, no FID/KID, the other metrics as before.
    off, _ = evaluation.evaluate(
        run_dir.train.workdir,
        evaluation.EvalOptions(fcn="off", fid="off"),
        feature_model=stand_in_inception(),
    )
    assert not {"fid", "kid", "kid_std"} & set(off) and off["l1"] == pytest.approx(results["l1"])
    assert "FID" not in evaluation.format_report(off)


@pytest.mark.slow
def test_cli_offline_error_is_one_line_and_auto_skips(run_dir, tmp_path, monkeypatch, capsys):
    missing = str(tmp_path / "nowhere" / fid.WEIGHTS_FILE)
    command = [sys.executable, os.path.join(REPO_ROOT, "evaluate.py")]
    run = ["--workdir", run_dir.train.workdir, "--fcn", "off", "--max_examples", "2"]
    failed = subprocess.run(
        [*command, *run, "--fid", "on", "--inception_weights", missing],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert failed.returncode == 1
    # One line of ours, no traceback (TensorFlow's own start-up logs aside).
    lines = [line for line in failed.stderr.splitlines() if line.startswith("evaluate.py:")]
    assert len(lines) == 1 and "Traceback" not in failed.stderr, failed.stderr
    assert missing in lines[0] and "--fid off" in lines[0]
    # auto without weights in the Keras cache: one line, then the other metrics.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert evaluate_cli.main([*run, "--fid", "auto"]) == 0
    output = capsys.readouterr().out
    skipped = [line for line in output.splitlines() if line.startswith("FID/KID skipped")]
    assert len(skipped) == 1 and fid.WEIGHTS_FILE in skipped[0]
    assert "PSNR" in output and "KID" not in output.replace(skipped[0], "")


def test_periodic_evaluation_reports_fid_to_tensorboard(run_dir, tmp_path):
    keras.utils.set_random_seed(0)
    generator = models.build_generator(**config_lib.generator_arguments(run_dir))
    config = run_dir.replace(eval_examples=4, eval_fid="on")
    writer = tf.summary.create_file_writer(str(tmp_path / "eval"))
    evaluate = evaluation.periodic_evaluator(
        config,
        generator,
        writer,
        dataset=prepare.prepare(config.data),
        feature_model=stand_in_inception(),
    )
    first, second = evaluate(1), evaluate(2)
    assert first["fid"] > 0 and second["fid"] == pytest.approx(first["fid"])
    series = reports.read_scalars(str(tmp_path / "eval"))
    assert sorted(series["val/fid"][0].tolist()) == [1, 2] and "val/kid_std" in series
    off = evaluation.periodic_evaluator(
        run_dir.replace(eval_examples=2, eval_fid="off"),
        generator,
        writer,
        dataset=prepare.prepare(config.data),
        feature_model=stand_in_inception(),
    )(3)
    assert "fid" not in off


def test_eval_fid_is_a_resumable_choice():
    from pix2pix_tf.runs import resume

    assert config_lib.build_config(preset="tiny").train.eval_fid == "auto"
    assert "eval_fid" in resume.RESUMABLE_FIELDS
    with pytest.raises(ValueError, match="--eval_fid"):
        config_lib.build_config(preset="tiny", eval_fid="sometimes")
