"""Small image files and archives that the dataset tests build for themselves."""

from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
import zlib

import numpy as np
from PIL import Image


def encode(pixels: np.ndarray | Image.Image, fmt: str, **options) -> bytes:
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A black 8-bit gray PNG of width x height built row by row, a few hundred KiB
    even at 20000x20000 (a decompression bomb): nothing of its size is held in memory."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    compressor = zlib.compressobj(9)
    row = bytes(1 + width)  # The filter byte and the row's pixels.
    rows = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def random_pixels(seed: int, height: int = 32, width: int = 64) -> np.ndarray:
    """Smooth-ish random RGB pixels (JPEG-friendly), uint8 [height, width, 3]."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.BILINEAR)
    return np.asarray(image)


def jpeg_pair(seed: int, height: int = 32, width: int = 64) -> bytes:
    return encode(random_pixels(seed, height, width), "JPEG", quality=95)


def bad_files(seed: int = 0) -> dict[str, bytes]:
    """One file of every unusable kind, by name."""
    good = jpeg_pair(seed)
    png = encode(random_pixels(seed), "PNG")
    return {
        "empty.jpg": b"",
        "text.jpg": b"this is not an image\n",
        "truncated.jpg": good[: len(good) // 2],
        "truncated.png": png[: len(png) // 2],
        "tiny.jpg": encode(random_pixels(seed, 8, 16), "JPEG"),
    }


def convertible_files(seed: int = 0) -> dict[str, bytes]:
    """Decodable files that must be converted to PNG, by name: the colour ones to RGB,
    the gray ones (names starting with "gray") to 8-bit gray."""
    pixels = random_pixels(seed)
    alpha = np.full(pixels.shape[:2] + (1,), 255, np.uint8)
    return {
        "cmyk.jpg": encode(Image.fromarray(pixels).convert("CMYK"), "JPEG"),
        "rgba.png": encode(np.concatenate([pixels, alpha], axis=-1), "PNG"),
        "palette.png": encode(Image.fromarray(pixels).convert("P"), "PNG"),
        "bitmap.bmp": encode(pixels, "BMP"),
        "gray.bmp": encode(pixels[..., 0], "BMP"),
        "gray_alpha.png": encode(Image.fromarray(pixels[..., :2]).convert("LA"), "PNG"),
    }


def gray_files(seed: int = 0) -> dict[str, bytes]:
    """Single-channel files whose bytes are kept: 8-bit gray JPEG and PNG, 16-bit PNG."""
    gray = random_pixels(seed)[..., 0]
    return {
        "gray.jpg": encode(gray, "JPEG"),
        "gray.png": encode(gray, "PNG"),
        "gray16.png": encode(Image.fromarray(gray.astype(np.uint16) * 256 + 7), "PNG"),
    }


def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def add_link(tar: tarfile.TarFile, name: str, target: str, hard: bool = False) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    tar.addfile(info)


def huge_member_header(name: str, declared_size: int) -> bytes:
    """A tar header declaring `declared_size` bytes, with none of the data after it."""
    info = tarfile.TarInfo(name)
    info.size = declared_size
    return info.tobuf(format=tarfile.GNU_FORMAT)  # Base-256 sizes beyond 8 GiB.


def write_tar(path: str, files: dict[str, bytes], huge: dict[str, int] | None = None) -> str:
    """Writes a .tar.gz of `files`, then members of `huge` (name: declared size).

    The huge members come last and have a header only: the archive stays tiny
    but declares, e.g., a 100 GiB member, as a damaged or hostile archive can.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            add_file(tar, name, data)
    data = buffer.getvalue().rstrip(b"\0")
    data += b"\0" * (-len(data) % tarfile.BLOCKSIZE)
    for name, size in (huge or {}).items():
        data += huge_member_header(name, size)
    with gzip.open(path, "wb") as file:
        file.write(data if huge else buffer.getvalue())
    return path


def berkeley_archive(path: str, name: str, counts: dict[str, int], extra=None) -> dict:
    """Writes `<name>/<split>/N.jpg` pairs (plus `extra` files); returns all files."""
    files = {}
    for split, count in counts.items():
        for index in range(1, count + 1):
            files[f"{name}/{split}/{index}.jpg"] = jpeg_pair(index * 7 + len(split))
    files.update(extra or {})
    write_tar(path, files)
    return files
