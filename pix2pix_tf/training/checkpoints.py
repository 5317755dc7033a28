"""The training checkpoint's layout: models, optimizers, step and dropout seeds.

The run directory that holds these checkpoints, and restoring them, are in
pix2pix_tf/runs/directory.py.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from pix2pix_tf.training import precision as precision_lib


def seed_states(model: keras.Model) -> list:
    """The random-seed state variables of a model's dropout layers.

    Keras 3 does not track seed generators as checkpoint dependencies; saving
    them makes a resumed run draw the same dropout masks as an uninterrupted one.
    """
    weights = {id(weight) for weight in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


def make_checkpoint(state) -> tf.train.Checkpoint:
    """The training checkpoint of a TrainState: models, optimizers, step and seeds.

    The optimizers are saved without a loss-scale wrapper, so a checkpoint does
    not depend on --precision. The input position is the step itself (see
    data/pipeline.py): no iterator state, so nothing in it names a data file.
    """
    parts = dict(
        step=state.step,
        generator=state.generator,
        discriminator=state.discriminator,
        generator_optimizer=precision_lib.inner_optimizer(state.generator_optimizer),
        discriminator_optimizer=precision_lib.inner_optimizer(state.discriminator_optimizer),
        generator_seeds=seed_states(state.generator),
        discriminator_seeds=seed_states(state.discriminator),
    )
    return tf.train.Checkpoint(**parts)
