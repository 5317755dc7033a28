"""Writing files so that nobody ever reads a partial one.

Every file the project writes for people or other programs to read (config.json,
metrics.json, sample grids, galleries, predicted images, segmenter weights) is
written to `<path>.tmp` and renamed over `<path>` only when complete: a crash or a
full disk leaves the previous file, or none, never half of one, and no `.tmp`
file is left behind by a failure this process sees.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

TEMPORARY_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path: str, temporary: str | None = None) -> Iterator[str]:
    """Yields a temporary path to write; renames it to `path` when the block succeeds.

    For writers that take a file name (Keras weights, matplotlib, PIL). The
    temporary path is `<path>.tmp` unless given (Keras wants its own suffixes).
    When the block raises (a full disk, Ctrl-C), the temporary file is removed.
    """
    temporary = temporary or path + TEMPORARY_SUFFIX
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def write_atomic(path: str, data: bytes | str) -> str:
    """Writes `data` (bytes, or text as UTF-8) to `path` atomically; returns `path`."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as file:
            file.write(data.encode() if isinstance(data, str) else data)
    return path


def is_disk_full(error: BaseException) -> bool:
    """Whether a failed write ran out of space: an OSError with ENOSPC, or an error whose
    message says so (TensorFlow's file writes raise OpErrors carrying the OS message)."""
    if getattr(error, "errno", None) == errno.ENOSPC:
        return True
    return os.strerror(errno.ENOSPC).lower() in str(error).lower()
