"""File-system faults for tests: a small (soon full) file system and a read-only one.

Tests run as root, whom permission bits do not stop, so these mount a tmpfs.
Where mounting is not permitted the test is skipped.
"""

from __future__ import annotations

import contextlib
import os
import subprocess

import pytest


def _mount(options: str, path: str) -> None:
    os.makedirs(path, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", path], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")


@contextlib.contextmanager
def small_filesystem(path: str, size_bytes: int):
    """Mounts an empty tmpfs of `size_bytes` at `path` for the duration."""
    _mount(f"size={size_bytes}", path)
    try:
        yield path
    finally:
        subprocess.run(["umount", path], check=False)


@contextlib.contextmanager
def read_only_directory(path: str):
    """Mounts an empty read-only tmpfs at `path` for the duration."""
    _mount("ro", path)
    try:
        yield path
    finally:
        subprocess.run(["umount", path], check=False)
