"""evaluate.py end to end on the tiny synthetic dataset, FCN-score included."""

import json
import os
import shutil

import keras
import pytest
import tensorflow as tf

import evaluate as evaluate_script
from pix2pix_tf import configs as config_lib
from pix2pix_tf import models
from pix2pix_tf.data import prepare
from pix2pix_tf.evaluation import evaluator as evaluation
from pix2pix_tf.evaluation import reports
from pix2pix_tf.evaluation import segmenter as segmentation


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory with config.json and one checkpoint of an untrained tiny generator."""
    root = tmp_path_factory.mktemp("evaluation")
    config = config_lib.build_config(
        preset="tiny",
        data_dir=str(root / "tfrecords"),
        workdir=str(root / "run"),
    )
    keras.utils.set_random_seed(0)
    generator = models.build_generator(**config_lib.generator_arguments(config))
    config.save(config.train.workdir)
    prepare.prepare(config.data)  # Each test may run alone, or first on its worker.
    step = tf.Variable(7, dtype=tf.int64)
    tf.train.Checkpoint(step=step, generator=generator).save(
        os.path.join(config.train.workdir, "ckpt")
    )
    return config


@pytest.fixture(scope="module")
def segmenter_root(run_dir, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("segmenters"))
    seg_config = segmentation.SegmenterConfig(
        dataset="synthetic",
        image_size=run_dir.data.image_size,
        filters=4,
        depth=2,
        batch_size=4,
        steps=20,
        steps_per_epoch=10,
    )
    segmentation.train_segmenter(seg_config, root, run_dir.data)
    return root


def test_evaluation_scores_the_whole_split(run_dir, segmenter_root):
    options = evaluation.EvalOptions(batch_size=3, fcn="on", segmenter_root=segmenter_root)
    results, output_dir = evaluation.evaluate(run_dir.train.workdir, options)
    assert results["examples"] == run_dir.data.synthetic_val_examples  # 4, in batches 3 + 1.
    assert results["step"] == 7 and results["split"] == "val"
    assert 0.0 < results["l1"] < 2.0 and 0.0 < results["psnr"] < 60.0
    for row in ("real", "generated"):
        for name in ("per_pixel_accuracy", "per_class_accuracy", "class_iou"):
            assert 0.0 <= results[f"fcn_{row}_{name}"] <= 1.0
    with open(os.path.join(output_dir, "metrics.json")) as file:
        assert json.load(file)["examples"] == results["examples"]
    page = open(os.path.join(output_dir, "index.html")).read()
    assert page.count("<tr><th>") >= results["examples"]
    assert len(os.listdir(os.path.join(output_dir, "images"))) == 3 * results["examples"]
    assert os.path.exists(os.path.join(output_dir, "grid.png"))
    series = reports.read_scalars(os.path.join(run_dir.train.workdir, "eval"))
    # At native size (the default): a series of its own beside the periodic `val/`.
    assert "val_native/fcn_generated_class_iou" in series and "val_native/psnr" in series
    assert not any(name.startswith("val/") for name in series)
    report = evaluation.format_report(results)
    assert "ground truth" in report and "this model" in report


def test_fcn_on_without_a_segmenter_names_the_command(run_dir, tmp_path):
    options = evaluation.EvalOptions(fcn="on", segmenter_root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="python -m pix2pix_tf.segmentation"):
        evaluation.evaluate(run_dir.train.workdir, options)


def test_fcn_auto_without_a_segmenter_scores_images_only(run_dir, tmp_path):
    options = evaluation.EvalOptions(fcn="auto", segmenter_root=str(tmp_path), max_examples=2)
    results, _ = evaluation.evaluate(run_dir.train.workdir, options)
    assert results["examples"] == 2
    assert not any(name.startswith("fcn_") for name in results)


@pytest.mark.parametrize("damage", ["truncated weights", "empty weights", "missing config"])
def test_a_damaged_segmenter_is_named_with_the_command(
    run_dir, segmenter_root, damage, tmp_path, capsys
):
    root = str(tmp_path / "segmenters")
    shutil.copytree(segmenter_root, root)
    directory = segmentation.segmenter_dir("synthetic", run_dir.data.image_size, root)
    weights = os.path.join(directory, segmentation.WEIGHTS_FILE)
    if damage == "missing config":
        damaged = os.path.join(directory, segmentation.CONFIG_FILE)
        os.remove(damaged)
    else:
        damaged = weights
        with open(weights, "r+b") as file:
            file.truncate(os.path.getsize(weights) // 2 if damage == "truncated weights" else 0)
    args = ["--workdir", run_dir.train.workdir, "--segmenter_root", root, "--max_examples", "2"]
    assert evaluate_script.main([*args, "--fcn", "on", "--fid", "off"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert error.startswith(f"evaluate.py: error: {damaged}: the FCN-score's segmenter is damaged")
    assert f"delete {directory} and train it again with: python -m pix2pix_tf.segmentation" in error
    # auto scores the images and says why the FCN-score is missing.
    options = evaluation.EvalOptions(fcn="auto", segmenter_root=root, max_examples=2, fid="off")
    results, _ = evaluation.evaluate(run_dir.train.workdir, options)
    assert not any(name.startswith("fcn_") for name in results)
    assert f"FCN-score skipped: {damaged}: the FCN-score's segmenter is damaged" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    "flag,value,message",
    [
        ("--max_examples", "0", "--max_examples must be >= 1 (or left out for the whole split)"),
        ("--max_examples", "-1", "--max_examples must be >= 1"),
        ("--batch_size", "0", "--batch_size must be >= 1, got 0."),
        ("--gallery_size", "-1", "--gallery_size must be >= 0, got -1."),
    ],
)
def test_bad_counts_are_bad_flags(run_dir, flag, value, message, capsys):
    """Exit 2 before anything is read (--max_examples 0 said the split was empty, -1
    scored the whole split)."""
    assert evaluate_script.main(["--workdir", run_dir.train.workdir, flag, value]) == 2
    error = capsys.readouterr().err
    assert error == f"evaluate.py: error: {message}" + error.split(message, 1)[1]
    assert error.count("\n") == 1


def test_missing_workdir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        evaluation.evaluate(str(tmp_path / "nothing"))


def test_cli_prints_the_report_and_a_clear_error(run_dir, tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    command = [sys.executable, os.path.join(root, "evaluate.py")]
    ok = subprocess.run(
        [*command, "--workdir", run_dir.train.workdir, "--fcn", "off", "--max_examples", "2"],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert ok.returncode == 0, ok.stderr
    assert "PSNR" in ok.stdout and "index.html" in ok.stdout
    missing = subprocess.run(
        [*command, "--workdir", str(tmp_path / "nothing")], capture_output=True, text=True
    )
    assert missing.returncode == 1  # A runtime error; 2 is kept for bad flags.
    assert "no such run directory" in missing.stderr


def test_training_evaluates_periodically_into_tensorboard(tmp_path, run_dir):
    from pix2pix_tf.training import trainer as training

    config = config_lib.build_config(
        preset="tiny",
        data_dir=run_dir.data.data_dir,  # The tiny synthetic data prepared above.
        workdir=str(tmp_path / "run"),
        steps=3,
        eval_every=2,
        eval_examples=2,
    )
    training.train(config, periodic_evaluator=evaluation.periodic_evaluator)
    series = reports.read_scalars(os.path.join(config.train.workdir, "eval"))
    steps, values = series["val/psnr"]
    assert sorted(steps.tolist()) == [2, 3]  # Every 2 steps, and at the end.
    assert all(0.0 < value < 60.0 for value in values)
    assert "val/l1" in series and "val/ssim" in series


def test_periodic_evaluation_traces_its_scoring_function_once(run_dir, tmp_path, monkeypatch):
    scorers = []

    def recording_make_scorer(*args, **kwargs):
        scorers.append(make_scorer(*args, **kwargs))
        return scorers[-1]

    make_scorer = evaluation.make_scorer
    monkeypatch.setattr(evaluation, "make_scorer", recording_make_scorer)
    keras.utils.set_random_seed(0)
    generator = models.build_generator(**config_lib.generator_arguments(run_dir))
    config = run_dir.replace(eval_examples=4)
    writer = tf.summary.create_file_writer(str(tmp_path / "eval"))
    evaluate = evaluation.periodic_evaluator(
        config, generator, writer, dataset=prepare.prepare(config.data)
    )
    first = evaluate(1)
    traces = scorers[0].experimental_get_tracing_count()
    second = evaluate(2)
    # One scoring function for all evaluations, and no retracing after the first.
    assert len(scorers) == 1
    assert scorers[0].experimental_get_tracing_count() == traces
    assert first["examples"] == second["examples"] == 4
    assert first["psnr"] == pytest.approx(second["psnr"])
