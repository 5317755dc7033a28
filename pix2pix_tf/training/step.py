"""The train state and the train step: what one optimisation step reads, updates and returns.

The pieces `train(config)` (pix2pix_tf/training/trainer.py) is built from, public
so that benchmarks and tests can use them on their own:

    state = build_train_state(config, strategy, total_steps=1000)
    train_step = make_train_step(config, state)
    losses = train_step(input_images, target_images)  # dict of scalar tensors
    train_steps = make_train_loop(config, state)
    losses = train_steps(iterator, 4)  # 4 steps in one call; dict of [4] tensors

`train_step` updates the train state (the models' weights, the optimizers' slots
and iteration counts, the step counter) and returns the losses named by
`loss_names`. It does no I/O: printing, summaries and checkpoints are the
controller's actions (pix2pix_tf/training/controller.py, actions.py).
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf import models
from pix2pix_tf.models import (
    arch_spec,
    build_discriminator,
    build_generator,
    losses,
    norms,
    with_features,
)

# The names of what a train step returns live with the losses; imported here for the
# trainer and its tests.
from pix2pix_tf.models.losses import (  # noqa: F401
    ALL_LOSS_NAMES,
    FEATURE_MATCHING,
    LOSS_NAMES,
    loss_names,
)
from pix2pix_tf.training import precision
from pix2pix_tf.training.optimizers import FusedAdam


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant learning rate, then a linear decay to zero over the last `decay_steps`.

    The paper's code trains 100 epochs at 2e-4, then 100 epochs decaying to 0.
    The optimizer calls this with its own iteration count, which checkpoints
    save, so a resumed run continues the schedule.
    """

    def __init__(self, learning_rate: float, total_steps: int, decay_steps: int):
        self.learning_rate = learning_rate
        self.total_steps = total_steps
        self.decay_steps = decay_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        if self.decay_steps <= 0:
            return tf.constant(self.learning_rate, tf.float32)
        remaining = (self.total_steps - step) / self.decay_steps
        return self.learning_rate * tf.clip_by_value(remaining, 0.0, 1.0)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "decay_steps": self.decay_steps,
        }


@dataclasses.dataclass
class TrainState:
    """Everything a train step reads and updates, built under one strategy scope."""

    strategy: tf.distribute.Strategy
    policy: str
    generator: keras.Model
    discriminator: keras.Model
    generator_optimizer: keras.optimizers.Optimizer
    discriminator_optimizer: keras.optimizers.Optimizer
    step: tf.Variable
    schedule: LinearDecay


def total_steps(config: config_lib.Config, train_examples: int | None = None) -> int:
    """--steps, or --epochs over the train split (whole batches per epoch)."""
    if config.train.steps is not None:
        return config.train.steps
    if train_examples is None:
        raise ValueError("--steps is not set, so the train split size is needed for --epochs.")
    steps_per_epoch = train_examples // config.train.batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"--batch_size {config.train.batch_size} is larger than the {train_examples} "
            f"training examples of --dataset {config.data.dataset}."
        )
    return config.train.epochs * steps_per_epoch


def build_train_state(
    config: config_lib.Config,
    strategy: tf.distribute.Strategy | None = None,
    *,
    total_steps: int,
    policy: str | None = None,
    fused_adam: bool = True,
) -> TrainState:
    """Builds models, optimizers and the step counter under `strategy.scope()`.

    `fused_adam=False` uses keras.optimizers.Adam itself (same variables and
    checkpoints, a few times more passes over the weights per update).
    """
    adam = FusedAdam if fused_adam else keras.optimizers.Adam
    strategy = strategy or tf.distribute.get_strategy()
    policy = policy or precision.resolve_precision(config.train.precision, strategy)
    decay_steps = round(total_steps * config.train.lr_decay_fraction)
    schedule = LinearDecay(config.train.learning_rate, total_steps, decay_steps)
    with strategy.scope():
        generator = build_generator(**config_lib.generator_arguments(config), dtype_policy=policy)
        discriminator = build_discriminator(
            **config_lib.discriminator_arguments(config), dtype_policy=policy
        )
        for model in (generator, discriminator):
            norms.set_fused(model, config.train.fused_norm)
        optimizers = []
        for name, model in (("generator", generator), ("discriminator", discriminator)):
            optimizer = precision.wrap_optimizer(
                adam(
                    learning_rate=schedule,
                    beta_1=config.train.beta_1,
                    name=f"{name}_optimizer",
                ),
                policy,
            )
            # Built now so that a checkpoint restores into existing variables.
            optimizer.build(model.trainable_variables)
            optimizers.append(optimizer)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    return TrainState(strategy, policy, generator, discriminator, *optimizers, step, schedule)


def make_train_step(config: config_lib.Config, state: TrainState):
    """Returns the tf.function train_step(input_images, target_images) -> dict of scalar losses.

    One step updates the generator and the discriminator simultaneously from
    the same forward pass, as the TensorFlow tutorial does, and adds 1 to
    `state.step`. Inputs are global batches (or per-replica values from a
    distributed dataset); losses are averaged over the global batch and summed
    across replicas.
    """
    return tf.function(_train_step_function(config, state))


def make_gradients(config: config_lib.Config, state: TrainState):
    """Returns the tf.function gradients(input_images, target_images) -> (losses,
    generator gradients, discriminator gradients): a train step's forward and backward
    passes without the update (benchmark train --breakdown times the pieces)."""
    return tf.function(_replica_functions(config, state)[0])


def _replica_functions(config: config_lib.Config, state: TrainState):
    """(gradients, apply): one replica's forward and backward passes, and its update."""
    train = config.train
    halve = arch_spec(config.model.arch).halve_discriminator_loss
    generator, discriminator = state.generator, state.discriminator
    # The discriminator(s) answering their features too (the same variables).
    with state.strategy.scope():
        discriminate = with_features(discriminator, remat=train.remat)
    stage = config_lib.stage_arguments(config)  # What the step computes and updates.
    generator_optimizer = state.generator_optimizer
    discriminator_optimizer = state.discriminator_optimizer

    def gradients(input_images, target_images):
        with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
            generated, input_images, target_images = models.generator_pass(
                generator, input_images, target_images, **stage
            )
            # Per discriminator: [feature_1, ..., feature_k, logits].
            real = discriminate([input_images, target_images], training=True)
            fake = discriminate([input_images, generated], training=True)
            values = losses.generator_loss(
                [outputs[-1] for outputs in fake],
                generated,
                target_images,
                lambda_l1=train.lambda_l1,
                gan_mode=train.gan_mode,
                global_batch_size=train.batch_size,
                lambda_feature_matching=train.lambda_feature_matching,
                real_features=[outputs[:-1] for outputs in real],
                fake_features=[outputs[:-1] for outputs in fake],
            )
            values["disc"] = losses.discriminator_loss(
                [outputs[-1] for outputs in real],
                [outputs[-1] for outputs in fake],
                gan_mode=train.gan_mode,
                halve=halve,
                global_batch_size=train.batch_size,
            )
            generator_scaled = generator_optimizer.scale_loss(values["gen_total"])
            discriminator_scaled = discriminator_optimizer.scale_loss(values["disc"])
        generator_gradients = generator_tape.gradient(
            generator_scaled, models.generator_variables(generator, **stage)
        )
        discriminator_gradients = discriminator_tape.gradient(
            discriminator_scaled, discriminator.trainable_variables
        )
        return values, generator_gradients, discriminator_gradients

    def apply(generator_gradients, discriminator_gradients):
        generator_optimizer.apply_gradients(
            zip(generator_gradients, models.generator_variables(generator, **stage), strict=True)
        )
        discriminator_optimizer.apply_gradients(
            zip(discriminator_gradients, discriminator.trainable_variables, strict=True)
        )

    return gradients, apply


def _train_step_function(config: config_lib.Config, state: TrainState):
    """make_train_step's train_step as a plain Python function, traced by its caller's
    tf.function: make_train_step's own, or make_train_loop's around the whole loop."""
    train = config.train
    gradients, apply = _replica_functions(config, state)
    names = loss_names(lambda_feature_matching=train.lambda_feature_matching)

    def replica_step(input_images, target_images):
        values, generator_gradients, discriminator_gradients = gradients(
            input_images, target_images
        )
        apply(generator_gradients, discriminator_gradients)
        return values

    # With --jit_compile, XLA compiles the replica step (strategy.run must stay outside a
    # jit scope); without it, the replica step is traced straight into the caller's graph,
    # with no function of its own.
    run_replica = tf.function(replica_step, jit_compile=True) if train.jit_compile else replica_step

    def train_step(input_images, target_images):
        per_replica = state.strategy.run(run_replica, args=(input_images, target_images))
        state.step.assign_add(1)
        return {
            name: state.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica[name], axis=None)
            for name in names
        }

    return train_step


def make_train_loop(config: config_lib.Config, state: TrainState):
    """Returns train_steps(iterator, num_steps) -> dict of [num_steps] losses.

    One call runs `num_steps` train steps in a `tf.while_loop` inside one
    `tf.function` (what Keras calls steps_per_execution), taking each batch
    from `iterator`; the losses of every step are returned so the outer loop
    can log, average and check each of them. `num_steps` is a tensor, so any
    count up to --steps_per_execution runs without retracing.
    """
    train_step = _train_step_function(config, state)
    names = loss_names(lambda_feature_matching=config.train.lambda_feature_matching)

    def train_steps(iterator, num_steps):
        num_steps = tf.convert_to_tensor(num_steps, tf.int32)
        arrays = {
            name: tf.TensorArray(tf.float32, size=num_steps, element_shape=[]) for name in names
        }
        for index in tf.range(num_steps):
            values = train_step(*next(iterator))
            arrays = {name: arrays[name].write(index, values[name]) for name in names}
        return {name: array.stack() for name, array in arrays.items()}

    return tf.function(train_steps)
