"""The dataset table: every fact the project knows about a dataset, in one entry each.

Config validation and defaults, the builder dispatch (`datasets/__init__.py`), the
Berkeley builder (URL, checksum, content check), `--help` and the evaluation (which
datasets use the Cityscapes palette) all read `DATASETS`. Adding a Berkeley-style
dataset is one entry here. This module imports only the standard library, so the
command lines can list the datasets without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
import types
from collections.abc import Mapping
from typing import Any

# Where the Berkeley archives are published; `{name}` is the dataset name.
BERKELEY_INDEX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/"
BERKELEY_URL = BERKELEY_INDEX_URL + "{name}.tar.gz"
# Overrides the download location of the Berkeley archives, e.g. a local mirror.
# `{name}` is replaced by the dataset name.
URL_ENV = "PIX2PIX_DATASET_URL"
# Directory holding archives the user already has (`<name>.tar.gz`).
MANUAL_DIR_ENV = "PIX2PIX_MANUAL_DIR"

# Which builder in `pix2pix_tf/data/datasets/` prepares a dataset.
BERKELEY = "berkeley"
SYNTHETIC = "synthetic"
FOLDER = "folder"
BUILDERS = (BERKELEY, SYNTHETIC, FOLDER)

# A user's own data: `--dataset folder --source_dir DIR`, see data/datasets/folder.py.
FOLDER_DATASET = "folder"


def _read_only(values: Mapping | None = None) -> Mapping:
    return types.MappingProxyType(dict(values or {}))


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What the project knows about a dataset before reading it."""

    name: str
    # One of BUILDERS.
    builder: str
    # Which half is the input: A is the left half of each side-by-side pair.
    natural_direction: str
    description: str
    # Published MD5 of the Berkeley archive; None for datasets we generate or own.
    md5: str | None = None
    # Splits as they appear in the archive, and the split used for evaluation.
    splits: tuple[str, ...] = ("train", "val")
    eval_split: str = "val"
    # The archive's content check: images per split and the (width, height) of every
    # pair. Only values measured on the real archive are listed; other splits are
    # checked for being present and non-empty.
    expected_counts: Mapping[str, int] = dataclasses.field(default_factory=_read_only)
    pair_size: tuple[int, int] | None = None
    # Label maps in the Cityscapes palette, so the FCN-score applies.
    cityscapes_palette: bool = False
    # Settings from the paper's appendix (section 6.2) for this dataset, by config field.
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=_read_only)

    @property
    def url(self) -> str | None:
        """The archive's download URL ($PIX2PIX_DATASET_URL overrides the host), or None."""
        if self.builder != BERKELEY:
            return None
        template = os.environ.get(URL_ENV, BERKELEY_URL)
        return template.format(name=self.name)


def _entry(**values: Any) -> DatasetInfo:
    """A table entry whose mappings cannot be changed by accident."""
    for name in ("expected_counts", "overrides"):
        values[name] = _read_only(values.get(name))
    return DatasetInfo(**values)


# The paper trains the Berkeley datasets for 200 epochs at batch 1, except where noted.
_PAPER_SETTINGS = {"epochs": 200, "batch_size": 1}
# Edges -> photo datasets: batch 4, 15 epochs, no jitter or mirroring.
_EDGES_SETTINGS = {"epochs": 15, "batch_size": 4, "random_jitter": False, "random_mirror": False}

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        _entry(
            name="synthetic",
            builder=SYNTHETIC,
            natural_direction="BtoA",
            description=(
                "Embedded procedural street scenes in the Cityscapes palette, "
                "label map (right) -> photo (left); generated locally, no download."
            ),
            cityscapes_palette=True,
            overrides={"epochs": 20},
        ),
        _entry(
            name="facades",
            builder=BERKELEY,
            natural_direction="BtoA",
            description="CMP Facades, label map (right) -> photo (left). 400 train.",
            md5="e2e25dd517e9d15828416ab329da2854",
            splits=("train", "val", "test"),
            overrides=_PAPER_SETTINGS,
        ),
        _entry(
            name="cityscapes",
            builder=BERKELEY,
            natural_direction="BtoA",
            description="Cityscapes, label map (right) -> photo (left). 2975 train, 500 val.",
            md5="32569df708076e427e9cd02abbca7748",
            expected_counts={"train": 2975, "val": 500},
            pair_size=(512, 256),
            cityscapes_palette=True,
            overrides=_PAPER_SETTINGS,
        ),
        _entry(
            name="maps",
            builder=BERKELEY,
            natural_direction="AtoB",
            description="Google Maps, aerial (left) <-> map (right); both directions are used.",
            md5="e5f65d26eb288457f5ac056deb94d154",
            overrides=_PAPER_SETTINGS,
        ),
        _entry(
            name="edges2shoes",
            builder=BERKELEY,
            natural_direction="AtoB",
            description="UT Zappos50K, edges (left) -> photo (right). No jitter or mirroring.",
            md5="71da478b54fedde126e234a2a050bc15",
            overrides=_EDGES_SETTINGS,
        ),
        _entry(
            name="edges2handbags",
            builder=BERKELEY,
            natural_direction="AtoB",
            description="iGAN handbags, edges (left) -> photo (right). No jitter or mirroring.",
            md5="815592f22fa7f7534a286a25bb73bf03",
            overrides=_EDGES_SETTINGS,
        ),
        _entry(
            name="night2day",
            builder=BERKELEY,
            natural_direction="AtoB",
            description="Transient Attributes webcams, night (left) <-> day (right).",
            md5="fd21b1d447a1f927fed41aabedd85baa",
            splits=("train", "val", "test"),
            overrides={"epochs": 17, "batch_size": 4},
        ),
        _entry(
            name=FOLDER_DATASET,
            builder=FOLDER,
            natural_direction="AtoB",
            description=(
                "Your own pairs (--source_dir DIR): side-by-side images, A/ and B/ "
                "folders, or suffix-paired files."
            ),
        ),
    )
}


def dataset_info(name: str) -> DatasetInfo:
    """Returns the table's entry for `name`; raises ValueError naming --dataset."""
    if name in DATASETS:
        return DATASETS[name]
    raise ValueError(f"--dataset: unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}.")


def names(builder: str | None = None) -> tuple[str, ...]:
    """The dataset names in table order, or those prepared by `builder`."""
    return tuple(name for name, info in DATASETS.items() if builder in (None, info.builder))


def palette_datasets() -> tuple[str, ...]:
    """The datasets whose label maps use the Cityscapes palette (the FCN-score's)."""
    return tuple(name for name, info in DATASETS.items() if info.cityscapes_palette)


def datasets_help() -> str:
    """One line per dataset for `--help`."""
    return "\n".join(f"  {info.name}: {info.description}" for info in DATASETS.values())
