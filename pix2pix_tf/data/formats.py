"""What the prepared images hold, checked against the channel and bit-depth settings.

Preparing a dataset records, for its A and B images (the left and right halves of
side-by-side pairs), how many are colour, gray stored as RGB, 8-bit gray and 16-bit
gray, with the first file of each (`metadata.json` "image_kinds", written by
data/datasets/base.py). When a prepared dataset is opened
(data/prepare.py), `resolve` compares that with --input_channels /
--output_channels (after --direction):

- a colour image where 1 channel is asked for is an error naming the file;
- gray images where 3 channels are asked for are read as RGB (R = G = B), gray
  stored as RGB where 1 is asked for as one channel: lossless, and reported;
- --input_bits / --output_bits left None become 16 when that side holds 16-bit
  images, else 8; 16-bit images read at 8 bits are reported.

The input pipeline reads each side with the resolved channels and bits
(data/pipeline.py); export writes PNGs at the output bits. Only the standard
library here, so that `--help` stays fast.
"""

from __future__ import annotations

KINDS_KEY = "image_kinds"
# What an image (or half of a side-by-side pair) holds: colour, three channels
# holding a gray image, 8-bit gray, 16-bit gray (data/datasets/images.py decides).
RGB, RGB_GRAY, GRAY, GRAY16 = "rgb", "rgb_gray", "gray", "gray16"
KINDS = (RGB, RGB_GRAY, GRAY, GRAY16)
# The settings of each role: (channels flag, bits flag, what its images are called).
_ROLES = (
    ("input_channels", "input_bits", "input"),
    ("output_channels", "output_bits", "target"),
)


def describe(kinds: dict | None) -> str | None:
    """One line of what each side holds, e.g. "A: 30 colour; B: 30 16-bit gray"."""
    if not kinds:
        return None
    names = {
        RGB: "colour",
        RGB_GRAY: "gray stored as RGB",
        GRAY: "8-bit gray",
        GRAY16: "16-bit gray",
    }
    sides = []
    for side in sorted(kinds):
        found = kinds[side]
        counts = ", ".join(
            f"{found[kind]['count']} {names[kind]}" for kind in KINDS if kind in found
        )
        sides.append(f"{side}: {counts}")
    return "; ".join(sides)


def resolve(
    kinds: dict | None,
    *,
    direction: str,
    channels: tuple[int, int],
    bits: tuple[int | None, int | None],
    dataset: str,
    data_dir: str,
) -> tuple[tuple[int, int], list[str]]:
    """((input bits, output bits), lines reporting conversions).

    `kinds` is the prepared dataset's metadata.json "image_kinds" (None: prepared by an
    earlier version, which stored every image as 8-bit RGB); `channels` and `bits` are
    (--input_*, --output_*) with `direction` AtoB or BtoA; a bit depth of None is
    taken from the data. `dataset` and `data_dir` name the prepared copy in errors.
    Raises ValueError naming the flag and a file when colour images would have to
    be read as one channel.
    """
    sides = ("A", "B") if direction == "AtoB" else ("B", "A")
    resolved, notes = [], []
    for (channels_flag, bits_flag, role), side, wanted, depth in zip(
        _ROLES, sides, channels, bits, strict=True
    ):
        if kinds is None:
            if wanted == 1:
                raise ValueError(
                    f"--{channels_flag} 1: the prepared {dataset} dataset was prepared by an "
                    "earlier version of pix2pix-tf, which stored every image as 8-bit RGB "
                    "without recording which are gray; delete its folder under "
                    f"--data_dir {data_dir} so that it is prepared again."
                )
            resolved.append(depth or 8)
            continue
        found = kinds.get(side, {})
        total = sum(entry["count"] for entry in found.values())
        count = {kind: found.get(kind, {}).get("count", 0) for kind in KINDS}
        if wanted == 1 and count[RGB]:
            example = found[RGB]["example"]
            raise ValueError(
                f"--{channels_flag} 1, but {count[RGB]} of {total} {role} images "
                f"({side} side) are colour, e.g. {example}; pass --{channels_flag} 3, or "
                "convert them to grayscale (and check --direction)."
            )
        gray = count[GRAY] + count[GRAY16]
        if wanted == 3 and gray:
            hint = f" (--{channels_flag} 1 trains on one channel)" if gray == total else ""
            notes.append(
                f"{gray} of {total} {role} images are grayscale; they are read as RGB "
                f"(R = G = B){hint}."
            )
        if wanted == 1 and count[RGB_GRAY]:
            notes.append(
                f"{count[RGB_GRAY]} of {total} {role} images are gray images stored "
                "as RGB; they are read as one channel."
            )
        deep = count[GRAY16]
        if depth is None:
            depth = 16 if deep else 8
            if deep:
                example = found[GRAY16]["example"]
                notes.append(
                    f"{deep} of {total} {role} images are 16-bit (e.g. {example}): {role}s "
                    f"are read{' and exported' if role == 'target' else ''} at 16 bits "
                    f"(--{bits_flag} 16)."
                )
        elif depth == 8 and deep:
            notes.append(
                f"{deep} {role} images are 16-bit; they are read at 8 bits (--{bits_flag} 8)."
            )
        resolved.append(depth)
    return (resolved[0], resolved[1]), notes
