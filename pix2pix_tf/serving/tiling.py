"""Tiled inference: a generator run over overlapping tiles of an image of any size,
blended without seams, the output streamed to a PNG row band by row band.

    tiled = TiledModel(generate, input_channels=3, output_channels=3, pad_multiple=128)
    write_tiled(tiled, decode_file(path, data, 8), "out/scene.png", (512, 512), overlap=64)

How the image is cut (`plan_axis`, the same rule on each axis). M is the generator's pad
multiple (2^unet_depth, 4 for resnet, 32 for global_local). The image is seen as it
would be served whole: padded at the bottom and right by reflection to the next
multiple of M (serving/sizes.py's reflect_pad). The tile is rounded up to a multiple of
M; tiles start on multiples of M, as few as a stride of `tile - overlap` rounded down
to a multiple of M (at least M) needs, spread evenly between the first at 0 and the
last, which ends at the padded edge; the effective overlap is `overlap` or more (or
tile - M, the most a stride of M leaves, when `overlap` is larger). Every tile
therefore has the same size (the network runs at one shape), sits on the whole image's
downsampling grid (its stride-2 layers sample the same positions as the whole-image
run), and the last row and column see exactly the reflected pixels the whole-image run
sees. An image no larger than the tile along
an axis is one tile along it, of its padded length.

How tiles are blended (`axis_weights`): each tile's output is weighted by a separable
window, per axis 1 except over the overlap with a neighbouring tile, where it ramps
raised-cosine: sin^2 up over the overlap with the tile before, cos^2 down over the
overlap with the tile after. Two neighbours' ramps over the same overlap sum to 1, so
where at most two tiles overlap per axis the weights are a partition of unity; the
accumulated sum(w * out) is divided by sum(w) anyway (positive everywhere: a ramp is
never 0 inside its tile), which also covers overlaps of more than half the tile. At the
image border (no neighbour) the weight is 1, so a pixel covered by one tile is that
tile's output unchanged.

How memory stays bounded (`run_tiles`): tiles are generated one at a time, a row band
of tiles at a time; one band's accumulator (tile height x padded width x C_out
float32) is kept, and the rows no later band touches are normalised, converted to
PNG samples and handed to `write_rows` as soon as the band is done. The float output
is never whole in memory; the decoded input is (uint8/uint16, as the decoder gives it).

Numerics: with batch norm at inference (moving statistics) a tile computes what the
whole image computes wherever the tile's receptive field lies inside the tile; near a
tile's edge it differs, and the blending hides that. Instance norm (--norm instance)
and the paper's test-time mode normalise by each image's own statistics, which a tile
does by its own: tiled outputs then differ more from whole-image ones;
`TiledModel.per_image_statistics` says when. For run directories `ImageStatistics` (two
passes) normalises every tile by statistics accumulated over the whole image instead
(docs/tiling.md has the measured numbers of both).
"""

from __future__ import annotations

import dataclasses
import math
import os
import struct
import zlib
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf.serving import codec

INCOMPLETE_SUFFIX = ".incomplete"


class TilingError(ValueError):
    """A tile setting or an input that tiled inference cannot use; one line, naming the
    flag or the file."""


@dataclasses.dataclass
class TiledModel:
    """A generator's float contract and what tiling needs to know of it.

    `generate(float32 [N, h, w, C_in] in [-1, 1]) -> float32 [N, h, w, C_out]`, for h and
    w positive multiples of `pad_multiple`, at least `min_side`.
    """

    generate: Callable[[np.ndarray], np.ndarray]
    input_channels: int
    output_channels: int
    pad_multiple: int
    min_side: int | None = None
    input_bits: int = 8
    output_bits: int = 8
    # Instance norm or paper test-time mode: each tile normalised by its own statistics.
    per_image_statistics: bool = False
    # A fixed network size (a SavedModel exported with --serving_size training), if any.
    fixed_hw: tuple[int, int] | None = None
    # The pixels per network input the model accepts (an export's --max_pixels), if bounded.
    max_pixels: int | None = None
    # The zlib level outputs are written at (an export's --png_compression; -1: 6).
    png_compression: int = 1
    # With it (a run directory's instance-norm generator), tiles run in two passes and
    # are normalised by the image's statistics (ImageStatistics).
    statistics: ImageStatistics | None = None
    # The Keras network behind `generate`, when there is one (run directories).
    network: keras.Model | None = None

    def with_statistics(self, mode: str) -> TiledModel:
        """This model for --tile_statistics `mode` (auto | tile | image): with
        ImageStatistics when `mode` is image, or auto and the generator normalises per
        image and its network is here. Raises TilingError naming the flag for `image`
        on a model that cannot have them."""
        wanted = mode == "image" or (mode == "auto" and self.per_image_statistics)
        if not wanted:
            return dataclasses.replace(self, statistics=None)
        if self.network is None or not self.per_image_statistics:
            raise TilingError(
                "--tile_statistics image: needs a run directory whose generator uses "
                "instance norm (exports normalise inside their graphs; batch norm at "
                "inference has no per-image statistics)."
            )
        if self.statistics is None:
            self.statistics = ImageStatistics(self.network)
        return self

    def __post_init__(self):
        if self.min_side is None:
            self.min_side = self.pad_multiple


class ImageStatistics:
    """Instance norm by the whole image's statistics instead of each tile's: two passes.

    Pass 1 runs every tile as usual (each instance-norm layer normalising by the tile's
    own mean and variance) and accumulates, per layer and channel, the pixel-weighted
    mean and variance its inputs had over all tiles (`record`). Pass 2 (`generate`) runs
    the tiles again with every layer normalising by those accumulated statistics, so
    all tiles share one normalisation, as the whole image does. It is an approximation
    (pass 1's deeper layers saw inputs normalised per tile); measured on a trained
    ResNet it takes tiled-vs-whole PSNR from 33.8 to 43.5 dB at 512-pixel tiles
    (docs/tiling.md). Statistics of a downscaled copy were tried and are worse than the
    tiles' own (21 dB at half size). It needs the Keras layers: run directories and
    evaluation only (the exports bake their normalisation into the graph).

    The instance-norm layers (GroupNormalization with one group per channel) of
    `network` get their `call` wrapped; outside the two traced functions here they
    behave as before.
    """

    def __init__(self, network: keras.Model):
        self.network = network
        self.layers = [
            layer
            for layer in network._flatten_layers()
            if isinstance(layer, keras.layers.GroupNormalization)
            and layer.built
            and layer.groups == layer.gamma.shape[0]
        ]
        self.means = [tf.Variable(tf.zeros(layer.groups), trainable=False) for layer in self.layers]
        self.variances = [
            tf.Variable(tf.ones(layer.groups), trainable=False) for layer in self.layers
        ]
        self._mode: str | None = None
        self._recorded: list = []
        for index, layer in enumerate(self.layers):
            layer.call = self._wrapped(index, layer, layer.call)
        self._record = tf.function(self._record_graph, reduce_retracing=True)
        self._generate = tf.function(self._fixed_graph, reduce_retracing=True)
        self.reset()

    def _wrapped(self, index: int, layer, original):
        def call(inputs, *args, **kwargs):
            if self._mode is None:
                return original(inputs, *args, **kwargs)
            values = tf.cast(inputs, tf.float32)
            if self._mode == "record":
                mean, variance = tf.nn.moments(values, axes=[1, 2])
                self._recorded.append((index, mean, variance))
                return original(inputs, *args, **kwargs)
            scale = tf.math.rsqrt(self.variances[index] + layer.epsilon) * layer.gamma
            normalised = (values - self.means[index]) * scale + layer.beta
            return tf.cast(normalised, layer.compute_dtype)

        return call

    def _record_graph(self, images):
        self._mode, self._recorded = "record", []
        try:
            self.network(images, training=False)
            # In self.layers' order (the calls come in the network's order).
            recorded = dict((index, (mean, variance)) for index, mean, variance in self._recorded)
        finally:
            self._mode, self._recorded = None, []
        if len(recorded) != len(self.layers):
            raise ValueError(f"{len(recorded)} of {len(self.layers)} instance-norm layers ran.")
        ordered = [recorded[index] for index in range(len(self.layers))]
        return [mean for mean, _ in ordered], [variance for _, variance in ordered]

    def _fixed_graph(self, images):
        self._mode = "fixed"
        try:
            return tf.cast(self.network(images, training=False), tf.float32)
        finally:
            self._mode = None

    def reset(self) -> None:
        """Forgets the accumulated statistics (before a new image)."""
        self._count = 0.0
        self._sums = [np.zeros((2, layer.groups), np.float64) for layer in self.layers]

    def record(self, images: np.ndarray) -> None:
        """Pass 1: adds a tile batch's per-layer statistics to the image's."""
        means, variances = self._record(tf.constant(images))
        pixels = float(images.shape[1] * images.shape[2])
        for sums, mean, variance in zip(self._sums, means, variances, strict=True):
            mean = mean.numpy().astype(np.float64)  # [N, C]
            sums[0] += pixels * mean.sum(axis=0)
            sums[1] += pixels * (variance.numpy().astype(np.float64) + mean**2).sum(axis=0)
        self._count += pixels * images.shape[0]

    def finish(self) -> None:
        """Between the passes: the accumulated statistics become every layer's."""
        for sums, mean, variance in zip(self._sums, self.means, self.variances, strict=True):
            average = sums[0] / self._count
            mean.assign(average.astype(np.float32))
            variance.assign(np.maximum(sums[1] / self._count - average**2, 0.0).astype(np.float32))

    def generate(self, images: np.ndarray) -> np.ndarray:
        """Pass 2: the network with every instance-norm layer at the image's statistics."""
        return self._generate(tf.constant(images)).numpy()


def min_side(generator: str, multiple: int) -> int:
    """The shortest side `generator` (--generator) runs at: its pad multiple for the U-Net,
    twice it for resnet and global_local (serving/deploy.py's min_side)."""
    return multiple if generator == "unet" else 2 * multiple


# -- planning -------------------------------------------------------------------------


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def plan_axis(length: int, tile: int, overlap: int, multiple: int) -> tuple[list[int], int, int]:
    """(tile starts, tile size, padded length) along one axis of `length` pixels.

    See the module docstring: starts are multiples of `multiple`, the tile size is
    `tile` rounded up to one (or the padded length when that is shorter), the last tile
    ends at the padded length `round_up(length, multiple)`.
    """
    if length < 1 or tile < 1 or multiple < 1 or not 0 <= overlap < tile:
        raise ValueError(f"bad axis plan: length {length}, tile {tile}, overlap {overlap}.")
    padded = round_up(length, multiple)
    size = round_up(tile, multiple)
    if padded <= size:
        return [0], padded, padded
    stride = max(multiple, (size - overlap) // multiple * multiple)
    # As few tiles as the stride allows, spread evenly over the padded length on
    # multiples of `multiple` (consecutive starts are at most `stride` apart).
    span = padded - size
    count = -(-span // stride) + 1
    starts = [span * index // (count - 1) // multiple * multiple for index in range(count)]
    return starts, size, padded


def axis_weights(starts: list[int], size: int) -> list[np.ndarray]:
    """Each tile's float32 [size] window along one axis (module docstring)."""
    weights = []
    positions = np.arange(size, dtype=np.float64) + 0.5
    for index, start in enumerate(starts):
        weight = np.ones(size, np.float64)
        if index > 0:
            ramp = starts[index - 1] + size - start
            inside = positions < ramp
            weight[inside] *= np.sin(0.5 * math.pi * positions[inside] / ramp) ** 2
        if index + 1 < len(starts):
            begin = starts[index + 1] - start
            ramp = size - begin
            inside = positions >= begin
            weight[inside] *= np.cos(0.5 * math.pi * (positions[inside] - begin) / ramp) ** 2
        weights.append(weight.astype(np.float32))
    return weights


def axis_total(starts: list[int], size: int, padded: int) -> np.ndarray:
    """sum(w) along one axis, float32 [padded]: 1 up to rounding where at most two tiles
    overlap."""
    total = np.zeros(padded, np.float32)
    for start, weight in zip(starts, axis_weights(starts, size), strict=True):
        total[start : start + size] += weight
    return total


@dataclasses.dataclass(frozen=True)
class Plan:
    """The tiles of an image: starts, tile size and padded length per axis."""

    height: int
    width: int
    row_starts: list[int]
    column_starts: list[int]
    tile_hw: tuple[int, int]
    padded_hw: tuple[int, int]

    @property
    def count(self) -> int:
        return len(self.row_starts) * len(self.column_starts)

    def boxes(self) -> list[tuple[int, int, int, int]]:
        """(top, left, bottom, right) of every tile, clipped to the image."""
        height, width = self.tile_hw
        return [
            (top, left, min(top + height, self.height), min(left + width, self.width))
            for top in self.row_starts
            for left in self.column_starts
        ]


def plan(image_hw: tuple[int, int], tile_hw: tuple[int, int], overlap: int, model: TiledModel):
    """The Plan for an image of `image_hw`; raises TilingError (naming --tile or --overlap)
    when the tile is below the generator's minimum or the overlap is not below the tile."""
    check_tile(tile_hw, overlap, model)
    rows, tile_height, padded_height = plan_axis(
        image_hw[0], tile_hw[0], overlap, model.pad_multiple
    )
    columns, tile_width, padded_width = plan_axis(
        image_hw[1], tile_hw[1], overlap, model.pad_multiple
    )
    if model.fixed_hw is not None and (tile_height, tile_width) != model.fixed_hw:
        raise TilingError(
            f"--tile {tile_hw[0]}x{tile_hw[1]}: this model runs only at "
            f"{model.fixed_hw[0]}x{model.fixed_hw[1]} (exported with --serving_size "
            f"training), which tiles of a {image_hw[0]}x{image_hw[1]} image are not; pass "
            f"--tile {model.fixed_hw[0]}x{model.fixed_hw[1]} with an image at least that "
            "large, or export with --serving_size native."
        )
    return Plan(
        image_hw[0],
        image_hw[1],
        rows,
        columns,
        (tile_height, tile_width),
        (padded_height, padded_width),
    )


def check_tile(tile_hw: tuple[int, int], overlap: int, model: TiledModel) -> None:
    """Raises TilingError naming --tile / --overlap for settings `model` cannot tile with."""
    if min(tile_hw) < model.min_side:
        raise TilingError(
            f"--tile {tile_hw[0]}x{tile_hw[1]}: each side must be at least {model.min_side}, "
            f"this generator's smallest input (tiles are rounded up to multiples of "
            f"{model.pad_multiple})."
        )
    rounded = [round_up(side, model.pad_multiple) for side in tile_hw]
    if model.fixed_hw is not None and tuple(rounded) != tuple(model.fixed_hw):
        height, width = model.fixed_hw
        raise TilingError(
            f"--tile {tile_hw[0]}x{tile_hw[1]}: this model runs only at {height}x{width} "
            f"(exported with --serving_size training); pass --tile {height}x{width} or "
            "export with --serving_size native."
        )
    if model.max_pixels is not None and rounded[0] * rounded[1] > model.max_pixels:
        raise TilingError(
            f"--tile {tile_hw[0]}x{tile_hw[1]}: tiles of {rounded[0]}x{rounded[1]} pixels are "
            f"over the {model.max_pixels} pixels per image this model takes (export.py "
            "--max_pixels); pass a smaller --tile."
        )
    if overlap < 0 or overlap >= min(tile_hw):
        raise TilingError(
            f"--overlap {overlap}: must be >= 0 and smaller than the tile's shorter side "
            f"({min(tile_hw)})."
        )


# -- running ---------------------------------------------------------------------------


def mirrored_indices(start: int, size: int, length: int) -> np.ndarray:
    """Indices start .. start + size - 1 into an axis of `length`, reflected beyond it
    without repeating the edge (as sizes.reflect_pad), down to a 1-pixel side."""
    period = max(2 * length - 2, 1)
    index = np.arange(start, start + size) % period
    return np.where(index < length, index, period - index)


def to_samples(generated: np.ndarray, bits: int) -> np.ndarray:
    """[-1, 1] floats -> uint8 / uint16 PNG samples, as codec.to_pixels + encode_png."""
    dtype = np.uint8 if bits == 8 else np.uint16
    values = (generated.astype(np.float32) + 1.0) * np.float32((2.0**bits - 1.0) / 2.0)
    return np.clip(np.round(values), 0.0, 2.0**bits - 1.0).astype(dtype)


def prepare_input(pixels: np.ndarray, channels: int, bits: int) -> np.ndarray:
    """A decoded tile (uint8 or uint16, 1-4 channels, as `decode_file` returns) -> float32
    [h, w, channels] in [-1, 1], converted to the model's channels and input `bits` as
    serving/codec.py converts whole images (a 16-bit model reads floats in [0, 1])."""
    if bits == 16:
        scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
        values = tf.constant(pixels.astype(np.float32) / np.float32(scale))
    else:
        values = tf.constant(pixels)
    if not (pixels.shape[-1] == channels and channels in (1, 3)):
        values = codec.convert_channels(values, channels, bits)
    return codec.normalise(tf.cast(values, tf.float32), bits).numpy()


def run_tiles(
    model: TiledModel,
    pixels: np.ndarray,
    layout: Plan,
    write_rows: Callable[[np.ndarray], None],
    progress: Callable[[int], None] | None = None,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
) -> None:
    """Generates `pixels` tile by tile as `layout` says; calls `write_rows(float32 [n, W,
    C_out] in [-1, 1])` with the blended finished rows, top to bottom, every row exactly
    once. `pixels` is decoded [H, W, C] uint8/uint16 (`decode_file`'s), made the network's
    input tile by tile by `prepare_input`, or anything `prepare(tile) -> float32 [h, w,
    C_in]` takes (evaluation passes floats in [-1, 1] and the identity).
    `progress(tiles done)` after each tile."""
    if prepare is None:

        def prepare(tile: np.ndarray) -> np.ndarray:
            return prepare_input(tile, model.input_channels, model.input_bits)

    generate = model.generate
    if model.statistics is not None:
        _record_statistics(model.statistics, pixels, layout, prepare, progress)
        generate = model.statistics.generate
        if progress is not None:
            first = progress
            progress = lambda done: first(layout.count + done)  # noqa: E731

    tile_height, tile_width = layout.tile_hw
    padded_height, padded_width = layout.padded_hw
    height, width = layout.height, layout.width
    rows, columns = layout.row_starts, layout.column_starts
    row_weights = axis_weights(rows, tile_height)
    column_weights = axis_weights(columns, tile_width)
    row_total = axis_total(rows, tile_height, padded_height)
    column_total = axis_total(columns, tile_width, padded_width)
    channels = model.output_channels
    band = np.zeros((tile_height, padded_width, channels), np.float32)
    done = 0
    written = 0
    for band_index, top in enumerate(rows):
        row_index = mirrored_indices(top, tile_height, height)
        band_pixels = pixels[row_index]
        for left, column_weight in zip(columns, column_weights, strict=True):
            tile = band_pixels[:, mirrored_indices(left, tile_width, width)]
            network_input = prepare(tile)
            generated = np.asarray(generate(network_input[None]), np.float32)
            expected = (1, tile_height, tile_width, channels)
            if generated.shape != expected:
                raise ValueError(
                    f"the generator returned {list(generated.shape)} for a tile of "
                    f"{list(network_input.shape)}; expected {list(expected)}."
                )
            weight = row_weights[band_index][:, None, None] * column_weight[None, :, None]
            band[:, left : left + tile_width] += generated[0] * weight
            done += 1
            if progress is not None:
                progress(done)
        last = band_index + 1 == len(rows)
        finished = tile_height if last else rows[band_index + 1] - top
        stop = min(top + finished, height)
        if stop > written:
            count = stop - written
            values = band[:count, :width]
            total = row_total[top : top + count, None, None] * column_total[None, :width, None]
            write_rows(values / total)
            written = stop
        if not last:
            # The rows the next band shares with this one move to the top of its accumulator.
            shift = rows[band_index + 1] - top
            band[: tile_height - shift] = band[shift:]
            band[tile_height - shift :] = 0.0


def _record_statistics(statistics: ImageStatistics, pixels, layout: Plan, prepare, progress):
    """ImageStatistics' pass 1 over every tile of `layout` (nothing is written)."""
    statistics.reset()
    tile_height, tile_width = layout.tile_hw
    done = 0
    for top in layout.row_starts:
        band_pixels = pixels[mirrored_indices(top, tile_height, layout.height)]
        for left in layout.column_starts:
            tile = band_pixels[:, mirrored_indices(left, tile_width, layout.width)]
            statistics.record(prepare(tile)[None])
            done += 1
            if progress is not None:
                progress(done)
    statistics.finish()


def passes(model: TiledModel) -> int:
    """How many times each tile runs: 2 with ImageStatistics, else 1."""
    return 1 if model.statistics is None else 2


# -- decoding ----------------------------------------------------------------------------


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# TensorFlow's image decoders refuse an image of 2^31 samples or more.
DECODER_MAX_SAMPLES = 2**31 - 1


def image_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(height, width, channels, bits) from a PNG's IHDR, or None for other formats."""
    if not data.startswith(PNG_SIGNATURE) or len(data) < 29:
        return None
    width, height, bits, colour = struct.unpack(">IIBB", data[16:26])
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(colour, 3)
    return height, width, channels, bits


def decode_file(path: str, data: bytes, input_bits: int) -> np.ndarray:
    """Encoded bytes -> [H, W, C] as decoded: uint8, or uint16 for a 16-bit PNG read by a
    16-bit model (an 8-bit model reads a 16-bit PNG at its high byte, as serving does).
    Raises TilingError naming the file when it cannot be decoded or held."""
    header = image_header(data)
    if header is not None:
        height, width, channels, _ = header
        if height * width * max(channels, 1) > DECODER_MAX_SAMPLES:
            raise TilingError(
                f"{path}: {height}x{width}x{channels} = {height * width * channels} samples, "
                f"more than the decoder holds ({DECODER_MAX_SAMPLES}); cut it into parts "
                "(tiling runs on a decoded image)."
            )
    wide = header is not None and header[3] == 16 and input_bits == 16
    try:
        if wide:
            image = tf.io.decode_png(data, channels=0, dtype=tf.uint16)
        else:
            image = tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False)
        # np.asarray shares the tensor's buffer (read-only); .numpy() would copy it.
        return np.asarray(image)
    except (tf.errors.InvalidArgumentError, tf.errors.ResourceExhaustedError) as error:
        reason = error.message.strip().splitlines()[0] if error.message.strip() else ""
        raise TilingError(
            f"{path}: cannot decode it for tiling ({reason or type(error).__name__})."
        ) from None
    except MemoryError:
        raise TilingError(f"{path}: not enough memory to decode it for tiling.") from None


# -- streaming PNG ---------------------------------------------------------------------------


class StreamingPNG:
    """Writes a PNG row band by row band (Pillow cannot): 8- or 16-bit, gray or RGB.

    Rows go through one zlib stream into IDAT chunks (filter type 0 per row) in
    `path + ".incomplete"`, renamed to `path` when every row is written and the file
    is closed; on an error, or rows missing, the partial file is removed, so a killed or
    failed run never leaves a complete-looking output (a killed one may leave the
    `.incomplete` file). With `stream` (a binary file object) instead of a path, the PNG
    is written there (the demo's in-memory reply). Use as a context manager.
    """

    CHUNK_BYTES = 1 << 20

    def __init__(
        self,
        path: str | None,
        height: int,
        width: int,
        channels: int,
        bits: int,
        level: int = 1,
        stream=None,
    ):
        if channels not in (1, 3) or bits not in (8, 16):
            raise ValueError(f"PNG of {channels} channels and {bits} bits is not written.")
        self.stream = stream
        self.path = path
        self.temporary = None if path is None else path + INCOMPLETE_SUFFIX
        self.height, self.width, self.channels, self.bits = height, width, channels, bits
        self.rows = 0
        self.compressor = zlib.compressobj(level)
        self.pending = bytearray()
        self.file = None

    def __enter__(self) -> StreamingPNG:
        self.file = self.stream if self.stream is not None else open(self.temporary, "wb")
        colour = 0 if self.channels == 1 else 2
        header = struct.pack(">IIBBBBB", self.width, self.height, self.bits, colour, 0, 0, 0)
        self.file.write(PNG_SIGNATURE)
        self._chunk(b"IHDR", header)
        return self

    def _chunk(self, kind: bytes, payload: bytes) -> None:
        self.file.write(struct.pack(">I", len(payload)))
        self.file.write(kind)
        self.file.write(payload)
        self.file.write(struct.pack(">I", zlib.crc32(payload, zlib.crc32(kind)) & 0xFFFFFFFF))

    def _flush(self, final: bool = False) -> None:
        while len(self.pending) >= self.CHUNK_BYTES or (final and self.pending):
            payload = bytes(self.pending[: self.CHUNK_BYTES])
            del self.pending[: self.CHUNK_BYTES]
            self._chunk(b"IDAT", payload)

    def write(self, samples: np.ndarray) -> None:
        """samples: [n, width, channels] uint8 (8 bits) or uint16 (16 bits)."""
        expected = np.uint8 if self.bits == 8 else np.uint16
        if samples.ndim != 3 or samples.shape[1:] != (self.width, self.channels):
            raise ValueError(
                f"rows of {samples.shape}, expected [n, {self.width}, {self.channels}]."
            )
        if samples.dtype != expected or self.rows + samples.shape[0] > self.height:
            raise ValueError(f"rows of {samples.dtype} or past row {self.height}.")
        rows = samples.reshape(samples.shape[0], -1)
        if self.bits == 16:
            rows = rows.astype(">u2").view(np.uint8)
        filtered = np.concatenate([np.zeros((rows.shape[0], 1), np.uint8), rows], axis=1)
        self.pending += self.compressor.compress(filtered.tobytes())
        self.rows += samples.shape[0]
        self._flush()

    def __exit__(self, kind, value, traceback) -> None:
        in_memory = self.stream is not None
        try:
            if kind is None:
                if self.rows != self.height:
                    raise ValueError(f"{self.rows} of {self.height} rows written.")
                self.pending += self.compressor.flush()
                self._flush(final=True)
                self._chunk(b"IEND", b"")
                if not in_memory:
                    self.file.flush()
                    os.fsync(self.file.fileno())
            if not in_memory:
                self.file.close()
        except BaseException:
            if not in_memory:
                self.file.close()
                _remove(self.temporary)
            raise
        if in_memory:
            return
        if kind is not None:
            _remove(self.temporary)
            return
        os.replace(self.temporary, self.path)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def write_tiled(
    model: TiledModel,
    pixels: np.ndarray,
    output: str | None,
    tile_hw: tuple[int, int],
    overlap: int,
    png_compression: int = 1,
    progress: Callable[[int, int], None] | None = None,
    stream=None,
) -> Plan:
    """Tiles decoded `pixels` (`decode_file`'s) into the PNG `output` (or the binary
    `stream`), written as the model would encode the whole image (its output channels
    and bits). Returns the Plan; raises TilingError for a tile the model cannot run,
    OSError when the output cannot be written (nothing complete-looking is left behind)."""
    layout = plan(pixels.shape[:2], tile_hw, overlap, model)
    level = 6 if png_compression == -1 else png_compression
    shape = (layout.height, layout.width, model.output_channels, model.output_bits)
    total = passes(model) * layout.count
    with StreamingPNG(output, *shape, level, stream=stream) as writer:
        run_tiles(
            model,
            pixels,
            layout,
            lambda rows: writer.write(to_samples(rows, model.output_bits)),
            None if progress is None else (lambda done: progress(done, total)),
        )
    return layout


def generate_tiled(
    model: TiledModel, images: np.ndarray, tile_hw: tuple[int, int], overlap: int
) -> np.ndarray:
    """float32 [h, w, C_in] in [-1, 1] -> float32 [h, w, C_out]: the tiled output held in
    memory (evaluation, where the pair is in memory anyway)."""
    layout = plan(images.shape[:2], tile_hw, overlap, model)
    rows: list[np.ndarray] = []
    run_tiles(model, images, layout, rows.append, prepare=lambda tile: tile)
    return np.concatenate(rows, axis=0)


def run_file(model: TiledModel, source: str, output: str, tile_hw, overlap: int, **options) -> Plan:
    """`write_tiled` of the image file `source` (read as it is, no EXIF turn)."""
    with open(source, "rb") as file:
        pixels = decode_file(source, file.read(), model.input_bits)
    return write_tiled(model, pixels, output, tile_hw, overlap, **options)
