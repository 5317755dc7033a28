"""The generator by name (--generator), what each one needs of an input's size, and what a
train step computes and updates with it (--stage, --remat); the discriminator for the pairs
a step shows it.

Training, export, evaluation and the benchmarks build the models through
`build_generator` and `build_discriminator`, with plain keyword values
(pix2pix_tf/configs/arguments.py maps a Config to them); training/step.py computes the
generated images with `generator_pass` and updates `generator_variables`.
"""

from __future__ import annotations

import keras

from pix2pix_tf.configs import choices, sizes
from pix2pix_tf.models import blocks, global_local, multiscale, resnet
from pix2pix_tf.models import remat as remat_lib
from pix2pix_tf.models.generator import build_unet

# The builder of each --generator; every one takes its own keyword arguments.
_BUILDERS = {
    "unet": build_unet,
    "resnet": resnet.build_resnet,
    "global_local": global_local.build_global_local,
}


def build_generator(*, generator: str = "unet", remat: bool = False, **arguments) -> keras.Model:
    """Builds the `generator` (unet, resnet or global_local): `input_image` [batch, H, W,
    in_channels] in [-1, 1] -> [batch, H, W, out_channels] in [-1, 1], float32.

    `arguments` are the keyword arguments of that generator's builder
    (models/generator.py's build_unet, models/resnet.py's build_resnet,
    models/global_local.py's build_global_local), such as `image_hw`, `in_channels`,
    `out_channels`, `ngf`, `dtype_policy` (the hidden layers' compute precision) and
    `input_shape`: (height, width, channels), where height and width may be None, builds
    the same layers (same weights and checkpoint layout) for other sizes. Every
    generator is fully convolutional, so sides that are multiples of `pad_multiple`
    come back at their own size. configs.generator_arguments(config) gives them for a
    Config:

        models.build_generator(**configs.generator_arguments(config), dtype_policy=policy)

    With `remat` (--remat) the generator is recomputed in segments in the backward
    pass (models/remat.py): a U-Net level, a ResNet unit, three residual blocks; the
    backward pass keeps only the tensors between segments. Batch norm's moving
    statistics are updated once and dropout draws the same masks as without it. The
    variables, and so checkpoints, are the same with and without it.
    """
    choices.check_choice("generator", generator, choices.GENERATORS)
    model = _BUILDERS[generator](**arguments)
    if not remat:
        return model
    return remat_lib.segmented(model, generator=generator)


def pad_multiple(*, generator: str = "unet", unet_depth: int | None = None) -> int:
    """What each side of an input is padded to a multiple of, for the generator to run
    at (and return) that size: 2^unet_depth (the U-Net's resolved depth, which it
    needs), 4 (resnet) or 32 (global_local)."""
    choices.check_choice("generator", generator, choices.GENERATORS)
    if generator == "unet" and unet_depth is None:
        raise ValueError("The U-Net's pad multiple needs its resolved --unet_depth.")
    return sizes.generator_multiple(generator, unet_depth)


def _global_stage(generator: str, stage: str) -> bool:
    """Whether a step trains the global network alone at half size."""
    return generator == "global_local" and stage == "global"


def generator_pass(
    model: keras.Model,
    inputs,
    targets,
    *,
    generator: str = "unet",
    stage: str = "joint",
    training: bool = True,
):
    """(generated, inputs for the discriminator, targets for the discriminator) of a step
    of the `generator` named (--generator) `model` in `stage` (--stage).

    The `global` stage of a global_local run trains the global network alone at half
    size: its head's image, with inputs and targets average-pooled to H/2 x W/2 as
    pix2pixHD does. Every other case is the generator at full size.
    """
    if _global_stage(generator, stage):
        generated = global_local.global_network(model)(inputs, training=training)
        return generated, blocks.downsample(inputs), blocks.downsample(targets)
    return model(inputs, training=training), inputs, targets


def generator_variables(
    model: keras.Model, *, generator: str = "unet", stage: str = "joint"
) -> list:
    """The variables of the `generator` named (--generator) `model` a step updates in
    `stage` (--stage): the global network's in the `global` stage, the local enhancer's
    in `local` (global weights frozen), else all (but the global network's head, which
    only the global stage uses)."""
    if generator != "global_local":
        return model.trainable_variables
    # The global head only draws the global stage's image.
    chosen = {
        id(variable)
        for layer in model.layers
        if (stage == "joint" and not global_local.is_global_head(layer))
        or (stage == "global" and global_local.is_global_layer(layer))
        or (stage == "local" and not global_local.is_global_layer(layer))
        for variable in layer.trainable_variables
    }
    return [variable for variable in model.trainable_variables if id(variable) in chosen]


def discriminator_image_hw(
    *, image_hw: tuple[int, int], generator: str = "unet", stage: str = "joint"
) -> tuple[int, int]:
    """The (height, width) of the pairs a step shows the discriminator for a training
    size `image_hw`: half of it in the `global` stage of a global_local run."""
    if _global_stage(generator, stage):
        height, width = image_hw
        return height // 2, width // 2
    return tuple(image_hw)


def build_discriminator(
    *,
    image_hw: tuple[int, int],
    generator: str = "unet",
    stage: str = "joint",
    **arguments,
) -> keras.Model:
    """models/multiscale.py's discriminator(s) for the pairs a step of `generator`
    (--generator) in `stage` (--stage) shows them, at `discriminator_image_hw`; their
    weights do not depend on the size.

    `arguments` are build_multiscale_discriminator's: `in_channels`, `out_channels`,
    `ndf`, `layers`, `norm`, `arch`, `num_discriminators`, `sync_batch_norm` and
    `dtype_policy`. configs.discriminator_arguments(config) gives them for a Config.
    """
    size = discriminator_image_hw(image_hw=image_hw, generator=generator, stage=stage)
    return multiscale.build_multiscale_discriminator(image_hw=size, **arguments)
