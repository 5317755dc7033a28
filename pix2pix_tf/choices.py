"""Every choice list of the settings, every default derived from another setting, and
`setting()`, which declares a settings field with its help text and choices.

Config validation, the generated flags and the modules that act on a setting
(losses, precision, distribution, model blocks, the input pipeline, export,
serving, evaluation) all read these, so a new choice is added in one place. This
module imports only the standard library.
"""

from __future__ import annotations

import dataclasses

# Which half of a side-by-side pair is the input: A is the left half.
DIRECTIONS = ("AtoB", "BtoA")
# How a folder dataset's files pair up; `auto` detects it (see data/datasets/folder.py).
FOLDER_LAYOUTS = ("auto", "side_by_side", "ab", "suffix")

# Generator and discriminator layouts: the paper's, or the TensorFlow tutorial's.
ARCHS = ("paper", "tutorial")
# Generators: the paper's U-Net, the ResNet of the authors' PyTorch code (resnet_9blocks), or
# pix2pixHD's global network plus one local enhancer (models/resnet.py, global_local.py).
GENERATORS = ("unet", "resnet", "global_local")
# Stride-2 downsamplings of the ResNet generator and of pix2pixHD's global network.
RESNET_DOWNSAMPLINGS = 2
GLOBAL_DOWNSAMPLINGS = 4
# What a global_local run trains: the global network alone at half resolution, the local
# enhancer alone (global weights frozen), or all of it (pix2pixHD's three stages).
TRAINING_STAGES = ("global", "local", "joint")
NORMS = ("batch", "instance")
# The adversarial loss: sigmoid cross-entropy (the paper) or least squares.
GAN_MODES = ("vanilla", "lsgan")
# Compute precisions of training; `auto` picks bfloat16 where the hardware has it.
TRAINING_PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
# Compute precisions of an exported graph; float32 runs on any CPU or GPU.
EXPORT_PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# export.py --format: the TF Serving SavedModel, a LiteRT (TFLite) flatbuffer, an ONNX graph.
EXPORT_FORMATS = ("saved_model", "litert", "onnx")
# export.py --quantize (LiteRT only): float32 weights, float16 weights, int8 weights with
# float activations (dynamic range), int8 weights and activations (full integer).
QUANTIZATIONS = ("none", "float16", "dynamic_int8", "int8")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")

# How training resizes a pair whose aspect differs from --image_size: `cover` scales
# it to cover the size and crops (centre crop for evaluation), `squash` resizes each
# side on its own (the behaviour before non-square sizes, which distorts the aspect).
RESIZE_MODES = ("cover", "squash")

# Channels of the generator's input and output: grayscale or RGB.
CHANNELS = (1, 3)
# Bits per sample of one side's images (None in a config: that of the prepared data,
# 16 when the side holds 16-bit images, else 8).
BIT_DEPTHS = (8, 16)

# How serving resizes inputs to the generator's size and outputs back.
RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area", "lanczos3")
# `inference`: moving batch-norm statistics, no dropout; `paper`: the paper's test time.
TEST_TIME_MODES = ("inference", "paper")
# What size an export serves at: each input's own (`native`, padded to the U-Net's
# multiple and cropped back), or the training size (resized there and back).
SERVING_SIZES = ("native", "training")
# The FCN-score: when a segmenter is trained (auto), required (on), or skipped (off).
FCN_CHOICES = ("auto", "on", "off")
# FID/KID with InceptionV3: when its weights are found (auto), required (on), or skipped (off).
FID_CHOICES = ("auto", "on", "off")
# The demo's brushes: the run's dataset decides (auto), the Cityscapes classes, or any colour.
DEMO_PALETTES = ("auto", "cityscapes", "free")

# The paper's jitter resizes 256x256 images to 286x286 before cropping 256x256.
_JITTER_RATIO = 286 / 256


def check_choice(flag: str, value: object, choices: tuple, allow_none: bool = False) -> None:
    """Raises ValueError naming `--flag` and its choices if `value` is not one of them."""
    if value is None and allow_none:
        return
    if value not in choices:
        listed = ", ".join(str(choice) for choice in choices)
        raise ValueError(f"--{flag} must be one of {listed}; got {value!r}.")


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


def generator_multiple(generator: str, unet_depth: int | None, image_size: int | str) -> int:
    """What each side of an input must be a multiple of for `generator` to return its size.

    U-Net: 2^unet_depth (None: derived from `image_size`); resnet: 2^2; global_local:
    2 * 2^4 (the global network runs at half resolution and downsamples 4 times).
    """
    if generator == "resnet":
        return 2**RESNET_DOWNSAMPLINGS
    if generator == "global_local":
        return 2 * 2**GLOBAL_DOWNSAMPLINGS
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


def setting(default: object, help: str, choices: tuple | None = None) -> dataclasses.Field:
    """A settings field whose flag help (and choices, if any) live in its metadata.

    `pix2pix_tf/flags.py` builds each field's flag from this metadata, and
    `check_choices` validates the choices.
    """
    metadata = {"help": help} if choices is None else {"help": help, "choices": choices}
    return dataclasses.field(default=default, metadata=metadata)


def required(help: str) -> dataclasses.Field:
    """A settings field without a default: its flag is required."""
    return dataclasses.field(metadata={"help": help})


def check_choices(settings: object) -> None:
    """Raises ValueError naming the flag of the first field outside its choices."""
    for field in dataclasses.fields(settings):
        if "choices" in field.metadata:
            value = getattr(settings, field.name)
            check_choice(field.name, value, field.metadata["choices"], field.default is None)
