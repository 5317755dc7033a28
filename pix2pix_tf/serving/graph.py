"""The serving graph: a generator wrapped with in-graph decoding, resizing and encoding.

Two signatures, both stateless (they never update a variable):

    serving_default (alias serve_bytes)
        inputs:  image_bytes  tf.string [N]  encoded JPEG/PNG/BMP/GIF images of the
                 input domain, any size; grayscale and RGBA are converted to RGB.
        outputs: image_bytes  tf.string [N]  PNG-encoded generated images, each at the
                 size of its input (upright, see below).
    generate
        inputs:  images  float32 [N, S, S, 3]  in [-1, 1] (pixel / 127.5 - 1).
        outputs: images  float32 [N, S, S, 3]  in [-1, 1] (tanh); pixel = (x + 1) * 127.5.

S is the generator's image size. The module loads in plain TensorFlow with
`tf.saved_model.load`, without this project's code, and uses only TensorFlow ops
(no py_function), so TF Serving runs it as it is.

What the graph does with unusual requests:

- An empty batch (N = 0) returns an empty batch: string [0] or float32 [0, S, S, 3].
- Images that cannot be decoded fail the call with InvalidArgument naming the first of
  them by its position in the batch, counted from 0: `image_bytes[1] (22 bytes) is not a
  decodable JPEG, PNG, GIF or BMP image; 1 of 3 images in this request failed.` They
  are decoded in a tf.data pipeline over (position, bytes) that drops failures
  (`ignore_errors`), so the missing positions can be named by an in-graph Assert.
- `generate` checks its input's shape before the generator runs: `images must be
  [N, S, S, 3] float32 in [-1, 1], got [1, 64, 64, 3]`.
- EXIF orientation: a JPEG whose Exif APP1 segment carries an Orientation tag (0x0112)
  other than 1 is turned upright after decoding, as Pillow's `ImageOps.exif_transpose`
  does, and its output is generated and returned at the upright size. The tag is read
  in the graph from the first `EXIF_SEARCH_BYTES` bytes of the file (the "Exif\\0\\0"
  header, the TIFF byte order II or MM, IFD0's entries). Orientation in a PNG eXIf chunk
  and in other formats is ignored (TensorFlow's decoders ignore it too).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from pix2pix_tf.options import ServingOptions
from pix2pix_tf.serving import paper_mode as test_time

__all__ = ["ServingFunctions", "ServingOptions"]

BYTES_SIGNATURE = "serve_bytes"
FLOAT_SIGNATURE = "generate"
DEFAULT_SIGNATURE = "serving_default"
# The Exif header of a JPEG sits in its first segments; IFD0 and its Orientation entry
# come right after it. 64 KiB is the largest possible APP1 segment.
EXIF_SEARCH_BYTES = 65536
# IFD0 entries looked at for the Orientation tag (they are sorted by tag and 0x0112
# comes early; cameras write 10-20 entries).
EXIF_MAX_ENTRIES = 64
ORIENTATION_TAG = 0x0112


def generator_image_size(generator: keras.Model) -> int:
    """The square input size S of a generator built for [None, S, S, 3]."""
    shape = tuple(generator.inputs[0].shape)
    if len(shape) != 4 or shape[1] is None or shape[1] != shape[2] or shape[3] != 3:
        raise ValueError(f"expected a generator with input [None, S, S, 3], got {shape}.")
    return int(shape[1])


class ServingFunctions:
    """The signature functions of an exported generator, also usable in-process.

    `serve_bytes(image_bytes)` and `generate(images)` return dicts of tensors, the
    signatures' outputs. Nothing here creates or assigns variables.
    """

    def __init__(self, generator: keras.Model, options: ServingOptions | None = None):
        options = options or ServingOptions()
        options.validate()
        self.generator = generator
        self.options = options
        self.image_size = generator_image_size(generator)
        if options.test_time_mode == "paper":
            self.network = test_time.paper_test_time_model(generator, seed=options.seed)
        else:
            self.network = generator

    # -- the float endpoint ---------------------------------------------------

    def generate(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """float32 [N, S, S, 3] in [-1, 1] -> {"images": float32 [N, S, S, 3] in [-1, 1]}."""
        size = self.image_size
        shape = tf.shape(images)
        # Padded to rank 4 so that a wrong rank compares unequal instead of failing.
        padded = tf.concat([shape, tf.fill([4], -1)], axis=0)[:4]
        expected = tf.constant([size, size, 3], tf.int32)
        fits = tf.logical_and(
            tf.equal(tf.size(shape), 4), tf.reduce_all(tf.equal(padded[1:], expected))
        )
        got = tf.strings.reduce_join(tf.strings.as_string(shape), separator=", ")
        message = tf.strings.join(
            [f"images must be [N, {size}, {size}, 3] float32 in [-1, 1], got [", got, "]"]
        )
        with tf.control_dependencies([tf.debugging.Assert(fits, [message])]):
            images = tf.identity(images)
        return {"images": self._forward(images)}

    def _forward(self, images: tf.Tensor) -> tf.Tensor:
        """The network over [N, S, S, 3], also for N = 0 (convolutions reject empty batches)."""
        size = self.image_size
        return tf.cond(
            tf.shape(images)[0] > 0,
            lambda: tf.cast(self.network(images, training=False), tf.float32),
            lambda: tf.zeros([0, size, size, 3], tf.float32),
        )

    # -- the bytes endpoint ---------------------------------------------------

    def serve_bytes(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        """string [N] of encoded images -> {"image_bytes": string [N] of PNGs}."""
        encoded = tf.cond(
            tf.size(image_bytes) > 0,
            lambda: self._serve_batch(image_bytes),
            lambda: tf.zeros([0], tf.string),
        )
        return {"image_bytes": encoded}

    def _serve_batch(self, image_bytes: tf.Tensor) -> tf.Tensor:
        """string [N > 0] -> string [N]: decode, generate, encode."""
        images, sizes = self._decode_batch(image_bytes)
        # One batched forward pass: [N, S, S, 3] -> [N, S, S, 3].
        generated = self._forward(images)
        # Resize back and encode each image: [N, S, S, 3] -> [N] PNG strings.
        return tf.map_fn(
            self._encode,
            (generated, sizes),
            fn_output_signature=tf.TensorSpec([], tf.string),
            parallel_iterations=self.options.parallel_iterations,
        )

    def _decode_batch(self, image_bytes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """string [N] -> float32 [N, S, S, 3] in [-1, 1] and the upright sizes int32 [N, 2].

        Fails with InvalidArgument naming the first image that could not be decoded.
        """
        count = tf.shape(image_bytes, out_type=tf.int64)[0]
        positions = tf.range(count)
        dataset = tf.data.Dataset.from_tensor_slices((positions, image_bytes))
        dataset = dataset.map(
            self._decode,
            num_parallel_calls=self.options.parallel_iterations,
            deterministic=True,
        )
        # Undecodable images are dropped here and named below; when all of them are,
        # the empty batch after the real one is taken instead.
        size = self.image_size
        nothing = tf.data.Dataset.from_tensors(
            (
                tf.zeros([0], tf.int64),
                tf.zeros([0, size, size, 3], tf.float32),
                tf.zeros([0, 2], tf.int32),
            )
        )
        dataset = dataset.ignore_errors().batch(count).concatenate(nothing).take(1)
        decoded, images, sizes = dataset.get_single_element()
        decoded_count = tf.shape(decoded, out_type=tf.int64)[0]
        present = tf.scatter_nd(decoded[:, None], tf.ones_like(decoded), [count])
        first_missing = tf.argmin(present, output_type=tf.int64)
        missing_bytes = tf.strings.length(tf.gather(image_bytes, first_missing))
        message = tf.strings.join(
            [
                "image_bytes[",
                tf.strings.as_string(first_missing),
                "] (",
                tf.strings.as_string(missing_bytes),
                " bytes) is not a decodable JPEG, PNG, GIF or BMP image; ",
                tf.strings.as_string(count - decoded_count),
                " of ",
                tf.strings.as_string(count),
                " images in this request failed.",
            ]
        )
        check = tf.debugging.Assert(tf.equal(decoded_count, count), [message], summarize=1)
        with tf.control_dependencies([check]):
            return tf.identity(images), tf.identity(sizes)

    def _decode(self, position: tf.Tensor, encoded: tf.Tensor):
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        image = orient(image, exif_orientation(encoded))
        original_size = tf.shape(image)[:2]
        image = _resize(tf.cast(image, tf.float32), self.image_size, self.options.resize_method)
        return position, image / 127.5 - 1.0, original_size

    def _encode(self, inputs: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        generated, original_size = inputs
        pixels = (generated + 1.0) * 127.5
        pixels = _resize(pixels, original_size, self.options.resize_method)
        pixels = tf.cast(tf.clip_by_value(tf.round(pixels), 0.0, 255.0), tf.uint8)
        return tf.io.encode_png(pixels, compression=self.options.png_compression)


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


def _resize(image: tf.Tensor, size, method: str) -> tf.Tensor:
    """Resizes [H, W, 3] float32 to `size` (an int S or an int32 [2] tensor).

    Skips the work when the image already has that size (the common case), and
    antialiases only when shrinking, where it matters; enlarging without it gives the
    same result for bilinear and is several times faster.
    """
    if isinstance(size, int):
        size = tf.constant([size, size], tf.int32)
    current = tf.shape(image)[:2]
    return tf.case(
        [
            (tf.reduce_all(tf.equal(current, size)), lambda: image),
            (
                tf.reduce_any(tf.less(size, current)),
                lambda: tf.image.resize(image, size, method=method, antialias=True),
            ),
        ],
        default=lambda: tf.image.resize(image, size, method=method, antialias=False),
        exclusive=False,
    )


def build_export_archive(
    generator: keras.Model, options: ServingOptions | None = None
) -> keras.export.ExportArchive:
    """An ExportArchive with the signatures listed in this module's docstring."""
    functions = ServingFunctions(generator, options)
    size = functions.image_size
    archive = keras.export.ExportArchive()
    archive.track(functions.network)
    # The first endpoint is also exported as `serving_default`.
    archive.add_endpoint(
        BYTES_SIGNATURE,
        functions.serve_bytes,
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
    )
    archive.add_endpoint(
        FLOAT_SIGNATURE,
        functions.generate,
        input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="images")],
    )
    return archive
