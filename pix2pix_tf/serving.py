"""The serving graph: a generator wrapped with in-graph decoding, resizing and encoding.

Two signatures, both stateless (they never update a variable):

    serving_default (alias serve_bytes)
        inputs:  image_bytes  tf.string [N]  encoded JPEG/PNG/BMP/GIF images of the
                 input domain, any size; grayscale and RGBA are converted to RGB.
        outputs: image_bytes  tf.string [N]  PNG-encoded generated images, each at the
                 size of its input.
    generate
        inputs:  images  float32 [N, S, S, 3]  in [-1, 1] (pixel / 127.5 - 1).
        outputs: images  float32 [N, S, S, 3]  in [-1, 1] (tanh); pixel = (x + 1) * 127.5.

S is the generator's image size. The module loads in plain TensorFlow with
`tf.saved_model.load`, without this project's code.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from pix2pix_tf import test_time

BYTES_SIGNATURE = "serve_bytes"
FLOAT_SIGNATURE = "generate"
DEFAULT_SIGNATURE = "serving_default"
RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area", "lanczos3")
TEST_TIME_MODES = ("inference", "paper")


@dataclasses.dataclass(frozen=True)
class ServingOptions:
    # How inputs are resized to the generator's size and outputs back to the input's.
    resize_method: str = "bilinear"
    # PNG compression of the outputs: 0 (fastest, largest) to 9; -1 is zlib's default (6).
    # Level 1 encodes a 256x256 photo about 4x faster than level 6, for 2-4% more bytes.
    png_compression: int = 1
    # Images decoded / encoded concurrently inside the map over the batch.
    parallel_iterations: int = 8
    # `inference`: moving BN statistics, no dropout (repeatable, batch-independent).
    # `paper`: per-image BN statistics and dropout noise seeded from the image content
    # and `seed`, as at test time in the paper; still repeatable and stateless.
    test_time_mode: str = "inference"
    seed: int = 0

    def validate(self) -> None:
        if self.resize_method not in RESIZE_METHODS:
            raise ValueError(
                f"--resize_method must be one of {', '.join(RESIZE_METHODS)}; "
                f"got {self.resize_method!r}."
            )
        if not -1 <= self.png_compression <= 9:
            raise ValueError(f"--png_compression must be in [-1, 9], got {self.png_compression}.")
        if self.parallel_iterations < 1:
            raise ValueError(f"--parallel_iterations must be >= 1, got {self.parallel_iterations}.")
        if self.test_time_mode not in TEST_TIME_MODES:
            raise ValueError(
                f"--test_time_mode must be one of {', '.join(TEST_TIME_MODES)}; "
                f"got {self.test_time_mode!r}."
            )


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
        outputs = self.network(images, training=False)
        return {"images": tf.cast(outputs, tf.float32)}

    # -- the bytes endpoint ---------------------------------------------------

    def serve_bytes(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        """string [N] of encoded images -> {"image_bytes": string [N] of PNGs}."""
        size = self.image_size
        # Decode and resize each image: [N] -> [N, S, S, 3] in [-1, 1], sizes [N, 2].
        images, sizes = tf.map_fn(
            self._decode,
            image_bytes,
            fn_output_signature=(
                tf.TensorSpec([size, size, 3], tf.float32),
                tf.TensorSpec([2], tf.int32),
            ),
            parallel_iterations=self.options.parallel_iterations,
        )
        # One batched forward pass: [N, S, S, 3] -> [N, S, S, 3].
        generated = self.generate(images)["images"]
        # Resize back and encode each image: [N, S, S, 3] -> [N] PNG strings.
        encoded = tf.map_fn(
            self._encode,
            (generated, sizes),
            fn_output_signature=tf.TensorSpec([], tf.string),
            parallel_iterations=self.options.parallel_iterations,
        )
        return {"image_bytes": encoded}

    def _decode(self, encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        original_size = tf.shape(image)[:2]
        image = _resize(tf.cast(image, tf.float32), self.image_size, self.options.resize_method)
        return image / 127.5 - 1.0, original_size

    def _encode(self, inputs: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        generated, original_size = inputs
        pixels = (generated + 1.0) * 127.5
        pixels = _resize(pixels, original_size, self.options.resize_method)
        pixels = tf.cast(tf.clip_by_value(tf.round(pixels), 0.0, 255.0), tf.uint8)
        return tf.io.encode_png(pixels, compression=self.options.png_compression)


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
