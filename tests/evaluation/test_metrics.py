"""Metrics and the Cityscapes palette."""

import numpy as np
import pytest
import tensorflow as tf

from pix2pix_tf.data import cityscapes_labels
from pix2pix_tf.evaluation import metrics
from pix2pix_tf.models import losses


def test_palette_colours_map_to_their_ids_even_with_jpeg_noise():
    colors = np.array([color for _, color in cityscapes_labels.CLASSES], np.uint8)
    image = np.repeat(colors[None], 4, axis=0)  # [4, 19, 3]
    noise = np.random.default_rng(0).integers(
        -8, 9, size=image.shape
    )  # Closest colours are 20 apart.
    noisy = np.clip(image.astype(np.int32) + noise, 0, 255).astype(np.uint8)
    labels = cityscapes_labels.colors_to_labels(noisy).numpy()
    np.testing.assert_array_equal(labels, np.tile(np.arange(19), (4, 1)))


def test_void_and_far_colours_are_ignored():
    image = np.array([[[0, 0, 0], [250, 170, 160], [255, 255, 255]]], np.uint8)
    labels = cityscapes_labels.colors_to_labels(image).numpy()
    assert (labels == cityscapes_labels.IGNORE).all()


def test_float_images_in_minus_one_one_are_accepted():
    road = np.array([[[128, 64, 128]]], np.float32) / 127.5 - 1.0
    assert cityscapes_labels.colors_to_labels(road).numpy()[0, 0] == 0


def test_every_evaluation_class_colour_maps_to_its_train_id():
    colors = np.array([[color for _, color in cityscapes_labels.CLASSES]], np.uint8)
    labels = cityscapes_labels.colors_to_labels(colors).numpy()
    np.testing.assert_array_equal(labels, np.arange(19, dtype=np.int32).reshape(1, 19))


def test_segmentation_scores_by_hand():
    # Ground truth rows, predictions columns; class 2 never occurs.
    confusion = np.array([[3, 1, 0], [2, 4, 0], [0, 0, 0]])
    scores = metrics.segmentation_scores(confusion)
    assert scores.per_pixel_accuracy == pytest.approx(7 / 10)
    assert scores.per_class_accuracy == pytest.approx((3 / 4 + 4 / 6) / 2)
    assert scores.class_iou == pytest.approx((3 / 6 + 4 / 7) / 2)
    assert np.isnan(scores.class_ious[2])


def test_confusion_matrix_ignores_out_of_range_labels():
    labels = tf.constant([[0, 1, 255, 2]])
    predictions = tf.constant([[0, 2, 1, 2]])
    confusion = metrics.confusion_matrix(labels, predictions, num_classes=3).numpy()
    assert confusion.sum() == 3
    assert confusion[0, 0] == 1 and confusion[1, 2] == 1 and confusion[2, 2] == 1


def test_image_metrics_on_identical_and_different_images():
    images = tf.random.stateless_uniform([2, 32, 32, 3], seed=[1, 2], minval=-1, maxval=1)
    assert np.allclose(losses.l1_loss(images, images), 0.0)
    assert np.allclose(metrics.ssim(images, images), 1.0)
    assert np.all(np.isinf(metrics.psnr(images, images)) | (metrics.psnr(images, images) > 90))
    shifted = tf.clip_by_value(images + 0.2, -1, 1)
    assert np.all(losses.l1_loss(images, shifted) > 0.05)
    assert np.all(metrics.ssim(images, shifted) < 1.0)
    assert np.all(metrics.psnr(images, shifted) < 30.0)
