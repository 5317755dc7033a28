"""One typed configuration for pix2pix-tf: paper defaults, dataset defaults, presets.

Resolution order, later wins:

    Config() defaults (the paper's settings)
      <- DATASETS[name].overrides   (what the paper used for that dataset)
      <- PRESETS[name]              (named overrides, e.g. `tiny` for tests)
      <- command-line flags         (every field is a flag of the same name)

The resolved config is saved as `config.json` next to the checkpoints; export,
evaluation and resume read it back with `Config.from_json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import json
import math
import os
import types
import typing
from typing import Any

# ---------------------------------------------------------------------------
# Datasets.
# ---------------------------------------------------------------------------

BERKELEY_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
# Overrides the download location of the Berkeley archives, e.g. a local mirror.
# `{name}` is replaced by the dataset name.
URL_ENV = "PIX2PIX_DATASET_URL"
# Directory holding archives the user already has (`<name>.tar.gz`).
MANUAL_DIR_ENV = "PIX2PIX_MANUAL_DIR"

DIRECTIONS = ("AtoB", "BtoA")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What the project knows about a dataset before reading it."""

    name: str
    # Which half is the input: A is the left half of each side-by-side pair.
    natural_direction: str
    description: str
    # Published MD5 of the Berkeley archive; None for datasets we generate.
    md5: str | None = None
    # Splits as they appear in the archive, and the split used for evaluation.
    splits: tuple[str, ...] = ("train", "val")
    eval_split: str = "val"
    # Settings from the paper's appendix (section 6.2) for this dataset.
    overrides: dict = dataclasses.field(default_factory=dict)

    @property
    def url(self) -> str | None:
        if self.md5 is None:
            return None
        template = os.environ.get(URL_ENV, BERKELEY_URL)
        return template.format(name=self.name)


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="synthetic",
            natural_direction="BtoA",
            description=(
                "Embedded procedural street scenes in the Cityscapes palette, "
                "label map (right) -> photo (left); generated locally, no download."
            ),
            overrides={"epochs": 20},
        ),
        DatasetInfo(
            name="facades",
            natural_direction="BtoA",
            description="CMP Facades, label map (right) -> photo (left). 400 train.",
            md5="e2e25dd517e9d15828416ab329da2854",
            splits=("train", "val", "test"),
            overrides={"epochs": 200, "batch_size": 1},
        ),
        DatasetInfo(
            name="cityscapes",
            natural_direction="BtoA",
            description="Cityscapes, label map (right) -> photo (left). 2975 train, 500 val.",
            md5="32569df708076e427e9cd02abbca7748",
            overrides={"epochs": 200, "batch_size": 1},
        ),
        DatasetInfo(
            name="maps",
            natural_direction="AtoB",
            description="Google Maps, aerial (left) <-> map (right); both directions are used.",
            md5="e5f65d26eb288457f5ac056deb94d154",
            overrides={"epochs": 200, "batch_size": 1},
        ),
        DatasetInfo(
            name="edges2shoes",
            natural_direction="AtoB",
            description="UT Zappos50K, edges (left) -> photo (right). No jitter or mirroring.",
            md5="71da478b54fedde126e234a2a050bc15",
            overrides={
                "epochs": 15,
                "batch_size": 4,
                "random_jitter": False,
                "random_mirror": False,
            },
        ),
        DatasetInfo(
            name="edges2handbags",
            natural_direction="AtoB",
            description="iGAN handbags, edges (left) -> photo (right). No jitter or mirroring.",
            md5="815592f22fa7f7534a286a25bb73bf03",
            overrides={
                "epochs": 15,
                "batch_size": 4,
                "random_jitter": False,
                "random_mirror": False,
            },
        ),
        DatasetInfo(
            name="night2day",
            natural_direction="AtoB",
            description="Transient Attributes webcams, night (left) <-> day (right).",
            md5="fd21b1d447a1f927fed41aabedd85baa",
            splits=("train", "val", "test"),
            overrides={"epochs": 17, "batch_size": 4},
        ),
    )
}

# A user's own data: `--dataset folder --source_dir DIR`, see pix2pix_tf/data/datasets/folder.py.
FOLDER_DATASET = "folder"
# How a folder's files pair up; `auto` detects it (see datasets/folder.py).
FOLDER_LAYOUTS = ("auto", "side_by_side", "ab", "suffix")


def parse_pair_suffixes(text: str) -> tuple[str, str]:
    """`_input,_target` -> ("_input", "_target"); raises ValueError naming the flag."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 2 or not all(parts) or parts[0].lower() == parts[1].lower():
        raise ValueError(
            f"--pair_suffixes must be two different file-name suffixes IN,OUT "
            f"(e.g. _input,_target), got {text!r}."
        )
    return parts[0], parts[1]


def dataset_info(name: str) -> DatasetInfo:
    """Returns the registry entry for `name`, or a user-folder entry."""
    if name in DATASETS:
        return DATASETS[name]
    if name == FOLDER_DATASET:
        return DatasetInfo(
            name=FOLDER_DATASET,
            natural_direction="AtoB",
            description="Your own pairs: side-by-side images, or A/ and B/ folders paired by name.",
        )
    known = ", ".join([*DATASETS, FOLDER_DATASET])
    raise ValueError(f"--dataset: unknown dataset {name!r}; choose one of: {known}.")


# ---------------------------------------------------------------------------
# The configuration tree.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DataConfig:
    dataset: str = "synthetic"  # One of the datasets listed below.
    # Where prepared TFRecords live (a TFDS data_dir).
    data_dir: str = "tfrecords"
    # Where archives you already have are looked up (`<name>.tar.gz`);
    # defaults to $PIX2PIX_MANUAL_DIR.
    manual_dir: str | None = None
    # For `--dataset folder`: a directory of side-by-side pairs, of A/ and B/, or
    # of suffix-paired files (`x_input.jpg` + `x_target.jpg`).
    source_dir: str | None = None
    # How --source_dir pairs its files: auto | side_by_side | ab (A/ and B/
    # folders) | suffix (`NAME<IN>.ext` + `NAME<OUT>.ext`); auto detects it.
    folder_layout: str = "auto"
    # IN,OUT file-name suffixes of suffix-paired files, e.g. `_input,_target`;
    # IN is stored as A (so AtoB maps IN -> OUT). None: the known pairs.
    pair_suffixes: str | None = None
    # AtoB: left half is the input. None picks the dataset's natural direction.
    direction: str | None = None
    image_size: int = 256  # Training and output size (square).
    # Jitter resizes to load_size, then crops image_size at random.
    load_size: int | None = None  # None: round(image_size * 286 / 256).
    random_jitter: bool = True  # The paper's resize-and-crop jitter.
    random_mirror: bool = True  # Random left-right flips.
    shuffle_buffer: int = 400  # Examples in the training shuffle buffer.
    # Training keeps the decoded images in memory (width x height x 3 bytes per
    # pair) and skips JPEG decoding after the first pass; see input_cache.py.
    cache_decoded: bool = False
    # Examples generated for the embedded synthetic dataset, and the seed they
    # are rendered from; each (sizes, seed) is prepared into its own folder.
    synthetic_train_examples: int = 400
    synthetic_val_examples: int = 50  # See synthetic_train_examples.
    synthetic_seed: int = 0  # See synthetic_train_examples.


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    # `paper` follows the paper; `tutorial` reproduces the TensorFlow tutorial.
    arch: str = "paper"
    norm: str = "batch"  # batch | instance
    ngf: int = 64  # Generator filters in the first layer.
    ndf: int = 64  # Discriminator filters in the first layer.
    # U-Net downsamplings; None derives log2(image_size) (256 -> 8, 128 -> 7).
    unet_depth: int | None = None
    # PatchGAN strided layers: 0 -> 1x1 (PixelGAN), 1 -> 16x16, 2 -> 34x34,
    # 3 -> 70x70 (the paper's default), 4 -> 142x142, 5 -> 286x286.
    discriminator_layers: int = 3
    # Dropout on the first three decoder blocks, the generator's only noise.
    dropout: float = 0.5


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    # Where checkpoints, config.json and TensorBoard events go. None derives
    # `checkpoints/<dataset>[-<preset>]`, so rerunning a command resumes it.
    workdir: str | None = None
    # Total training steps; None derives it from `epochs` and the train split size.
    steps: int | None = None
    epochs: int = 200  # Passes over the train split, when steps is None.
    batch_size: int = 1  # Global batch (split across replicas).
    learning_rate: float = 2e-4  # Adam, as in the paper.
    beta_1: float = 0.5  # Adam's first-moment decay, as in the paper.
    # Learning rate is constant, then decays linearly to zero over this
    # fraction of the steps (the paper's code: 100 + 100 epochs).
    lr_decay_fraction: float = 0.5
    lambda_l1: float = 100.0  # Weight of the L1 term in the generator loss.
    gan_mode: str = "vanilla"  # vanilla (sigmoid cross-entropy) | lsgan
    # float32 | mixed_bfloat16 | mixed_float16 | auto (bfloat16 on TPUs and on
    # CPUs with AMX or AVX512-BF16, else float32).
    precision: str = "float32"
    seed: int = 0  # Initial weights, input order, jitter and dropout.
    # Deterministic ops (slower); makes resumed runs bit-identical.
    deterministic: bool = False
    log_every: int = 100  # Scalars to TensorBoard and the progress bar.
    image_every: int = 1000  # Sample grid to TensorBoard and PNG.
    num_sample_images: int = 4  # Validation examples in the sample grid.
    checkpoint_every: int = 1000  # Steps between checkpoints.
    keep_checkpoints: int = 3  # The latest N checkpoints are kept.
    # Scores the generator on the evaluation split every N steps (L1, PSNR, SSIM,
    # and the FCN-score when a segmenter is trained) into TensorBoard; 0: never.
    eval_every: int = 0
    eval_examples: int | None = None  # Examples per periodic evaluation; None: all.
    # auto (TPU with --tpu, Mirrored with several GPUs, else default) | default |
    # mirrored | multi_worker (TF_CONFIG) | tpu
    strategy: str = "auto"
    tpu: str | None = None  # TPU name or address for TPUStrategy; `local` on a TPU VM.
    # Batch-norm statistics over the global batch across replicas.
    sync_batch_norm: bool = False
    # Train steps per tf.function call (never across a log/sample/checkpoint step).
    steps_per_execution: int = 1
    jit_compile: bool = False  # XLA-compile the step (slower on CPU).
    # The U-Net's convolutions over small maps (forward pass and gradients) as
    # matmuls of patches (pix2pix_tf/models/conv.py); same values, faster on
    # CPU. GPUs and TPUs always use Keras' own convolutions.
    matmul_convs: bool = True


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    # The preset this config was built from (recorded for the run name).
    preset: str | None = None

    # -- serialisation ------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        sections = {}
        for section in SECTIONS:
            section_type = _section_type(section)
            raw = dict(values.get(section, {}))
            known = {field.name for field in dataclasses.fields(section_type)}
            unknown = sorted(set(raw) - known)
            if unknown:
                raise ValueError(f"config: unknown {section} fields {unknown}.")
            sections[section] = section_type(**raw)
        return cls(**sections, preset=values.get("preset"))

    @classmethod
    def from_json(cls, path: str) -> Config:
        try:
            with open(path) as file:
                values = json.load(file)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{path}: no config.json here; is this a run directory written by train.py?"
            ) from None
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error}).") from None
        return cls.from_dict(values)

    def save(self, directory: str) -> str:
        """Writes config.json atomically into `directory`; returns its path."""
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "config.json")
        temporary = path + ".tmp"
        with open(temporary, "w") as file:
            file.write(self.to_json() + "\n")
        os.replace(temporary, path)
        return path

    # -- derived values -----------------------------------------------------

    def replace(self, **flat: Any) -> Config:
        """Returns a copy with fields replaced by flat name, e.g. steps=10."""
        updates: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
        for name, value in flat.items():
            if name == "preset":
                continue
            updates[FIELD_SECTION[_check_field(name)]][name] = value
        sections = {
            section: dataclasses.replace(getattr(self, section), **updates[section])
            for section in SECTIONS
        }
        return dataclasses.replace(self, **sections, preset=flat.get("preset", self.preset))

    def resolved(self) -> Config:
        """Fills in values derived from others and validates the result."""
        data, model, train = self.data, self.model, self.train
        info = dataset_info(data.dataset)
        if data.direction is None:
            data = dataclasses.replace(data, direction=info.natural_direction)
        if data.load_size is None:
            data = dataclasses.replace(data, load_size=round(data.image_size * 286 / 256))
        if model.unet_depth is None and _is_power_of_two(data.image_size):
            model = dataclasses.replace(model, unet_depth=int(math.log2(data.image_size)))
        if train.workdir is None:
            run = data.dataset if self.preset is None else f"{data.dataset}-{self.preset}"
            train = dataclasses.replace(train, workdir=os.path.join("checkpoints", run))
        config = dataclasses.replace(self, data=data, model=model, train=train)
        config.validate()
        return config

    def validate(self) -> None:
        """Raises ValueError naming the flag for any inconsistent setting."""
        data, model, train = self.data, self.model, self.train
        dataset_info(data.dataset)
        if data.dataset == FOLDER_DATASET and not data.source_dir:
            raise ValueError("--dataset folder needs --source_dir DIR (your paired images).")
        _check_choice("folder_layout", data.folder_layout, FOLDER_LAYOUTS)
        if data.pair_suffixes is not None:
            parse_pair_suffixes(data.pair_suffixes)
            if data.folder_layout not in ("auto", "suffix"):
                raise ValueError(
                    f"--pair_suffixes needs --folder_layout suffix (or auto), "
                    f"got --folder_layout {data.folder_layout}."
                )
        _check_choice("direction", data.direction, DIRECTIONS, allow_none=True)
        if data.image_size < 16 or not _is_power_of_two(data.image_size):
            raise ValueError(
                f"--image_size must be a power of two >= 16 (e.g. 64, 128, 256), "
                f"got {data.image_size}."
            )
        if data.load_size is not None and data.load_size < data.image_size:
            raise ValueError(
                f"--load_size ({data.load_size}) must be >= --image_size ({data.image_size})."
            )
        for name in ("shuffle_buffer", "synthetic_train_examples", "synthetic_val_examples"):
            if getattr(data, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(data, name)}.")
        _check_choice("arch", model.arch, ("paper", "tutorial"))
        _check_choice("norm", model.norm, ("batch", "instance"))
        for name in ("ngf", "ndf"):
            if getattr(model, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(model, name)}.")
        max_depth = int(math.log2(data.image_size))
        if model.unet_depth is not None and not 1 <= model.unet_depth <= max_depth:
            raise ValueError(
                f"--unet_depth must be between 1 and {max_depth} for --image_size "
                f"{data.image_size}, got {model.unet_depth}."
            )
        if not 0 <= model.discriminator_layers <= 5:
            raise ValueError(
                f"--discriminator_layers must be between 0 and 5, got {model.discriminator_layers}."
            )
        # The PatchGAN halves the image per strided layer, then needs a 4x4 map
        # for its two stride-1 4x4 convolutions.
        if model.discriminator_layers and data.image_size < 4 * 2**model.discriminator_layers:
            raise ValueError(
                f"--discriminator_layers {model.discriminator_layers} needs --image_size >= "
                f"{4 * 2**model.discriminator_layers}, got {data.image_size}."
            )
        if not 0.0 <= model.dropout < 1.0:
            raise ValueError(f"--dropout must be in [0, 1), got {model.dropout}.")
        if train.steps is not None and train.steps < 1:
            raise ValueError(f"--steps must be >= 1, got {train.steps}.")
        for name in (
            "epochs",
            "batch_size",
            "log_every",
            "image_every",
            "checkpoint_every",
            "keep_checkpoints",
            "num_sample_images",
            "steps_per_execution",
        ):
            if getattr(train, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(train, name)}.")
        if train.eval_every < 0:
            raise ValueError(f"--eval_every must be >= 0 (0: never), got {train.eval_every}.")
        if train.eval_examples is not None and train.eval_examples < 1:
            raise ValueError(f"--eval_examples must be >= 1, got {train.eval_examples}.")
        if train.learning_rate <= 0:
            raise ValueError(f"--learning_rate must be > 0, got {train.learning_rate}.")
        if not 0.0 <= train.lr_decay_fraction <= 1.0:
            raise ValueError(
                f"--lr_decay_fraction must be in [0, 1], got {train.lr_decay_fraction}."
            )
        _check_choice("gan_mode", train.gan_mode, ("vanilla", "lsgan"))
        _check_choice(
            "precision", train.precision, ("float32", "mixed_bfloat16", "mixed_float16", "auto")
        )
        _check_choice(
            "strategy", train.strategy, ("auto", "default", "mirrored", "multi_worker", "tpu")
        )


SECTIONS = ("data", "model", "train")


def _section_type(section: str) -> type:
    return {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}[section]


# Flat field name -> section. Field names are unique across sections, which is
# what lets every field be a flag of the same name.
FIELD_SECTION: dict[str, str] = {
    field.name: section
    for section in SECTIONS
    for field in dataclasses.fields(_section_type(section))
}


def _check_field(name: str) -> str:
    if name not in FIELD_SECTION:
        raise ValueError(f"unknown config field {name!r}.")
    return name


def _check_choice(flag: str, value: Any, choices: tuple, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value not in choices:
        raise ValueError(f"--{flag} must be one of {', '.join(choices)}; got {value!r}.")


def _is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


# ---------------------------------------------------------------------------
# Presets: named overrides on top of the dataset's defaults.
# ---------------------------------------------------------------------------

PRESETS: dict[str, dict[str, Any]] = {
    # Drives the tests and CPU smoke runs: 64x64, a shallow U-Net, few filters.
    "tiny": {
        "image_size": 64,
        "load_size": 72,
        "ngf": 8,
        "ndf": 8,
        "unet_depth": 4,
        "discriminator_layers": 2,
        "steps": 2,
        "log_every": 1,
        "image_every": 1,
        "checkpoint_every": 1,
        "synthetic_train_examples": 16,
        "synthetic_val_examples": 4,
    },
    # The documented CPU experiment on real data (e.g. `--dataset cityscapes`): 128x128,
    # a 7-level U-Net and the 70x70 PatchGAN at half the filters, batch 1 as in the
    # paper, 30k steps (about 10 Cityscapes epochs), within an hour on 2 CPU cores.
    "cpu128": {
        "image_size": 128,
        "ngf": 32,
        "ndf": 32,
        "batch_size": 1,
        "steps": 30000,
        "log_every": 100,
        "image_every": 2000,
        "checkpoint_every": 2000,
    },
    # The README's first run: a few minutes on 2 CPU cores. 128x128 with a full
    # 7-level U-Net and the 70x70 PatchGAN, but a quarter of the filters.
    "quick": {
        "image_size": 128,
        "ngf": 16,
        "ndf": 16,
        "batch_size": 4,
        "steps": 2000,
        "log_every": 100,
        "image_every": 500,
        "checkpoint_every": 500,
    },
}


def preset_help() -> str:
    lines = []
    for name, values in PRESETS.items():
        pairs = ", ".join(f"{key}={value}" for key, value in values.items())
        lines.append(f"  {name}: {pairs}")
    return "\n".join(lines)


def datasets_help() -> str:
    return "\n".join(f"  {info.name}: {info.description}" for info in DATASETS.values()) + (
        f"\n  {FOLDER_DATASET}: your own pairs (--source_dir DIR)."
    )


# ---------------------------------------------------------------------------
# Command-line flags, generated from the dataclasses.
# ---------------------------------------------------------------------------


def _flag_type(annotation: Any) -> tuple[type, bool]:
    """Returns (scalar type, optional) for a field's annotation."""
    hint = annotation
    if isinstance(hint, str):
        hint = eval(hint, {"dict": dict})  # Annotations are postponed strings.
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        arguments = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        optional = len(arguments) < len(typing.get_args(hint))
        hint = arguments[0]
    return hint, optional


def _parse_optional(scalar: type):
    def parse(text: str):
        if text.lower() in ("none", "null", ""):
            return None
        return scalar(text)

    parse.__name__ = scalar.__name__
    return parse


@functools.cache
def field_comments(section_type: type) -> dict[str, str]:
    """The comments written beside or above each field of a config dataclass.

    They are the flags' help text, so the documentation lives in one place.
    """
    comments: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(section_type).splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        name, colon, rest = stripped.partition(":")
        if colon and name.isidentifier() and "=" in rest:
            beside = rest.partition("#")[2].strip() if "#" in rest else ""
            text = " ".join([*pending, beside]).strip()
            if text:
                comments[name] = text
        pending = []
    return comments


def add_config_flags(parser: argparse.ArgumentParser, only: tuple[str, ...] = SECTIONS) -> None:
    """Adds one flag per config field (default None = not given)."""
    for section in only:
        group = parser.add_argument_group(f"{section} config")
        section_type = _section_type(section)
        comments = field_comments(section_type)
        for field in dataclasses.fields(section_type):
            scalar, optional = _flag_type(field.type)
            default = field.default
            help_text = f"{comments.get(field.name, '')} (default: {default})".strip()
            help_text = help_text.replace("%", "%%")  # argparse formats help with %.
            if scalar is bool:
                group.add_argument(
                    f"--{field.name}",
                    action=argparse.BooleanOptionalAction,
                    default=None,
                    help=help_text,
                )
                continue
            parse = _parse_optional(scalar) if optional else scalar
            group.add_argument(
                f"--{field.name}",
                type=parse,
                default=None,
                metavar=scalar.__name__.upper(),
                help=help_text,
            )


def add_preset_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        default=None,
        choices=sorted(PRESETS),
        help="Named overrides applied on top of the dataset's defaults.",
    )


def build_config(dataset: str | None = None, preset: str | None = None, **overrides: Any) -> Config:
    """Builds a resolved config: defaults <- dataset <- preset <- overrides."""
    config = Config()
    name = dataset or config.data.dataset
    config = config.replace(dataset=name, **dataset_info(name).overrides)
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(
                f"--preset: unknown preset {preset!r}; choose one of {sorted(PRESETS)}."
            )
        config = config.replace(**PRESETS[preset], preset=preset)
    explicit = {key: value for key, value in overrides.items() if value is not None}
    # An explicit --epochs means the step count is derived from it.
    if "epochs" in explicit and "steps" not in explicit:
        explicit["steps"] = None
    return config.replace(**explicit).resolved()


def config_from_args(args: argparse.Namespace) -> Config:
    """Builds a resolved config from flags made by add_config_flags."""
    values = {
        name: getattr(args, name) for name in FIELD_SECTION if getattr(args, name, None) is not None
    }
    dataset = values.pop("dataset", None)
    return build_config(dataset=dataset, preset=getattr(args, "preset", None), **values)
