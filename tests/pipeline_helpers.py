"""The input pipeline called from a DataConfig, as the trainer calls it.

The tests vary DataConfig fields (direction, sizes, jitter, caching) and read the
batches; these helpers prepare (or reuse) the dataset the config selects and pass
its resolved value and the config's training choices to data/pipeline.py.
"""

from __future__ import annotations

from pix2pix_tf import configs as config_lib
from pix2pix_tf.configs import sizes
from pix2pix_tf.data import pipeline as input_pipeline
from pix2pix_tf.data import prepare


def build(data_config: config_lib.DataConfig, split: str, **kwargs):
    """build_dataset over the prepared `data_config` with its training choices."""
    options = {**data_config.training_input(), **kwargs}
    return input_pipeline.build_dataset(prepare.prepare(data_config), split, **options)


def split_files(data_config: config_lib.DataConfig, split: str) -> tuple[list[str], bool]:
    """(sorted shard paths, whether examples are side-by-side pairs)."""
    dataset = prepare.prepare(data_config)
    return dataset.files(split), dataset.shards(split).side_by_side


def num_examples(data_config: config_lib.DataConfig, split: str) -> int:
    return prepare.prepare(data_config).num_examples(split)


def train_arguments(data_config: config_lib.DataConfig) -> dict:
    """preprocess_train's keyword arguments for `data_config`."""
    image_hw = sizes.image_hw(data_config)
    return {
        "image_hw": image_hw,
        "load_hw": sizes.load_hw(data_config) if data_config.random_jitter else image_hw,
        "resize_mode": data_config.resize_mode,
        "random_mirror": data_config.random_mirror,
    }


def eval_arguments(data_config: config_lib.DataConfig) -> dict:
    """preprocess_eval's keyword arguments for `data_config`."""
    return {"image_hw": sizes.image_hw(data_config), "resize_mode": data_config.resize_mode}


def resolve_formats(data_config: config_lib.DataConfig, kinds: dict | None):
    """formats.resolve for `data_config`: ((input bits, output bits), notes)."""
    from pix2pix_tf.data import formats

    return formats.resolve(
        kinds,
        direction=data_config.direction,
        channels=(data_config.input_channels, data_config.output_channels),
        bits=(data_config.input_bits, data_config.output_bits),
        dataset=data_config.dataset,
        data_dir=data_config.data_dir,
    )
