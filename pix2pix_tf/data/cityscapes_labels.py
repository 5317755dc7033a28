"""The Cityscapes colour palette, and label maps recovered from colour images.

The Berkeley pix2pix archive stores Cityscapes label maps as JPEG-compressed colour
images, so the colours are only approximately the palette's. Each pixel is assigned
the nearest palette colour; pixels nearest to a colour outside the 19 evaluation
classes (or far from every colour) are marked IGNORE, as the paper's FCN-score does
with the void classes.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

IGNORE = 255

# The 19 evaluation classes (train ids 0..18) and their colours, from the official
# Cityscapes label definitions.
CLASSES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("road", (128, 64, 128)),
    ("sidewalk", (244, 35, 232)),
    ("building", (70, 70, 70)),
    ("wall", (102, 102, 156)),
    ("fence", (190, 153, 153)),
    ("pole", (153, 153, 153)),
    ("traffic light", (250, 170, 30)),
    ("traffic sign", (220, 220, 0)),
    ("vegetation", (107, 142, 35)),
    ("terrain", (152, 251, 152)),
    ("sky", (70, 130, 180)),
    ("person", (220, 20, 60)),
    ("rider", (255, 0, 0)),
    ("car", (0, 0, 142)),
    ("truck", (0, 0, 70)),
    ("bus", (0, 60, 100)),
    ("train", (0, 80, 100)),
    ("motorcycle", (0, 0, 230)),
    ("bicycle", (119, 11, 32)),
)
CLASS_NAMES = tuple(name for name, _ in CLASSES)
NUM_CLASSES = len(CLASSES)

# Colours of the classes Cityscapes does not evaluate (unlabelled, dynamic, ground,
# parking, rail track, guard rail, bridge, tunnel, caravan, trailer). They are part
# of the palette so that, say, parking is not mistaken for the nearest evaluated class.
VOID_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (111, 74, 0),
    (81, 0, 81),
    (250, 170, 160),
    (230, 150, 140),
    (180, 165, 180),
    (150, 100, 100),
    (150, 120, 90),
    (0, 0, 90),
    (0, 0, 110),
)

# A pixel farther than this (Euclidean, in 0..255 RGB) from every palette colour
# is left unlabelled; JPEG noise on flat regions stays well inside it.
MAX_COLOR_DISTANCE = 60.0

_PALETTE = np.array([color for _, color in CLASSES] + list(VOID_COLORS), np.float32)
_PALETTE_IDS = np.array(list(range(NUM_CLASSES)) + [IGNORE] * len(VOID_COLORS), np.int32)


def colors_to_labels(images: tf.Tensor) -> tf.Tensor:
    """Maps colour label maps to train ids.

    Args:
      images: [..., H, W, 3] uint8 in 0..255, or float in [-1, 1].

    Returns:
      int32 [..., H, W] with values 0..NUM_CLASSES-1 or IGNORE.
    """
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.uint8:
        rgb = tf.cast(images, tf.float32)
    else:
        rgb = (tf.cast(images, tf.float32) + 1.0) * 127.5
    palette = tf.constant(_PALETTE)
    # Squared distance to every palette colour: [..., H, W, K].
    distances = tf.reduce_sum(tf.square(rgb[..., None, :] - palette), axis=-1)
    nearest = tf.argmin(distances, axis=-1, output_type=tf.int32)
    labels = tf.gather(tf.constant(_PALETTE_IDS), nearest)
    too_far = tf.reduce_min(distances, axis=-1) > MAX_COLOR_DISTANCE**2
    return tf.where(too_far, tf.constant(IGNORE, tf.int32), labels)
