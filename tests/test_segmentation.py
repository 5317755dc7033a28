"""The FCN-score segmenter: shapes, learning, and the missing-model message."""

import numpy as np
import pytest
import tensorflow as tf

from pix2pix_tf import cityscapes_labels, segmentation


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
    config = _tiny_config(learning_rate=1e-2, steps=150)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(8, 32, 32)).astype(np.int32)
    labels[:, :4] = cityscapes_labels.IGNORE  # Ignored pixels take no part in the loss.
    colours = np.array([[-1, -1, -1], [1, -1, -1], [-1, 1, 1]], np.float32)
    photos = colours[np.where(labels == cityscapes_labels.IGNORE, 0, labels)]
    dataset = tf.data.Dataset.from_tensor_slices((photos, labels)).batch(4).repeat()
    model = segmentation.build_segmenter(config)
    segmentation.compile_segmenter(model, config)
    first = model.evaluate(photos, labels, verbose=0, return_dict=True)
    model.fit(dataset, epochs=1, steps_per_epoch=150, verbose=0)
    last = model.evaluate(photos, labels, verbose=0, return_dict=True)
    assert last["loss"] < first["loss"] / 4
    assert last["mean_iou"] > 0.9


def test_missing_segmenter_names_the_training_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m pix2pix_tf.segmentation"):
        segmentation.load_segmenter("cityscapes", 128, root=str(tmp_path))
