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
NORMS = ("batch", "instance")
# The adversarial loss: sigmoid cross-entropy (the paper) or least squares.
GAN_MODES = ("vanilla", "lsgan")
# Compute precisions of training; `auto` picks bfloat16 where the hardware has it.
TRAINING_PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
# Compute precisions of an exported graph; float32 runs on any CPU or GPU.
EXPORT_PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")

# How serving resizes inputs to the generator's size and outputs back.
RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area", "lanczos3")
# `inference`: moving batch-norm statistics, no dropout; `paper`: the paper's test time.
TEST_TIME_MODES = ("inference", "paper")
# What size an export serves at: each input's own (`native`, padded to the U-Net's
# multiple and cropped back), or the training size (resized there and back).
SERVING_SIZES = ("native", "training")
# The FCN-score: when a segmenter is trained (auto), required (on), or skipped (off).
FCN_CHOICES = ("auto", "on", "off")

# The paper's jitter resizes 256x256 images to 286x286 before cropping 256x256.
_JITTER_RATIO = 286 / 256


def check_choice(flag: str, value: object, choices: tuple, allow_none: bool = False) -> None:
    """Raises ValueError naming `--flag` and its choices if `value` is not one of them."""
    if value is None and allow_none:
        return
    if value not in choices:
        raise ValueError(f"--{flag} must be one of {', '.join(choices)}; got {value!r}.")


def default_load_size(image_size: int) -> int:
    """The jitter's resize before the random crop: 286 for 256, 143 for 128."""
    return round(image_size * _JITTER_RATIO)


def unet_depth_for(image_size: int) -> int:
    """The U-Net's downsamplings down to a 1x1 map: log2(image_size) (256 -> 8).

    This is the default depth and the deepest one an image of this size allows.
    """
    return image_size.bit_length() - 1


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
