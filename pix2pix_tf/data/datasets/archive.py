"""Reading tar archives safely: refuse entries that would land outside the target.

`scan` reads an archive's table of contents once, refuses it as a whole if any
entry is unsafe (an absolute path, a `..` that climbs out, a symbolic or hard
link pointing outside, a device or FIFO), and returns the regular files plus a
few sample files per directory for content checks (members over
MAX_MEMBER_BYTES are never read: memory stays bounded whatever sizes the
archive declares). The builders then stream the members they need with TFDS'
`iter_archive`: nothing is extracted to disk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import posixpath
import tarfile
import zlib

from pix2pix_tf.data.datasets import images

# The largest member `scan` reads as a sample (and berkeley.py reads as an
# image): the same cap as for single image files, see images.MAX_IMAGE_BYTES.
MAX_MEMBER_BYTES = images.MAX_IMAGE_BYTES


class ArchiveError(ValueError):
    """The archive cannot be read (damaged, truncated, not a tar file)."""


class UnsafeArchiveError(ArchiveError):
    """An archive entry would be written outside the extraction directory."""


@dataclasses.dataclass(frozen=True)
class ArchiveListing:
    """What `scan` found: regular files (normalised name -> size) and samples."""

    path: str
    files: dict[str, int]
    # The first few files of each directory, read during the same pass.
    samples: dict[str, bytes]


def entry_problem(member: tarfile.TarInfo) -> str | None:
    """Returns why extracting `member` would be unsafe, or None if it is safe."""
    name = member.name.replace("\\", "/")
    if name.startswith("/") or _has_drive(name):
        return "has an absolute path"
    if _climbs_out(name):
        return "climbs out of the target directory with '..'"
    if member.issym():
        target = member.linkname.replace("\\", "/")
        if target.startswith("/") or _has_drive(target):
            return f"is a symbolic link to the absolute path {member.linkname!r}"
        if _climbs_out(posixpath.join(posixpath.dirname(name), target)):
            return f"is a symbolic link pointing outside ({member.linkname!r})"
    if member.islnk():
        target = member.linkname.replace("\\", "/")
        if target.startswith("/") or _has_drive(target) or _climbs_out(target):
            return f"is a hard link pointing outside ({member.linkname!r})"
    if member.isdev() or member.isfifo():
        return "is a device or FIFO, not a file"
    return None


def normalize_name(name: str) -> str:
    """`./cityscapes//train/1.jpg` -> `cityscapes/train/1.jpg`."""
    return posixpath.normpath(name.replace("\\", "/"))


def scan(path: str, *, samples_per_directory: int = 0) -> ArchiveListing:
    """Lists the regular files of the tar archive at `path` (any compression).

    Raises:
      UnsafeArchiveError: naming the first unsafe entry; nothing is extracted.
      ArchiveError: the file is not a readable tar archive.
    """
    files: dict[str, int] = {}
    samples: dict[str, bytes] = {}
    sampled: dict[str, int] = {}
    try:
        with tarfile.open(path, mode="r:*") as tar, _progress(path) as progress:
            for member in tar:
                progress.update(1)
                problem = entry_problem(member)
                if problem is not None:
                    raise UnsafeArchiveError(
                        f"{path}: refusing to extract this archive: entry {member.name!r} "
                        f"{problem}. It is damaged or malicious; delete it and download "
                        "it again from a source you trust."
                    )
                if not member.isfile():
                    continue
                name = normalize_name(member.name)
                files[name] = member.size
                directory = posixpath.dirname(name)
                if (
                    sampled.get(directory, 0) < samples_per_directory
                    and member.size <= MAX_MEMBER_BYTES
                ):
                    sampled[directory] = sampled.get(directory, 0) + 1
                    samples[name] = read_member(tar.extractfile(member))
    except UnsafeArchiveError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise ArchiveError(
            f"{path}: cannot read this archive ({error}). It is damaged, truncated or "
            "not a .tar.gz file; delete it and download it again."
        ) from None
    return ArchiveListing(path=path, files=files, samples=samples)


def read_member(handle) -> bytes:
    """Reads an extracted member, at most MAX_MEMBER_BYTES + 1 bytes of it."""
    return handle.read(MAX_MEMBER_BYTES + 1) if handle is not None else b""


def _progress(path: str):
    """A progress bar over the archive's entries (reading a large one takes a while)."""
    import tqdm

    name = os.path.basename(path)
    return tqdm.tqdm(desc=f"Checking {name}", unit=" entries", mininterval=1.0, leave=False)


def file_md5(path: str, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as file:
        while chunk := file.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _has_drive(name: str) -> bool:
    return len(name) >= 2 and name[1] == ":" and name[0].isalpha()


def _climbs_out(name: str) -> bool:
    normalized = posixpath.normpath(name)
    return normalized == ".." or normalized.startswith("../")
