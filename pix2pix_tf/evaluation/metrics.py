"""Image-quality and segmentation metrics, accumulated over a whole split.

PSNR and SSIM per image here, on float images (1 or 3 channels; 16-bit targets
keep their 16 bits, nothing is rounded to 8 bits first); the L1 distance is the
training loss's own per-image L1 (models/losses.py `l1_loss`), so the two always
agree.

The FCN-score follows the paper's evaluation code: a confusion matrix over the
evaluation classes, then per-pixel accuracy, mean per-class accuracy and mean class
IoU (classes absent from both prediction and ground truth do not count).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf


def psnr(generated: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """PSNR in dB per image on the [0, 1] scale: [N]."""
    return tf.image.psnr(_to_unit(generated), _to_unit(target), max_val=1.0)


def ssim(generated: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """SSIM per image on the [0, 1] scale, TensorFlow's 11x11 Gaussian window: [N]."""
    return tf.image.ssim(_to_unit(generated), _to_unit(target), max_val=1.0)


def _to_unit(images: tf.Tensor) -> tf.Tensor:
    return tf.clip_by_value((tf.cast(images, tf.float32) + 1.0) / 2.0, 0.0, 1.0)


def confusion_matrix(labels: tf.Tensor, predictions: tf.Tensor, num_classes: int) -> tf.Tensor:
    """int64 [num_classes, num_classes], rows = ground truth; labels outside 0..C-1 ignored."""
    labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
    predictions = tf.reshape(tf.cast(predictions, tf.int64), [-1])
    valid = (labels >= 0) & (labels < num_classes)
    return tf.math.confusion_matrix(
        tf.boolean_mask(labels, valid),
        tf.boolean_mask(predictions, valid),
        num_classes=num_classes,
        dtype=tf.int64,
    )


@dataclasses.dataclass(frozen=True)
class SegmentationScores:
    per_pixel_accuracy: float
    per_class_accuracy: float
    class_iou: float
    # Per-class values; NaN where the class never occurs.
    class_accuracies: tuple[float, ...]
    class_ious: tuple[float, ...]


def segmentation_scores(confusion: np.ndarray) -> SegmentationScores:
    """Per-pixel accuracy, mean class accuracy and mean IoU from a confusion matrix."""
    confusion = np.asarray(confusion, np.float64)
    true_positives = np.diag(confusion)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_pixel = true_positives.sum() / confusion.sum()
        class_accuracy = true_positives / confusion.sum(axis=1)
        union = confusion.sum(axis=1) + confusion.sum(axis=0) - true_positives
        iou = true_positives / union
    # A class that occurs nowhere has 0/0 = NaN and is left out of the means.
    return SegmentationScores(
        per_pixel_accuracy=float(per_pixel),
        per_class_accuracy=float(np.nanmean(class_accuracy)),
        class_iou=float(np.nanmean(iou)),
        class_accuracies=tuple(float(value) for value in class_accuracy),
        class_ious=tuple(float(value) for value in iou),
    )
