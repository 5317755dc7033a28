"""The one bridge from a Config to the keyword arguments of pix2pix_tf/models/.

The models take plain typed values, never a Config; these functions read them from a
resolved config or one loaded from a run's config.json, each returning the keyword
arguments of one models/ function:

    models.build_generator(**generator_arguments(config), dtype_policy=policy)
    models.build_discriminator(**discriminator_arguments(config), dtype_policy=policy)
    models.pad_multiple(**pad_multiple_arguments(config))
    models.generator_pass(generator, inputs, targets, **stage_arguments(config))
    models.generator_variables(generator, **stage_arguments(config))

The U-Net's depth comes from sizes.unet_depth, its one derivation (config.json files of
earlier versions may hold None). A pure data mapping: this module imports neither
models/ nor TensorFlow, so that every --help answers at once.
"""

from __future__ import annotations

from typing import Any

from pix2pix_tf.configs import sizes
from pix2pix_tf.configs.schema import Config


def _unet_depth(config: Config) -> int:
    """--unet_depth, or log2 of the smaller side when None; raises ValueError naming
    the flags if it does not fit --image_size."""
    return sizes.unet_depth(config.data.image_size, config.model.unet_depth)


def generator_arguments(config: Config) -> dict[str, Any]:
    """The keyword arguments of models.build_generator for `config`'s --generator.

    `generator` and `remat`, then exactly the arguments of that generator's builder
    (models/generator.py's build_unet, models/resnet.py's build_resnet,
    models/global_local.py's build_global_local), at the training size.
    """
    data, model, train = config.data, config.model, config.train
    arguments: dict[str, Any] = {
        "generator": model.generator,
        "remat": train.remat,
        "image_hw": sizes.image_hw(data),
        "in_channels": data.input_channels,
        "out_channels": data.output_channels,
        "ngf": model.ngf,
        "norm": model.norm,
        "sync_batch_norm": train.sync_batch_norm,
    }
    if model.generator == "unet":
        arguments.update(
            depth=_unet_depth(config),
            dropout=model.dropout,
            arch=model.arch,
            matmul_convs=train.matmul_convs,
        )
    elif model.generator == "resnet":
        arguments.update(residual_blocks=model.resnet_blocks, dropout=model.dropout)
    else:
        arguments.update(residual_blocks=model.resnet_blocks, stage=train.stage)
    return arguments


def discriminator_arguments(config: Config) -> dict[str, Any]:
    """The keyword arguments of models.build_discriminator: the PatchGAN(s) of `config`
    at the training size, and the --generator and --stage that decide the size of the
    pairs a step shows them."""
    data, model, train = config.data, config.model, config.train
    return {
        "generator": model.generator,
        "stage": train.stage,
        "image_hw": sizes.image_hw(data),
        "in_channels": data.input_channels,
        "out_channels": data.output_channels,
        "ndf": model.ndf,
        "layers": model.discriminator_layers,
        "norm": model.norm,
        "arch": model.arch,
        "num_discriminators": model.num_discriminators,
        "sync_batch_norm": train.sync_batch_norm,
    }


def pad_multiple_arguments(config: Config) -> dict[str, Any]:
    """The keyword arguments of models.pad_multiple: --generator and, for the U-Net,
    its resolved depth (None for the other generators, which do not use it)."""
    generator = config.model.generator
    return {
        "generator": generator,
        "unet_depth": _unet_depth(config) if generator == "unet" else None,
    }


def stage_arguments(config: Config) -> dict[str, Any]:
    """The keyword arguments of models.generator_pass and models.generator_variables:
    --generator and --stage."""
    return {"generator": config.model.generator, "stage": config.train.stage}
