"""EXIF orientation of encoded JPEGs, read and applied with TensorFlow ops only.

A JPEG whose Exif APP1 segment carries an Orientation tag (0x0112) other than 1 is
turned upright after decoding, as Pillow's `ImageOps.exif_transpose` does. The tag is
read in the graph from the first `EXIF_SEARCH_BYTES` bytes of the file (the
"Exif\\0\\0" header, the TIFF byte order II or MM, IFD0's entries). Orientation in a
PNG eXIf chunk and in other formats is ignored (TensorFlow's decoders ignore it too).
"""

from __future__ import annotations

import tensorflow as tf

# The Exif header of a JPEG sits in its first segments; IFD0 and its Orientation entry
# come right after it. 64 KiB is the largest possible APP1 segment.
EXIF_SEARCH_BYTES = 65536
# IFD0 entries looked at for the Orientation tag (they are sorted by tag and 0x0112
# comes early; cameras write 10-20 entries).
EXIF_MAX_ENTRIES = 64
ORIENTATION_TAG = 0x0112


def exif_orientation(encoded: tf.Tensor) -> tf.Tensor:
    """The EXIF Orientation (int32 1-8) of an encoded JPEG; 1 when absent or unreadable.

    Reads the APP1 "Exif\\0\\0" segment within the first EXIF_SEARCH_BYTES bytes: the
    TIFF header's byte order (II or MM) and IFD0 offset, then IFD0's first
    EXIF_MAX_ENTRIES entries (tag u16, type u16, count u32, value) for tag 0x0112.
    Every read is bounds-checked: malformed data gives 1, never an error.
    """
    head = tf.strings.substr(encoded, 0, EXIF_SEARCH_BYTES)
    length = tf.strings.length(head)
    # Zero padding keeps every clipped read inside the tensor, even for empty inputs.
    data = tf.concat([tf.io.decode_raw(head, tf.uint8), tf.zeros([16], tf.uint8)], axis=0)
    parts = tf.strings.split(head, sep="Exif\x00\x00", maxsplit=1)
    found = tf.equal(tf.size(parts), 2)
    # "Exif\0\0" starts after the APP1 marker (FF E1) and the segment length.
    header = tf.strings.length(parts[0])
    tiff = header + 6

    def byte(index):
        index = tf.clip_by_value(index, 0, length + 15)
        return tf.cast(tf.gather(data, index), tf.int32)

    is_jpeg = tf.logical_and(tf.equal(byte(0), 0xFF), tf.equal(byte(1), 0xD8))
    is_app1 = tf.logical_and(tf.equal(byte(header - 4), 0xFF), tf.equal(byte(header - 3), 0xE1))
    little = tf.logical_and(tf.equal(byte(tiff), 0x49), tf.equal(byte(tiff + 1), 0x49))
    big = tf.logical_and(tf.equal(byte(tiff), 0x4D), tf.equal(byte(tiff + 1), 0x4D))

    def u16(index):
        first, second = byte(index), byte(index + 1)
        return tf.where(little, first + second * 256, first * 256 + second)

    def u32(index):
        first, second, third, fourth = (tf.cast(byte(index + k), tf.int64) for k in range(4))
        value = tf.where(
            little,
            first + second * 256 + third * 65536 + fourth * 16777216,
            first * 16777216 + second * 65536 + third * 256 + fourth,
        )
        # Offsets beyond the searched bytes are rejected below; this keeps them in int32.
        return tf.cast(tf.minimum(value, EXIF_SEARCH_BYTES * 2), tf.int32)

    ifd = tiff + u32(tiff + 4)
    entry_count = u16(ifd)
    entries = ifd + 2 + 12 * tf.range(EXIF_MAX_ENTRIES)
    tags = u16(entries)
    values = u16(entries + 8)
    matches = (
        tf.equal(tags, ORIENTATION_TAG)
        & (tf.range(EXIF_MAX_ENTRIES) < entry_count)
        & (entries + 10 <= length)
        & (values >= 1)
        & (values <= 8)
    )
    orientation = tf.reduce_max(tf.where(matches, values, 0))
    valid = found & is_jpeg & is_app1 & (little | big) & (orientation > 0) & (ifd < length)
    return tf.where(valid, orientation, 1)


def orient(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """Turns [H, W, C] upright for an EXIF orientation 1-8, as ImageOps.exif_transpose."""
    branches = [
        lambda: image,  # 1: upright.
        lambda: tf.image.flip_left_right(image),  # 2: mirrored.
        lambda: tf.image.rot90(image, 2),  # 3: upside down.
        lambda: tf.image.flip_up_down(image),  # 4: mirrored upside down.
        lambda: tf.image.transpose(image),  # 5: mirrored, turned.
        lambda: tf.image.rot90(image, 3),  # 6: turned 90 degrees clockwise to view.
        lambda: tf.image.rot90(tf.image.transpose(image), 2),  # 7: transverse.
        lambda: tf.image.rot90(image, 1),  # 8: turned 90 degrees anticlockwise to view.
    ]
    return tf.switch_case(tf.clip_by_value(orientation - 1, 0, 7), branches)
