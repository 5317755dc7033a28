"""Checks one source image and decides what goes into the TFRecords.

Records keep the original encoded bytes whenever TensorFlow decodes them to the
same pixels Pillow sees: baseline or progressive RGB or grayscale JPEGs and 8-bit
RGB, 8-bit gray and 16-bit gray PNGs. Everything else that Pillow can decode is
converted losslessly where it can be and stored as a PNG: grayscale sources
(1-, 2-, 4-bit, BMP, TIFF, gray with alpha over white, ...) as 8-bit gray, 16-bit
and 32-bit integer or floating-point single-channel sources (depth maps) as
16-bit gray, everything else (CMYK, RGBA over white, palette, 16-bit RGB reduced
to 8 bits, BMP, GIF, TIFF, WebP, ...) as 8-bit RGB; so is a photo whose EXIF
orientation tag says it is stored rotated or mirrored (TensorFlow ignores the
tag; the stored PNG is upright, so a side-by-side pair is split along the right
axis). Files that cannot be decoded completely (empty, truncated, corrupt, not an
image) or are larger than MAX_IMAGE_BYTES raise BadImageError with the reason, so
that the caller can skip and list them.

Each image (each half of a side-by-side pair) is also classified, for the
channel and bit-depth checks of training (data/formats.py): RGB (colour), RGB_GRAY
(three channels holding a gray image), GRAY (8-bit, one channel) or GRAY16.
"""

from __future__ import annotations

import dataclasses
import io
import warnings

import numpy as np
from PIL import Image, ImageOps

from pix2pix_tf.data.formats import GRAY, GRAY16, RGB, RGB_GRAY

# The smallest side a usable image (or each half of a side-by-side pair) may
# have: the smallest --image_size the config accepts. Smaller pairs are skipped.
MIN_SIDE = 16

# The largest source file (or archive member) that is read: bigger ones are
# skipped and listed without being read, so that a damaged or hostile file
# declaring a huge size cannot exhaust memory (each file is read whole). The
# largest real pix2pix images are a few MB; a 16k x 16k PNG is about 200 MB.
MAX_IMAGE_BYTES = 256 << 20

# The EXIF tag that says how the stored pixels are rotated or mirrored.
_EXIF_ORIENTATION = 0x0112

# Files with these extensions are considered images when listing folders.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

# A JPEG's three channels hold a gray image when no pixel's channels differ by
# more than this: chroma quantisation leaves small differences in gray content.
# Lossless formats need R = G = B exactly.
JPEG_GRAY_TOLERANCE = 8
# Columns beside the seam of a side-by-side JPEG left out of that check: chroma
# subsampling blurs colour across up to one 16-pixel block.
JPEG_SEAM_MARGIN = 16

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPE_GRAY, _PNG_COLOR_TYPE_RGB = 0, 2
# Pillow modes of single-channel images with up to 8 bits, and with more.
_GRAY_MODES = ("1", "L", "LA", "La")
_DEEP_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


class BadImageError(ValueError):
    """A source file that cannot be used; the message says why."""


@dataclasses.dataclass(frozen=True)
class CheckedImage:
    """An image ready to be written: encoded bytes and what was done to them."""

    data: bytes
    width: int
    height: int
    # True when the source was converted to a PNG (otherwise `data` is the
    # source file's bytes, unchanged).
    converted: bool
    # Pillow's name for the source format and mode, e.g. "JPEG", "CMYK".
    source_format: str
    source_mode: str
    # Why it was converted, e.g. "CMYK JPEG" or "EXIF orientation 6"; "" if not.
    reason: str = ""
    # What it holds (RGB, RGB_GRAY, GRAY or GRAY16): one per half of a
    # side-by-side pair (left, right), else one.
    kinds: tuple[str, ...] = (RGB,)


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not _basename(name).startswith(".")


def check_size(size: int, limit: int | None = None) -> None:
    """Raises BadImageError if a file of `size` bytes is over `limit` (MAX_IMAGE_BYTES)."""
    limit = MAX_IMAGE_BYTES if limit is None else limit
    if size > limit:
        raise BadImageError(f"too large ({size:,} bytes; files over {limit:,} bytes are not read)")


def check_image(data: bytes, *, side_by_side: bool) -> CheckedImage:
    """Returns the bytes to store for `data`, converting it if needed.

    Args:
      data: the encoded source file.
      side_by_side: whether the image holds a pair (A left, B right); then each
        half, not the whole image, must be at least MIN_SIDE pixels wide.

    Raises:
      BadImageError: the file is empty, not an image, truncated or corrupt, or
        too small to be useful.
    """
    if not data:
        raise BadImageError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Pillow warns about, and later refuses, decompression bombs.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()  # Decodes every pixel: finds truncated and corrupt files.
    except Image.DecompressionBombError as error:
        raise BadImageError(f"too many pixels ({error})") from None
    except Image.DecompressionBombWarning as error:
        raise BadImageError(f"too many pixels ({error})") from None
    except Image.UnidentifiedImageError:
        raise BadImageError("not an image (unknown format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise BadImageError(f"truncated or corrupt ({error})") from None
    source_format, source_mode = image.format or "unknown", image.mode
    orientation = _orientation(image)
    if orientation not in (0, 1):
        try:
            image = ImageOps.exif_transpose(image)
        except (OSError, ValueError, SyntaxError) as error:
            raise BadImageError(f"unreadable EXIF orientation ({error})") from None
    width, height = image.size
    min_width = 2 * MIN_SIDE if side_by_side else MIN_SIDE
    if width < min_width or height < MIN_SIDE:
        what = "each half" if side_by_side else "the image"
        raise BadImageError(
            f"too small ({width}x{height}); {what} must be at least {MIN_SIDE}x{MIN_SIDE}"
        )
    pixels = _pixels(image)
    tolerance = JPEG_GRAY_TOLERANCE if source_format == "JPEG" else 0
    kinds = _kinds(pixels, side_by_side, tolerance)
    if orientation in (0, 1) and _keeps_original_bytes(image, data):
        return CheckedImage(data, width, height, False, source_format, source_mode, kinds=kinds)
    if orientation not in (0, 1):
        reason = f"EXIF orientation {orientation} applied"
    else:
        reason = _conversion(image, data, source_format, source_mode)
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")
    return CheckedImage(
        png.getvalue(), width, height, True, source_format, source_mode, reason, kinds
    )


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1-8), or 0 when there is none or it is unreadable."""
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 0)
    except (OSError, ValueError, SyntaxError, TypeError):
        return 0
    return value if isinstance(value, int) and 1 <= value <= 8 else 0


def _keeps_original_bytes(image: Image.Image, data: bytes) -> bool:
    """Whether TensorFlow decodes `data` to the pixels Pillow read: RGB and gray
    JPEGs, 8-bit RGB and gray PNGs, 16-bit gray PNGs."""
    if getattr(image, "n_frames", 1) != 1:
        return False
    if image.format == "JPEG":
        return image.mode in ("RGB", "L")
    if image.format == "PNG" and data.startswith(_PNG_SIGNATURE) and image.mode != "P":
        # Pillow reads 16-bit RGB PNGs as 8-bit "RGB" too; the header tells.
        bit_depth, color_type = data[24], data[25]
        if color_type == _PNG_COLOR_TYPE_RGB:
            return bit_depth == 8 and image.mode == "RGB"
        if color_type == _PNG_COLOR_TYPE_GRAY:
            return bit_depth in (8, 16) and "transparency" not in image.info
    return False


def _conversion(image: Image.Image, data: bytes, source_format: str, source_mode: str) -> str:
    """Why a source whose bytes are not kept is converted, for the report."""
    if source_format == "PNG" and data.startswith(_PNG_SIGNATURE) and data[24] == 16:
        if source_mode in ("RGB", "RGBA"):
            return f"16-bit {source_mode} PNG reduced to 8 bits"
    if source_mode == "F" or (source_mode == "I" and image.getextrema()[1] > 65535):
        return f"{source_mode} {source_format} scaled to 16 bits"
    return f"{source_mode} {source_format}"


def _pixels(image: Image.Image) -> np.ndarray:
    """The pixels to store: uint8 [H, W, 3] for colour sources, uint8 [H, W] for
    gray ones with up to 8 bits, uint16 [H, W] for deeper single-channel ones."""
    if image.mode in _DEEP_MODES:
        if image.mode.startswith("I;16"):
            return np.asarray(image).astype(np.uint16)
        values = np.asarray(image, dtype=np.float64)
        peak = float(values.max(initial=0.0))
        if image.mode == "I" and peak <= 255:
            return np.clip(values, 0, 255).astype(np.uint8)  # 8-bit data in 32 bits.
        if image.mode == "I" and peak <= 65535:
            return np.clip(values, 0, 65535).astype(np.uint16)
        # Floating point, or integers over 16 bits: the brightest pixel is white.
        return np.clip(np.round(values * (65535.0 / max(1.0, peak))), 0, 65535).astype(np.uint16)
    if image.mode in _GRAY_MODES:
        if image.mode == "1":
            return np.asarray(image.convert("L"), dtype=np.uint8)
        if image.mode in ("LA", "La"):
            gray = np.asarray(image.convert("LA"), dtype=np.float32)
            alpha = gray[..., 1] / 255.0  # Over white, as to_rgb does.
            return np.round(gray[..., 0] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
        return np.asarray(image, dtype=np.uint8)
    return to_rgb(image)


def _kinds(pixels: np.ndarray, side_by_side: bool, tolerance: int) -> tuple[str, ...]:
    """RGB, RGB_GRAY, GRAY or GRAY16 for the image, or for each half of a pair."""
    if pixels.ndim == 2:
        kind = GRAY16 if pixels.dtype == np.uint16 else GRAY
        return (kind, kind) if side_by_side else (kind,)
    width = pixels.shape[1]
    half = width // 2
    # The halves as the input pipeline splits them (an odd middle column is dropped),
    # for JPEGs without the columns that chroma subsampling mixes across the seam.
    margin = JPEG_SEAM_MARGIN if tolerance and half > 2 * JPEG_SEAM_MARGIN else 0
    parts = (
        (pixels[:, : half - margin], pixels[:, width - half + margin :])
        if side_by_side
        else (pixels,)
    )
    return tuple(RGB_GRAY if _is_gray(part, tolerance) else RGB for part in parts)


def _is_gray(rgb: np.ndarray, tolerance: int) -> bool:
    spread = rgb.max(axis=-1) - rgb.min(axis=-1)
    return int(spread.max(initial=0)) <= tolerance


def to_rgb(image: Image.Image) -> np.ndarray:
    """Converts a Pillow image of a colour mode (or palette) to uint8 RGB [height, width, 3].

    Transparent pixels are composited over white (a sketch on a transparent
    background stays a sketch on white), and CMYK uses Pillow's conversion.
    """
    if image.mode in ("RGBA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3:] / 255.0
        rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
        return np.round(rgb).astype(np.uint8)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _basename(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]
