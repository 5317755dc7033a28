"""The generator of a config (--generator), what each one needs of an input's size, and
what a train step computes and updates with it (--stage, --remat).

Training, export, evaluation and the benchmarks build generators through
`build_generator`; training/step.py computes the generated images with
`generator_pass` and updates `generator_variables`.
"""

from __future__ import annotations

import inspect

import keras

from pix2pix_tf.configs import choices, sizes
from pix2pix_tf.models import blocks, global_local, multiscale, resnet
from pix2pix_tf.models.generator import build_unet_generator, unet_depth

_BUILDERS = {
    "resnet": resnet.build_resnet_generator,
    "global_local": global_local.build_global_local_generator,
}


def build_generator(
    config, *, dtype_policy: str = "float32", input_shape: tuple | None = None
) -> keras.Model:
    """Builds --generator for `config`: `input_image` [batch, H, W, input_channels] in
    [-1, 1] -> [batch, H, W, output_channels] in [-1, 1], float32.

    `dtype_policy` sets the hidden layers' compute precision. `input_shape` (height,
    width, channels), where height and width may be None, builds the same layers (same
    weights and checkpoint layout) for other sizes: every generator is fully
    convolutional, so sides that are multiples of `pad_multiple(config)` come back at
    their own size. None means the training size.

    With --remat the layers are rematerialised: Keras recomputes their activations in
    the backward pass from their inputs (keras.RematScope, tf.recompute_grad under the
    TensorFlow backend); residual blocks recompute themselves whole from their input (each
    half with batch norm; models/resnet.py). Batch norm and dropout are not recomputed.
    The variables, and so checkpoints, are the same with and without it.
    """
    name = config.model.generator
    choices.check_choice("generator", name, choices.GENERATORS)
    if name == "unet":
        build = build_unet_generator
    else:
        build = _BUILDERS[name]
        if input_shape is None:
            input_shape = (*sizes.parse_size(config.data.image_size), config.data.input_channels)
    if not config.train.remat:
        return build(config, dtype_policy=dtype_policy, input_shape=input_shape)
    with keras.RematScope(mode="full"):
        model = build(config, dtype_policy=dtype_policy, input_shape=input_shape)
    for layer in model.layers:
        if "training" in inspect.signature(layer.call).parameters:
            # Keras passes `training` as a keyword, which tf.recompute_grad refuses in
            # graphs; these are batch norm (whose moving statistics a recomputation would
            # update twice), dropout (whose mask it would redraw) and the residual blocks,
            # which recompute their halves themselves (models/resnet.py).
            layer._remat_mode = None
    # The model itself outside the scope: rematerialising it whole would keep every
    # activation of its recomputation alive at once.
    return keras.Model(model.inputs, model.outputs, name=model.name)


def pad_multiple(config) -> int:
    """What each side of an input is padded to a multiple of, for the generator to run
    at (and return) that size: 2^unet_depth, 4 (resnet) or 32 (global_local)."""
    name = config.model.generator
    depth = unet_depth(config) if name == "unet" else None
    return sizes.generator_multiple(name, depth, config.data.image_size)


def generator_pass(config, generator: keras.Model, inputs, targets, training: bool = True):
    """(generated, inputs for the discriminator, targets for the discriminator) of a step.

    The `global` stage of a global_local run trains the global network alone at half
    size: its head's image, with inputs and targets average-pooled to H/2 x W/2 as
    pix2pixHD does. Every other case is the generator at full size.
    """
    if config.model.generator == "global_local" and config.train.stage == "global":
        generated = global_local.global_network(generator)(inputs, training=training)
        return generated, blocks.downsample(inputs), blocks.downsample(targets)
    return generator(inputs, training=training), inputs, targets


def generator_variables(config, generator: keras.Model) -> list:
    """The generator variables a step updates: the global network's in the `global`
    stage, the local enhancer's in `local` (global weights frozen), else all (but the
    global network's head, which only the global stage uses)."""
    stage = config.train.stage
    if config.model.generator != "global_local":
        return generator.trainable_variables
    # The global head only draws the global stage's image.
    chosen = {
        id(variable)
        for layer in generator.layers
        if (stage == "joint" and not global_local.is_global_head(layer))
        or (stage == "global" and global_local.is_global_layer(layer))
        or (stage == "local" and not global_local.is_global_layer(layer))
        for variable in layer.trainable_variables
    }
    return [variable for variable in generator.trainable_variables if id(variable) in chosen]


def discriminator_config(config):
    """`config` as the discriminator sees it: at half size in a `global` stage run."""
    if config.model.generator == "global_local" and config.train.stage == "global":
        height, width = sizes.parse_size(config.data.image_size)
        return config.replace(image_size=sizes.format_size(height // 2, width // 2))
    return config


def build_discriminator(config, *, dtype_policy: str = "float32", **kwargs) -> keras.Model:
    """models/multiscale.py's discriminator(s) for the pairs a step shows them
    (`discriminator_config`); its weights do not depend on the size."""

    return multiscale.build_discriminator(
        discriminator_config(config), dtype_policy=dtype_policy, **kwargs
    )
