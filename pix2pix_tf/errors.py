"""One-line error messages: what every command prints for an error it ends with."""

from __future__ import annotations


def one_line(error: BaseException) -> str:
    """The error's message on one line (its type's name if it has none)."""
    return " ".join(str(error).split()) or type(error).__name__
