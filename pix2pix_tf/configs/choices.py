"""Every choice list of the settings, and `setting()`, which declares a settings field
with its help text and choices (the size rules and derived sizes are in sizes.py).

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
# export.py --format: the TF Serving SavedModel, a LiteRT (TFLite) flatbuffer, an ONNX graph,
# or that graph with a static page running it in the browser (web).
EXPORT_FORMATS = ("saved_model", "litert", "onnx", "web")
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
# Tiled inference (--tile) with instance norm: each tile's own statistics, the whole
# image's (two passes, run directories only), or `auto` (image where possible).
TILE_STATISTICS = ("auto", "tile", "image")
# `inference`: moving batch-norm statistics, no dropout; `paper`: the paper's test time.
TEST_TIME_MODES = ("inference", "paper")
# What size an export serves at: each input's own (`native`, padded to the U-Net's
# multiple and cropped back), or the training size (resized there and back).
SERVING_SIZES = ("native", "training")
# The FCN-score: when a segmenter is trained (auto), required (on), or skipped (off).
FCN_CHOICES = ("auto", "on", "off")
# FID/KID with InceptionV3: when its weights are found (auto), required (on), or skipped (off).
FID_CHOICES = ("auto", "on", "off")
# What --keep_best compares (runs/best.py knows each one's direction).
KEEP_BEST_METRICS = ("l1", "psnr", "ssim", "fcn_per_pixel_accuracy", "fid", "kid")
# The demo's brushes: the run's dataset decides (auto), the Cityscapes classes, or any colour.
DEMO_PALETTES = ("auto", "cityscapes", "free")


def check_choice(flag: str, value: object, choices: tuple, allow_none: bool = False) -> None:
    """Raises ValueError naming `--flag` and its choices if `value` is not one of them."""
    if value is None and allow_none:
        return
    if value not in choices:
        listed = ", ".join(str(choice) for choice in choices)
        raise ValueError(f"--{flag} must be one of {listed}; got {value!r}.")


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
