"""The size rules: sizes as settings, the U-Net's depth, and what each model needs of a size.

Sizes are HEIGHTxWIDTH (`parse_size`); stored as an int when square, as in the
config.json files of earlier versions (`format_size`). The U-Net's depth is derived
here alone (`unet_depth`): its default is log2 of the smaller side, and each side must
be a multiple of 2^depth. The ResNet and global_local generators need multiples of
their own (`generator_multiple`), the PatchGAN a large enough map (`check_patchgan_size`).
Every error names the flag and the nearest valid sizes. Standard library only.
"""

from __future__ import annotations

from pix2pix_tf.configs.choices import GLOBAL_DOWNSAMPLINGS, RESNET_DOWNSAMPLINGS

# The paper's jitter resizes 256x256 images to 286x286 before cropping 256x256.
_JITTER_RATIO = 286 / 256


def parse_size(value: int | str | tuple | list, flag: str = "image_size") -> tuple[int, int]:
    """(height, width) of a size setting: 256, "256", "256x512" or (256, 512).

    Raises ValueError naming `--flag` for anything else.
    """
    if isinstance(value, (tuple, list)) and len(value) == 2:
        sides = list(value)
    elif isinstance(value, bool):
        sides = []
    elif isinstance(value, int):
        sides = [value, value]
    else:
        text = str(value).strip().lower()
        sides = text.split("x") if "x" in text else [text, text]
    try:
        height, width = (int(side) for side in sides)
    except (TypeError, ValueError):
        height = width = 0
    if height < 1 or width < 1:
        raise ValueError(
            f"--{flag} must be SIZE or HEIGHTxWIDTH in pixels (e.g. 256 or 256x512), got {value!r}."
        )
    return height, width


def format_size(height: int, width: int) -> int | str:
    """The stored form of a size: an int when square (as before), else "HxW"."""
    return height if height == width else f"{height}x{width}"


def default_load_size(image_size: int | str) -> int | str:
    """The jitter's resize before the random crop, per side: 286 for 256, 143 for 128,
    "286x572" for "256x512"."""
    height, width = parse_size(image_size)
    return format_size(round(height * _JITTER_RATIO), round(width * _JITTER_RATIO))


def unet_depth_for(image_size: int | str) -> int:
    """The U-Net's downsamplings down to a 1-pixel side: log2 of the smaller side
    (256 -> 8, 256x512 -> 8, whose bottleneck is 1x2).

    This is the default depth and the deepest one an image of this size allows.
    """
    return min(parse_size(image_size)).bit_length() - 1


def nearest_valid_sizes(
    height: int, width: int, multiple: int, count: int = 3, minimum: int = 1
) -> list[str]:
    """Up to `count` sizes near HxW whose sides are multiples of `multiple` and at least
    `minimum` (closest first)."""

    def around(side: int) -> set[int]:
        below = max(side // multiple * multiple, -(-minimum // multiple) * multiple)
        return {below, below + multiple}

    if height == width:  # Square sizes suggest square sizes.
        candidates = {(side, side) for side in around(height)}
    else:
        candidates = {(h, w) for h in around(height) for w in around(width)}
    ranked = sorted(candidates, key=lambda hw: (abs(hw[0] - height) + abs(hw[1] - width), hw))
    return [f"{h}x{w}" if h != w else str(h) for h, w in ranked[:count]]


def check_image_size(image_size: int | str, depth: int | None, flag: str = "image_size") -> int:
    """Checks that a U-Net of `depth` (None: unet_depth_for) fits the size; returns the depth.

    Each side must be a multiple of 2^depth (each encoder layer halves it); the
    error names the flag and the nearest valid sizes.
    """
    height, width = parse_size(image_size, flag)
    shown = format_size(height, width)
    if min(height, width) < 16:
        raise ValueError(f"--{flag} must be at least 16 on each side, got {shown}.")
    derived = depth is None
    depth = unet_depth_for(image_size) if derived else depth
    if not height % 2**depth and not width % 2**depth:
        return depth
    nearest = ", ".join(nearest_valid_sizes(height, width, 2**depth))
    if derived and height == width:
        raise ValueError(
            f"--{flag} must be a power of two >= 16 (e.g. 64, 128, 256), or a multiple of "
            f"2^N with --unet_depth N; got {shown}. Nearest valid sizes: {nearest}."
        )
    origin = " (derived from the smaller side)" if derived else ""
    raise ValueError(
        f"--{flag} {shown}: each side must be a multiple of 2^{depth} = {2**depth} for "
        f"--unet_depth {depth}{origin}; nearest valid sizes: {nearest}, or a smaller "
        "--unet_depth."
    )


def generator_multiple(
    generator: str, unet_depth: int | None, image_size: int | str | None = None
) -> int:
    """What each side of an input must be a multiple of for `generator` to return its size.

    U-Net: 2^unet_depth (None: derived from `image_size`, which the U-Net then needs);
    resnet: 2^2; global_local: 2 * 2^4 (the global network runs at half resolution and
    downsamples 4 times).
    """
    if generator == "resnet":
        return 2**RESNET_DOWNSAMPLINGS
    if generator == "global_local":
        return 2 * 2**GLOBAL_DOWNSAMPLINGS
    if unet_depth is None and image_size is None:
        raise ValueError("The U-Net's multiple needs its --unet_depth or its --image_size.")
    return 2 ** (unet_depth_for(image_size) if unet_depth is None else unet_depth)


def check_generator_size(image_size: int | str, generator: str, flag: str = "image_size") -> int:
    """Checks that a resnet or global_local generator fits the size; returns its multiple.

    The error names the flag, the generator's multiple and the nearest valid sizes.
    """
    height, width = parse_size(image_size, flag)
    multiple = generator_multiple(generator, None, image_size)
    # The reflection padding of the innermost residual blocks needs 2 pixels a side.
    minimum = max(16, 2 * multiple)
    if height % multiple or width % multiple or min(height, width) < minimum:
        nearest = ", ".join(nearest_valid_sizes(height, width, multiple, minimum=minimum))
        raise ValueError(
            f"--{flag} {format_size(height, width)}: --generator {generator} needs each side "
            f"a multiple of {multiple} and at least {minimum}; nearest valid sizes: {nearest}."
        )
    return multiple


def check_patchgan_size(
    image_size: int | str, layers: int, unet_depth: int = 0, num_discriminators: int = 1
) -> None:
    """Raises ValueError naming the flags if the PatchGAN does not fit the size.

    The PatchGAN halves the image per strided layer, then needs a 4x4 map for its
    two stride-1 4x4 convolutions. With `num_discriminators` N the smallest scale,
    1/2^(N-1), must fit it too. The sizes it suggests also fit a U-Net of
    `unet_depth`.
    """
    height, width = parse_size(image_size)
    levels = layers + num_discriminators - 1  # Each further discriminator halves once more.
    if layers and (min(height, width) < 4 * 2**levels or height % 2**levels or width % 2**levels):
        multiple = 2 ** max(levels, unet_depth)
        nearest = ", ".join(nearest_valid_sizes(height, width, multiple, minimum=4 * 2**levels))
        needs = f"--discriminator_layers {layers}"
        fewer = "fewer --discriminator_layers"
        if num_discriminators > 1:
            needs += (
                f" with --num_discriminators {num_discriminators} (the smallest at "
                f"1/{2 ** (num_discriminators - 1)} scale)"
            )
            fewer += " or --num_discriminators"
        raise ValueError(
            f"{needs} needs --image_size >= {4 * 2**levels} on each side, each a multiple of "
            f"{2**levels}; got {format_size(height, width)} (nearest valid sizes: {nearest}, or "
            f"{fewer})."
        )


def image_hw(data_config) -> tuple[int, int]:
    """(height, width) of the training size, for square (int) and HxW settings alike."""
    return parse_size(data_config.image_size, "image_size")


def load_hw(data_config) -> tuple[int, int]:
    """(height, width) of the jitter's resize; the derived default if load_size is None."""
    if data_config.load_size is None:
        return parse_size(default_load_size(data_config.image_size))
    return parse_size(data_config.load_size, "load_size")


def unet_depth(image_size: int | str, depth: int | None = None) -> int:
    """The U-Net's encoder layers for `image_size`: `depth` (--unet_depth), or log2 of the
    smaller side when None; raises ValueError naming the flags if it does not fit.

    The one derivation of the depth: config validation and the bridge to the models'
    arguments (arguments.py) call it; the models take the resolved depth.
    """
    check_unet_depth_bounds(image_size, depth)
    return check_image_size(image_size, depth)


def check_unet_depth_bounds(image_size: int | str, depth: int | None) -> None:
    """Raises ValueError naming --unet_depth unless it is None or 1..log2(smaller side)."""
    deepest = unet_depth_for(image_size)
    if depth is not None and not 1 <= depth <= deepest:
        raise ValueError(
            f"--unet_depth must be between 1 and {deepest} for --image_size "
            f"{format_size(*parse_size(image_size))} (log2 of its smaller side), got {depth}."
        )
