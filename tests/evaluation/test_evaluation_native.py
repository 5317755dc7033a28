"""evaluate.py at native size, and the FCN-score of non-square runs."""

import json
import os

import data_factory
import keras
import numpy as np
import pipeline_helpers
import pytest
import tensorflow as tf
from PIL import Image

import evaluate as evaluate_cli
from pix2pix_tf import configs as config_lib
from pix2pix_tf import models
from pix2pix_tf.data import prepare
from pix2pix_tf.evaluation import evaluator as evaluation
from pix2pix_tf.evaluation import reports
from pix2pix_tf.evaluation import segmenter as segmentation

# Validation pairs of two sizes, neither a multiple of the tiny U-Net's 2^4.
VAL_SIZES = ((50, 70), (50, 70), (45, 60))


def _save_run(config):
    """config.json and one checkpoint (step 3) of an untrained generator."""
    keras.utils.set_random_seed(0)
    generator = models.build_generator(**config_lib.generator_arguments(config))
    config.save(config.train.workdir)
    prepare.prepare(config.data)
    tf.train.Checkpoint(step=tf.Variable(3, dtype=tf.int64), generator=generator).save(
        os.path.join(config.train.workdir, "ckpt")
    )
    return generator


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A tiny 32x32 run on a folder dataset whose val pairs have their own sizes."""
    root = tmp_path_factory.mktemp("native")
    for split, sizes in (("train", ((32, 32),) * 4), ("val", VAL_SIZES)):
        os.makedirs(root / "pairs" / split)
        for index, (height, width) in enumerate(sizes):
            pixels = data_factory.random_pixels(index, height, 2 * width)
            (root / "pairs" / split / f"{index}.png").write_bytes(
                data_factory.encode(pixels, "PNG")
            )
    config = config_lib.build_config(
        "folder",
        preset="tiny",
        image_size=32,
        source_dir=str(root / "pairs"),
        data_dir=str(root / "tfrecords"),
        workdir=str(root / "run"),
    )
    return config, _save_run(config)


def _native_l1(config, generator) -> float:
    """The mean per-image L1 of the reflect-padded, cropped generator output (numpy)."""
    copy = models.build_generator(
        **config_lib.generator_arguments(config), input_shape=(None, None, 3)
    )
    copy.set_weights(generator.get_weights())
    multiple = 2 ** config_lib.generator_arguments(config)["depth"]
    source = os.path.join(config.data.source_dir, "val")
    values = []
    for name in sorted(os.listdir(source)):
        pair = np.asarray(Image.open(os.path.join(source, name)).convert("RGB"), np.float32)
        pair = pair / 127.5 - 1.0
        half = pair.shape[1] // 2
        inputs, targets = pair[:, :half], pair[:, half:]  # AtoB
        height, width = inputs.shape[:2]
        padded = np.pad(
            inputs, [(0, -height % multiple), (0, -width % multiple), (0, 0)], mode="reflect"
        )
        generated = copy(padded[None], training=False).numpy()[0, :height, :width]
        values.append(np.mean(np.abs(generated - targets)))
    return float(np.mean(values))


def test_native_size_scores_and_writes_each_pair_at_its_own_size(folder_run):
    config, generator = folder_run
    options = evaluation.EvalOptions(batch_size=2, fcn="off")
    results, output_dir = evaluation.evaluate(config.train.workdir, options)
    assert results["examples"] == len(VAL_SIZES) and results["eval_size"] == "native"
    assert results["l1"] == pytest.approx(_native_l1(config, generator), rel=1e-5, abs=1e-6)
    with open(os.path.join(output_dir, "metrics.json")) as file:
        assert json.load(file)["eval_size"] == "native"
    images = os.path.join(output_dir, "images")
    sizes = sorted(Image.open(os.path.join(images, name)).size for name in os.listdir(images))
    # PIL sizes are (width, height): input, generated and target of each pair.
    assert sizes == sorted((width, height) for height, width in VAL_SIZES for _ in range(3))


def test_training_size_reproduces_the_resized_scores(folder_run):
    config, generator = folder_run
    evaluation.evaluate(config.train.workdir, evaluation.EvalOptions(fcn="off", max_examples=1))
    options = evaluation.EvalOptions(batch_size=2, fcn="off", eval_size="training")
    results, output_dir = evaluation.evaluate(config.train.workdir, options)
    assert results["eval_size"] == "training"
    dataset = pipeline_helpers.build(config.data, "val", training=False, batch_size=2)
    l1 = [
        np.mean(np.abs(generator(inputs, training=False).numpy() - targets.numpy()), axis=(1, 2, 3))
        for inputs, targets in dataset
    ]
    assert results["l1"] == pytest.approx(float(np.mean(np.concatenate(l1))), rel=1e-5)
    images = os.path.join(output_dir, "images")
    assert {Image.open(os.path.join(images, name)).size for name in os.listdir(images)} == {
        (32, 32)
    }
    series = reports.read_scalars(os.path.join(config.train.workdir, "eval"))
    assert "val/l1" in series and "val_native/l1" in series  # Each mode its own series.


def test_max_examples_at_native_size(folder_run):
    config, _ = folder_run
    options = evaluation.EvalOptions(batch_size=2, fcn="off", max_examples=2)
    results, _ = evaluation.evaluate(config.train.workdir, options)
    assert results["examples"] == 2


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory):
    """A tiny 64x128 run on the 2:1 synthetic streets, and a tiny 64x128 segmenter."""
    root = tmp_path_factory.mktemp("wide")
    config = config_lib.build_config(
        preset="tiny",
        image_size="64x128",
        data_dir=str(root / "tfrecords"),
        workdir=str(root / "run"),
    )
    generator = _save_run(config)
    segmenters = root / "checkpoints" / "segmenter"
    seg_config = segmentation.SegmenterConfig(
        dataset="synthetic",
        image_size="64x128",
        filters=4,
        depth=2,
        batch_size=4,
        steps=10,
        steps_per_epoch=10,
    )
    directory = segmentation.train_segmenter(seg_config, str(segmenters), config.data)
    assert os.path.basename(directory) == "synthetic-64x128"
    return config, generator, root


def test_non_square_run_gets_an_fcn_score_at_native_size(wide_run):
    config, _, root = wide_run
    options = evaluation.EvalOptions(
        fcn="on", segmenter_root=str(root / "checkpoints" / "segmenter"), max_examples=2
    )
    results, output_dir = evaluation.evaluate(config.train.workdir, options)
    for row in ("real", "generated"):
        assert 0.0 <= results[f"fcn_{row}_class_iou"] <= 1.0
    images = os.path.join(output_dir, "images")
    # The 2:1 synthetic streets are 256x512 per half: the gallery keeps that size.
    assert {Image.open(os.path.join(images, name)).size for name in os.listdir(images)} == {
        (512, 256)
    }


def test_non_square_periodic_evaluation_has_the_fcn_score(wide_run, monkeypatch, tmp_path):
    config, generator, root = wide_run
    monkeypatch.chdir(root)  # Where the default checkpoints/segmenter is.
    writer = tf.summary.create_file_writer(str(tmp_path / "eval"))
    evaluate = evaluation.periodic_evaluator(
        config.replace(eval_examples=2), generator, writer, dataset=prepare.prepare(config.data)
    )
    results = evaluate(1)
    assert results["eval_size"] == "training"
    assert 0.0 <= results["fcn_generated_per_pixel_accuracy"] <= 1.0


def test_fcn_on_without_a_non_square_segmenter_names_the_command(wide_run, tmp_path):
    config, _, _ = wide_run
    options = evaluation.EvalOptions(fcn="on", segmenter_root=str(tmp_path))
    with pytest.raises(
        FileNotFoundError, match="segmentation --dataset synthetic --image_size 64x128"
    ):
        evaluation.evaluate(config.train.workdir, options)


def test_square_segmenters_keep_their_folder(tmp_path):
    assert segmentation.segmenter_dir("cityscapes", 128, "r") == os.path.join("r", "cityscapes-128")
    assert segmentation.segmenter_dir("cityscapes", "128x128", "r") == os.path.join(
        "r", "cityscapes-128"
    )
    assert segmentation.segmenter_dir("cityscapes", "128x256", "r") == os.path.join(
        "r", "cityscapes-128x256"
    )


def test_tiled_native_evaluation(folder_run, capsys):
    """--tile: one tile covering each pair scores as the untiled native run; 32-pixel
    tiles (several per pair) score close to it; bad tiles are refused naming the flag."""
    config, _ = folder_run
    untiled, _ = evaluation.evaluate(
        config.train.workdir, evaluation.EvalOptions(batch_size=2, fcn="off")
    )
    covering = evaluation.EvalOptions(batch_size=2, fcn="off", tile="64x80", overlap=0)
    results, output_dir = evaluation.evaluate(config.train.workdir, covering)
    assert results["tile"] == "64x80" and results["examples"] == len(VAL_SIZES)
    assert results["l1"] == pytest.approx(untiled["l1"], rel=1e-5, abs=1e-6)
    several = evaluation.EvalOptions(batch_size=2, fcn="off", tile="32", overlap=16)
    results, _ = evaluation.evaluate(config.train.workdir, several)
    assert results["l1"] == pytest.approx(untiled["l1"], rel=0.05)
    with open(os.path.join(output_dir, "metrics.json")) as file:
        assert json.load(file)["overlap"] == 16
    series = reports.read_scalars(os.path.join(config.train.workdir, "eval"))
    assert "val_tiled/l1" in series
    with pytest.raises(ValueError, match="--tile"):
        small = evaluation.EvalOptions(fcn="off", tile="8", overlap=0)
        evaluation.evaluate(config.train.workdir, small)
    # From the command line, a tile the loaded generator cannot use is a flag error.
    argv = ["--workdir", config.train.workdir, "--fcn", "off", "--tile", "8", "--overlap", "0"]
    assert evaluate_cli.main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("evaluate.py: error: --tile 8x8"), error
    with pytest.raises(ValueError, match="--tile_statistics image"):
        image = evaluation.EvalOptions(fcn="off", tile="32", overlap=0, tile_statistics="image")
        evaluation.evaluate(config.train.workdir, image)  # batch norm: nothing per image
    with pytest.raises(ValueError, match="--tile needs --eval_size native"):
        evaluation.EvalOptions(tile="32", overlap=0, eval_size="training").validate()
    with pytest.raises(ValueError, match="--overlap"):
        evaluation.EvalOptions(tile="32", overlap=32).validate()
