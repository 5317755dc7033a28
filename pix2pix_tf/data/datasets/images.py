"""Checks one source image and decides what goes into the TFRecords.

Records keep the original encoded bytes whenever TensorFlow decodes them to the
same 8-bit RGB pixels Pillow sees: baseline or progressive RGB JPEGs and 8-bit RGB
PNGs. Everything else that Pillow can decode (grayscale, CMYK, RGBA, palette,
16-bit, BMP, GIF, TIFF, WebP, ...) is converted to 3-channel RGB and stored as a
lossless PNG, and so is a photo whose EXIF orientation tag says it is stored
rotated or mirrored (TensorFlow ignores the tag; the stored PNG is upright, so a
side-by-side pair is split along the right axis). Files that cannot be decoded
completely (empty, truncated, corrupt, not an image) or are larger than
MAX_IMAGE_BYTES raise BadImageError with the reason, so that the caller can skip
and list them.
"""

from __future__ import annotations

import dataclasses
import io
import warnings

import numpy as np
from PIL import Image, ImageOps

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

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPE_RGB = 2


class BadImageError(ValueError):
    """A source file that cannot be used; the message says why."""


@dataclasses.dataclass(frozen=True)
class CheckedImage:
    """An image ready to be written: encoded bytes and what was done to them."""

    data: bytes
    width: int
    height: int
    # True when the source was converted to an RGB PNG (otherwise `data` is
    # the source file's bytes, unchanged).
    converted: bool
    # Pillow's name for the source format and mode, e.g. "JPEG", "CMYK".
    source_format: str
    source_mode: str
    # Why it was converted, e.g. "CMYK JPEG" or "EXIF orientation 6"; "" if not.
    reason: str = ""


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
    if orientation in (0, 1) and _keeps_original_bytes(image, data):
        return CheckedImage(data, width, height, False, source_format, source_mode)
    if orientation not in (0, 1):
        reason = f"EXIF orientation {orientation} applied"
    else:
        reason = f"{source_mode} {source_format}"
    png = io.BytesIO()
    Image.fromarray(to_rgb(image)).save(png, format="PNG")
    return CheckedImage(png.getvalue(), width, height, True, source_format, source_mode, reason)


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1-8), or 0 when there is none or it is unreadable."""
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 0)
    except (OSError, ValueError, SyntaxError, TypeError):
        return 0
    return value if isinstance(value, int) and 1 <= value <= 8 else 0


def _keeps_original_bytes(image: Image.Image, data: bytes) -> bool:
    if image.mode != "RGB" or getattr(image, "n_frames", 1) != 1:
        return False
    if image.format == "JPEG":
        return True
    if image.format == "PNG":
        # Pillow reads 16-bit RGB PNGs as 8-bit "RGB" too; the header tells.
        bit_depth, color_type = data[24], data[25]
        return (
            data.startswith(_PNG_SIGNATURE) and bit_depth == 8 and color_type == _PNG_COLOR_TYPE_RGB
        )
    return False


def to_rgb(image: Image.Image) -> np.ndarray:
    """Converts any Pillow image to uint8 RGB [height, width, 3].

    Transparent pixels are composited over white (a sketch on a transparent
    background stays a sketch on white), 16- and 32-bit images are scaled to
    8 bits, and CMYK uses Pillow's conversion.
    """
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        peak = float(values.max(initial=0.0))
        if image.mode.startswith("I;16"):
            top = 65535.0
        elif image.mode == "I":
            # 32-bit integer images usually hold 16-bit data.
            top = 65535.0 if peak > 255 else 255.0
        else:
            top = max(1.0, peak)  # Floating point: scale the brightest pixel to white.
        gray = np.clip(np.round(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3:] / 255.0
        rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
        return np.round(rgb).astype(np.uint8)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _basename(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]
