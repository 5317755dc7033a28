"""The pix2pix datasets as TensorFlow Datasets builders.

    berkeley.py    the six Berkeley archives (download or manual archive)
    synthetic.py   the embedded procedural street scenes (streets.py renders them)
    folder.py      your own pairs
    base.py        the record format, shard sizes, skipped-file bookkeeping
    images.py      checking and converting one source image
    archive.py     safe tar scanning and extraction

Which builder prepares a dataset is its `builder` in the dataset table
(`pix2pix_tf/data/registry.py`).

Prepared data lives in `<data_dir>/<builder>/<config>/<version>/`, e.g.
`tfrecords/berkeley/cityscapes/1.0.0/`: sharded TFRecord files plus TFDS'
`dataset_info.json` (split sizes, shard lengths) and `metadata.json` (skipped
and converted files, the source). `tfds.builder_from_directory` reads it too.
"""

from __future__ import annotations

import dataclasses
import os

from pix2pix_tf import configs as config_lib
from pix2pix_tf.data import registry
from pix2pix_tf.data.datasets import base, berkeley, folder, synthetic


def manual_dir(data_config: config_lib.DataConfig) -> str:
    """Where archives the user already has are looked up."""
    directory = data_config.manual_dir or os.environ.get(registry.MANUAL_DIR_ENV)
    if not directory:
        directory = os.path.join(data_config.data_dir, "downloads", "manual")
    return os.path.abspath(os.path.expanduser(directory))


@dataclasses.dataclass(frozen=True)
class Location:
    """Where the dataset a DataConfig selects is (or will be) prepared."""

    # The builder class (berkeley.Berkeley, synthetic.SyntheticStreets, folder.Folder)
    # and its config name (e.g. "cityscapes", "train400_val50_seed0").
    builder_class: type
    config_name: str
    # <data_dir>/<builder>/<config>/<version>: the directory TFDS writes, the
    # builder's `data_dir` (tests/data/test_prepare.py checks the two agree).
    directory: str

    @property
    def name(self) -> str:
        """`<builder>-<config>`, e.g. for the lock file."""
        return f"{self.builder_class.name}-{self.config_name}"


def locate(data_config: config_lib.DataConfig) -> Location:
    """The builder and prepared directory of the dataset `data_config` selects.

    Derived from the builder's class, not an instance: a Folder builder scans its
    source folder when it is made, and reading a prepared copy must not need the
    source (it may be gone).
    """
    info = registry.dataset_info(data_config.dataset)
    if info.builder == registry.SYNTHETIC:
        builder_class = synthetic.SyntheticStreets
        config_name = synthetic.config_name(
            data_config.synthetic_train_examples,
            data_config.synthetic_val_examples,
            data_config.synthetic_seed,
            synthetic.half_size(data_config.image_size),
        )
    elif info.builder == registry.FOLDER:
        if not data_config.source_dir:
            raise base.PrepareError("--dataset folder needs --source_dir DIR (your pairs).")
        builder_class, config_name = folder.Folder, folder.config_name(data_config.source_dir)
    else:
        builder_class, config_name = berkeley.Berkeley, info.name
    directory = os.path.join(
        os.path.abspath(data_config.data_dir),
        builder_class.name,
        config_name,
        str(builder_class.VERSION),
    )
    return Location(builder_class, config_name, directory)


def get_builder(data_config: config_lib.DataConfig, location: Location) -> base.PairBuilder:
    """The TFDS builder that prepares `location` (data_config.data_dir's copy of it)."""
    data_dir = os.path.abspath(data_config.data_dir)
    builder = registry.dataset_info(data_config.dataset).builder
    if builder == registry.FOLDER:
        return location.builder_class(
            source_dir=data_config.source_dir,
            folder_layout=data_config.folder_layout,
            pair_suffixes=data_config.pair_suffixes,
            data_dir=data_dir,
        )
    if builder == registry.SYNTHETIC:
        return location.builder_class(config=location.config_name, data_dir=data_dir)
    return location.builder_class(
        config=location.config_name, data_dir=data_dir, manual_dir=manual_dir(data_config)
    )
