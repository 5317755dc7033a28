"""One typed configuration for pix2pix-tf: the schema, presets, size rules and choices.

Resolution order, later wins:

    Config() defaults (the paper's settings)         schema.py
      <- registry.DATASETS[name].overrides   (what the paper used for that dataset)
      <- presets.PRESETS[name](config)       (named overrides, e.g. `tiny` for tests)
      <- command-line flags                  (every field is a flag of the same name)

`build_config` (presets.py) applies them and resolves the result. The schema knows no
preset; the presets are code built on the schema. The size rules, with the one
derivation of the U-Net's depth, are in sizes.py, the choice lists in choices.py. The
resolved config is saved as `config.json` next to the checkpoints; export, evaluation
and resume read it back with `Config.from_json`. arguments.py is the one bridge from a
Config to the plain keyword arguments of pix2pix_tf/models/ (`generator_arguments`,
`discriminator_arguments`, `pad_multiple_arguments`, `stage_arguments`). Nothing here
imports TensorFlow.
"""

from pix2pix_tf.configs.arguments import (
    discriminator_arguments,
    generator_arguments,
    pad_multiple_arguments,
    stage_arguments,
)
from pix2pix_tf.configs.presets import PRESETS, build_config
from pix2pix_tf.configs.schema import (
    CONFIG_FILE,
    FIELD_SECTION,
    SECTION_TYPES,
    SECTIONS,
    Config,
    DataConfig,
    ModelConfig,
    TrainConfig,
    bit_depths,
    parse_pair_suffixes,
)
from pix2pix_tf.configs.sizes import image_hw, load_hw

__all__ = [
    "CONFIG_FILE",
    "FIELD_SECTION",
    "PRESETS",
    "SECTIONS",
    "SECTION_TYPES",
    "Config",
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "bit_depths",
    "build_config",
    "discriminator_arguments",
    "generator_arguments",
    "image_hw",
    "load_hw",
    "pad_multiple_arguments",
    "parse_pair_suffixes",
    "stage_arguments",
]
