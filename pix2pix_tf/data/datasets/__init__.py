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

import os

from pix2pix_tf import configs as config_lib
from pix2pix_tf.data import registry
from pix2pix_tf.data.datasets import base


def manual_dir(data_config: config_lib.DataConfig) -> str:
    """Where archives the user already has are looked up."""
    directory = data_config.manual_dir or os.environ.get(registry.MANUAL_DIR_ENV)
    if not directory:
        directory = os.path.join(data_config.data_dir, "downloads", "manual")
    return os.path.abspath(os.path.expanduser(directory))


def builder_location(data_config: config_lib.DataConfig) -> tuple[str, str]:
    """(builder name, config name) of the dataset `data_config` selects."""
    builder_class, config_name = _builder_class(data_config)
    return builder_class.name, config_name


def _builder_class(data_config: config_lib.DataConfig) -> tuple[type, str]:
    # Only the selected builder's module is imported: each brings its own libraries
    # (the archive reader, the renderer, the folder scanner) that the others never need.
    info = registry.dataset_info(data_config.dataset)
    if info.builder == registry.SYNTHETIC:
        from pix2pix_tf.data.datasets import synthetic

        return synthetic.SyntheticStreets, synthetic.config_name(
            data_config.synthetic_train_examples,
            data_config.synthetic_val_examples,
            data_config.synthetic_seed,
            synthetic.half_size(data_config.image_size),
        )
    if info.builder == registry.FOLDER:
        from pix2pix_tf.data.datasets import folder

        if not data_config.source_dir:
            raise base.PrepareError("--dataset folder needs --source_dir DIR (your pairs).")
        return folder.Folder, folder.config_name(data_config.source_dir)
    from pix2pix_tf.data.datasets import berkeley

    return berkeley.Berkeley, info.name


def prepared_dir(data_config: config_lib.DataConfig) -> str:
    """The directory holding the prepared TFRecords (it may not exist yet)."""
    builder_class, config_name = _builder_class(data_config)
    return os.path.join(
        os.path.abspath(data_config.data_dir),
        builder_class.name,
        config_name,
        str(builder_class.VERSION),
    )


def get_builder(data_config: config_lib.DataConfig) -> base.PairBuilder:
    """The TFDS builder that prepares the dataset `data_config` selects."""
    data_dir = os.path.abspath(data_config.data_dir)
    builder_class, config_name = _builder_class(data_config)
    builder = registry.dataset_info(data_config.dataset).builder
    if builder == registry.SYNTHETIC:
        return builder_class(config=config_name, data_dir=data_dir)
    if builder == registry.FOLDER:
        return builder_class(
            source_dir=data_config.source_dir,
            folder_layout=data_config.folder_layout,
            pair_suffixes=data_config.pair_suffixes,
            data_dir=data_dir,
        )
    return builder_class(config=config_name, data_dir=data_dir, manual_dir=manual_dir(data_config))
