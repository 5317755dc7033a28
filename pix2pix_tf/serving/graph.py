"""The serving graph: a generator wrapped with in-graph decoding, padding or resizing,
and encoding.

Two signatures, both stateless (they never update a variable):

    serving_default (alias serve_bytes)
        inputs:  image_bytes  tf.string [N]  encoded JPEG/PNG/BMP/GIF images of the
                 input domain, any size, gray, RGB or RGBA, 8- or 16-bit; converted
                 to the generator's input channels and the run's input bits.
        outputs: image_bytes  tf.string [N]  PNG-encoded generated images, each at the
                 size of its input (upright, see below), with the generator's output
                 channels (1: grayscale, 3: RGB) and the run's output bits (8 or 16).
    generate
        inputs:  images  float32 [N, H, W, C_in]  in [-1, 1] (pixel / 127.5 - 1; 16-bit:
                 pixel / 65535 * 2 - 1).
        outputs: images  float32 [N, H, W, C_out]  in [-1, 1] (tanh); pixel =
                 (x + 1) * 127.5 (16-bit: (x + 1) * 32767.5).

C_in and C_out (1 or 3) are the generator's; the bit depths are the run's
(`config.bit_depths`: 8 for runs from before 16-bit support), passed by export.py.
How images are converted to C_in and the input bits (gray replicated into RGB,
colour to gray by luma except where R = G = B, alpha dropped, a 16-bit PNG kept at 16
bits or read at its high byte by an 8-bit model) is in serving/codec.py. An 8-bit RGB
model decodes and encodes exactly as exports before channels and bit depths did.

What size the generator runs at is an export option (`ServingOptions.serving_size`):

- `native` (the default): the U-Net is fully convolutional, so it runs at each input's
  own size. An input is padded by reflection (bottom and right, without repeating the
  edge) to the next multiple M = 2^unet_depth of each side, and the output is cropped
  back: a 2:1 label map is never squashed, and an odd size is padded, not refused.
  Equal padded sizes in one request (the common case) run as one batch; mixed sizes
  run one image at a time. `generate` takes any H and W that are positive multiples
  of M, with the same numbers as the Keras generator at that size.
- `training`: every input is resized to the training size (H, W) and the output back
  to the input's size, as exports before #12 did; `generate` takes only [N, H, W, C_in].

Either way, `ServingOptions.max_pixels` bounds the pixels per image (memory grows with
them): a larger input fails with InvalidArgument naming its position and the bound.

The module loads in plain TensorFlow with `tf.saved_model.load`, without this
project's code, and uses only TensorFlow ops (no py_function), so TF Serving runs it
as it is.

What the graph does with unusual requests:

- An empty batch (N = 0) returns an empty batch: string [0] or float32 [0, H, W, C_out].
- Images that cannot be decoded fail the call with InvalidArgument naming the first of
  them by its position in the batch, counted from 0: `image_bytes[1] (22 bytes) is not a
  decodable JPEG, PNG, GIF or BMP image; 1 of 3 images in this request failed.` They
  are decoded in a tf.data pipeline over (position, bytes) that drops failures
  (`ignore_errors`), so the missing positions can be named by an in-graph Assert.
- An image over the pixel bound: `image_bytes[2] is 3000x3000 = 9000000 pixels, over
  the bound of 4194304 pixels per image set at export (export.py --max_pixels) ...`.
  It is not converted or padded, and the generator does not run.
- `generate` checks its input's shape, channels included, before the generator runs:
  `images must be [N, H, W, 3] float32 in [-1, 1] with H and W positive multiples of
  16, got [1, 40, 64, 3]` (native), or `images must be [N, 64, 64, 3] ...` (training);
  the 3 is C_in (a gray-input model says `[N, H, W, 1]`).
- Any channel count a JPEG, PNG, GIF or BMP decodes to (1 to 4) and either bit depth
  is converted as serving/codec.py documents; nothing is refused for its channels.
- EXIF orientation: a JPEG whose Exif Orientation tag is not 1 is turned upright after
  decoding, as Pillow's `ImageOps.exif_transpose` does, and its output is generated
  and returned at the upright size (serving/exif.py).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from pix2pix_tf.serving import codec, sizes
from pix2pix_tf.serving import paper_mode as test_time
from pix2pix_tf.serving.exif import exif_orientation, orient
from pix2pix_tf.serving.options import ServingOptions

__all__ = ["ServingFunctions", "ServingOptions", "exif_orientation", "orient"]

BYTES_SIGNATURE = "serve_bytes"
FLOAT_SIGNATURE = "generate"
DEFAULT_SIGNATURE = "serving_default"


class ServingFunctions:
    """The signature functions of an exported generator, also usable in-process.

    `serve_bytes(image_bytes)` and `generate(images)` return dicts of tensors, the
    signatures' outputs. Nothing here creates or assigns variables. `pad_multiple`
    (2^unet_depth of the run) defaults to the generator's downsampling factor.
    """

    def __init__(
        self,
        generator: keras.Model,
        options: ServingOptions | None = None,
        pad_multiple: int | None = None,
        input_bits: int = 8,
        output_bits: int = 8,
    ):
        options = options or ServingOptions()
        options.validate()
        self.generator = generator
        self.options = options
        self.training_size = sizes.generator_input_size(generator)
        self.native = options.serving_size == "native"
        self.pad_multiple = pad_multiple or sizes.downsampling_factor(generator)
        self.input_channels = int(generator.inputs[0].shape[-1])
        self.output_channels = int(generator.outputs[0].shape[-1])
        if self.output_channels not in (1, 3):
            raise ValueError(
                f"expected a generator with 1 or 3 output channels, got {self.output_channels}."
            )
        for name, bits in (("input_bits", input_bits), ("output_bits", output_bits)):
            if bits not in (8, 16):
                raise ValueError(f"{name} must be 8 or 16, got {bits}.")
        self.input_bits, self.output_bits = input_bits, output_bits
        network = sizes.fully_convolutional(generator) if self.native else generator
        if options.test_time_mode == "paper":
            network = test_time.paper_test_time_model(network, seed=options.seed)
        self.network = network

    def float_spec(self) -> tf.TensorSpec:
        """The `generate` signature's input: any multiple of M (native) or the training size."""
        height, width = (None, None) if self.native else self.training_size
        return tf.TensorSpec([None, height, width, self.input_channels], tf.float32, name="images")

    # -- the float endpoint ---------------------------------------------------

    def generate(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """float32 [N, H, W, C_in] in [-1, 1] -> {"images": float32 [N, H, W, C_out] in [-1, 1]}."""
        shape = tf.shape(images)
        # Padded to rank 4 so that a wrong rank compares unequal instead of failing.
        padded = tf.concat([shape, tf.fill([4], -1)], axis=0)[:4]
        channels = self.input_channels
        rank_and_channels = tf.logical_and(
            tf.equal(tf.size(shape), 4), tf.equal(padded[3], channels)
        )
        got = tf.strings.reduce_join(tf.strings.as_string(shape), separator=", ")
        height, width = padded[1], padded[2]
        if self.native:
            multiple = self.pad_multiple
            sides = [height > 0, width > 0, height % multiple == 0, width % multiple == 0]
            fits = tf.reduce_all(tf.stack([rank_and_channels, *sides]))
            expected = (
                f"images must be [N, H, W, {channels}] float32 in [-1, 1] with H and W positive "
                f"multiples of {multiple}, got ["
            )
        else:
            expected_height, expected_width = self.training_size
            sides = [tf.equal(height, expected_height), tf.equal(width, expected_width)]
            fits = tf.reduce_all(tf.stack([rank_and_channels, *sides]))
            expected = (
                f"images must be [N, {expected_height}, {expected_width}, {channels}] float32 in "
                "[-1, 1], got ["
            )
        message = tf.strings.join([expected, got, "]"])
        shape_check = tf.debugging.Assert(fits, [message])
        with tf.control_dependencies([shape_check]):
            pixels = tf.cast(height, tf.int64) * tf.cast(width, tf.int64)
            bound = self.options.max_pixels
            message = tf.strings.join(
                [
                    "images are ",
                    tf.strings.as_string(height),
                    "x",
                    tf.strings.as_string(width),
                    " = ",
                    tf.strings.as_string(pixels),
                    f" pixels each, over the bound of {bound} pixels per image set at "
                    "export (export.py --max_pixels); send smaller images or export with "
                    "a larger bound.",
                ]
            )
            size_check = tf.debugging.Assert(pixels <= bound, [message])
        with tf.control_dependencies([size_check]):
            images = tf.identity(images)
        return {"images": self._forward(images)}

    def _forward(self, images: tf.Tensor) -> tf.Tensor:
        """The network over [N, H, W, C_in], also for N = 0 (convolutions reject empty batches)."""
        if self.native:
            empty_shape = tf.concat([tf.shape(images)[:3], [self.output_channels]], axis=0)
        else:
            empty_shape = [0, *self.training_size, self.output_channels]
        return tf.cond(
            tf.shape(images)[0] > 0,
            lambda: tf.cast(self.network(images, training=False), tf.float32),
            lambda: tf.zeros(empty_shape, tf.float32),
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
        images, sizes, network_sizes = self._decode_batch(image_bytes)
        if not self.native:
            return self._serve_together(images, sizes)
        same = tf.reduce_all(tf.equal(network_sizes, network_sizes[0]))
        return tf.cond(
            same,
            lambda: self._serve_together(images, sizes),
            lambda: self._serve_one_by_one(images, sizes, network_sizes),
        )

    def _serve_together(self, images: tf.Tensor, sizes: tf.Tensor) -> tf.Tensor:
        """One batched forward pass over [N, H, W, C_in], then each image cropped or
        resized back to its size and encoded: [N] PNG strings."""
        generated = self._forward(images)
        return tf.map_fn(
            self._encode,
            (generated, sizes),
            fn_output_signature=tf.TensorSpec([], tf.string),
            parallel_iterations=self.options.parallel_iterations,
        )

    def _serve_one_by_one(self, images, sizes, network_sizes) -> tf.Tensor:
        """Images of different padded sizes (zero-filled to the largest in `images`):
        one forward pass each, one at a time (memory stays that of the largest)."""

        def serve_one(arguments):
            image, size, network_size = arguments
            image = image[None, : network_size[0], : network_size[1]]
            generated = tf.cast(self.network(image, training=False), tf.float32)
            return self._encode((generated[0], size))

        return tf.map_fn(
            serve_one,
            (images, sizes, network_sizes),
            fn_output_signature=tf.TensorSpec([], tf.string),
            parallel_iterations=1,
        )

    def _decode_batch(self, image_bytes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """string [N] -> float32 [N, H, W, C_in] in [-1, 1] (the network's inputs, zero-filled
        to the largest), the upright sizes int32 [N, 2] and the network sizes int32 [N, 2].

        Fails with InvalidArgument naming the first image that could not be decoded,
        then the first one over the pixel bound.
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
        height, width = self.training_size
        nothing = tf.data.Dataset.from_tensors(
            (
                tf.zeros([0], tf.int64),
                tf.zeros([0, height, width, self.input_channels], tf.float32),
                tf.zeros([0, 2], tf.int32),
                tf.zeros([0, 2], tf.int32),
            )
        )
        dataset = dataset.ignore_errors().padded_batch(count).concatenate(nothing).take(1)
        decoded, images, sizes, network_sizes = dataset.get_single_element()
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
            check = self._check_pixels(sizes)
        with tf.control_dependencies([check]):
            return tf.identity(images), tf.identity(sizes), tf.identity(network_sizes)

    def _check_pixels(self, sizes: tf.Tensor) -> tf.Operation:
        """An Assert naming the first image (int32 [N, 2] upright sizes) over max_pixels."""
        pixels = tf.cast(sizes[:, 0], tf.int64) * tf.cast(sizes[:, 1], tf.int64)
        bound = self.options.max_pixels
        first = tf.argmax(tf.cast(pixels > bound, tf.int32), output_type=tf.int32)
        size = tf.gather(sizes, first)
        message = tf.strings.join(
            [
                "image_bytes[",
                tf.strings.as_string(first),
                "] is ",
                tf.strings.as_string(size[0]),
                "x",
                tf.strings.as_string(size[1]),
                " = ",
                tf.strings.as_string(tf.gather(pixels, first)),
                f" pixels, over the bound of {bound} pixels per image set at export "
                "(export.py --max_pixels); send a smaller image or export with a larger bound.",
            ]
        )
        return tf.debugging.Assert(tf.reduce_all(pixels <= bound), [message], summarize=1)

    def _decode(self, position: tf.Tensor, encoded: tf.Tensor):
        image = codec.decode(encoded, self.input_channels, self.input_bits)
        image = orient(image, exif_orientation(encoded))
        original_size = tf.shape(image)[:2]
        pixels = tf.cast(original_size[0], tf.int64) * tf.cast(original_size[1], tf.int64)
        # An image over the bound is named after batching; it is not converted or padded.
        if self.native:
            placeholder = [self.pad_multiple, self.pad_multiple, self.input_channels]
        else:
            placeholder = [*self.training_size, self.input_channels]

        bits = self.input_bits

        def prepared():
            values = tf.cast(image, tf.float32)
            if self.native:
                return sizes.reflect_pad(codec.normalise(values, bits), self.pad_multiple)
            values = sizes.resize(values, self.training_size, self.options.resize_method)
            return codec.normalise(values, bits)

        network_input = tf.cond(
            pixels > self.options.max_pixels, lambda: tf.zeros(placeholder), prepared
        )
        if not self.native:
            network_input.set_shape(placeholder)
        return position, network_input, original_size, tf.shape(network_input)[:2]

    def _encode(self, inputs: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        generated, original_size = inputs
        pixels = codec.to_pixels(generated, self.output_bits)
        if self.native:
            pixels = pixels[: original_size[0], : original_size[1]]
        else:
            pixels = sizes.resize(pixels, original_size, self.options.resize_method)
        return codec.encode_png(pixels, self.output_bits, self.options.png_compression)


def build_export_archive(functions: ServingFunctions) -> keras.export.ExportArchive:
    """An ExportArchive with the signatures listed in this module's docstring."""
    archive = keras.export.ExportArchive()
    archive.track(functions.network)
    # The first endpoint is also exported as `serving_default`.
    archive.add_endpoint(
        BYTES_SIGNATURE,
        functions.serve_bytes,
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
    )
    archive.add_endpoint(
        FLOAT_SIGNATURE, functions.generate, input_signature=[functions.float_spec()]
    )
    return archive
