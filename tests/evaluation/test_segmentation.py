"""The FCN-score segmenter: shapes, learning, and the missing-model message."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pix2pix_tf.cli import segmentation as segmentation_cli
from pix2pix_tf.data import cityscapes_labels
from pix2pix_tf.evaluation import segmenter as segmentation


def _tiny_config(**overrides):
    values = dict(image_size=32, filters=4, depth=2, batch_size=4, steps=40, steps_per_epoch=20)
    values.update(overrides)
    return segmentation.SegmenterConfig(**values)


def test_segmenter_output_shape():
    model = segmentation.build_segmenter(_tiny_config())
    logits = model(tf.zeros([2, 32, 32, 3]))
    assert logits.shape == (2, 32, 32, cityscapes_labels.NUM_CLASSES)


def test_segmenter_learns_colour_to_class_mapping():
    # Photos whose colour determines the class: the segmenter must fit it quickly.
    keras.utils.set_random_seed(0)
    config = _tiny_config(learning_rate=1e-2, steps=150)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(8, 32, 32)).astype(np.int32)
    labels[:, :4] = cityscapes_labels.IGNORE  # Ignored pixels take no part in the loss.
    colours = np.array([[-1, -1, -1], [1, -1, -1], [-1, 1, 1]], np.float32)
    photos = colours[np.where(labels == cityscapes_labels.IGNORE, 0, labels)]
    dataset = tf.data.Dataset.from_tensor_slices((photos, labels)).batch(4).repeat()
    model = segmentation.build_segmenter(config)
    segmentation.compile_segmenter(model, config)
    before = model.evaluate(photos, labels, verbose=0, return_dict=True)
    history = model.fit(dataset, epochs=3, steps_per_epoch=50, shuffle=False, verbose=0).history
    after = model.evaluate(photos, labels, verbose=0, return_dict=True)
    # Training-mode loss falls fast; inference (moving batch-norm statistics, still
    # warming up after 150 steps) is clearly better than the untrained model.
    assert history["loss"][-1] < history["loss"][0] / 4
    assert after["loss"] < before["loss"] / 2
    assert after["mean_iou"] > 0.4 > before["mean_iou"]


def test_missing_segmenter_names_the_training_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m pix2pix_tf.segmentation"):
        segmentation.load_segmenter("cityscapes", 128, root=str(tmp_path))


def test_non_square_segmenter_output_shape():
    model = segmentation.build_segmenter(_tiny_config(image_size="32x64"))
    logits = model(tf.zeros([2, 32, 64, 3]))
    assert logits.shape == (2, 32, 64, cityscapes_labels.NUM_CLASSES)


def test_segmenter_size_not_divisible_by_its_depth_is_a_clear_error():
    with pytest.raises(ValueError, match="--image_size 30x64"):
        segmentation.build_segmenter(_tiny_config(image_size="30x64"))


def test_segmenter_cli_refuses_a_bad_size_as_a_flag_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        segmentation_cli.main(["--image_size", "64y128"])
    assert exit_info.value.code == 2
    assert "--image_size" in capsys.readouterr().err
