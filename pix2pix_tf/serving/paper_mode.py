"""The paper's test-time behaviour, without mutating a single variable.

The paper runs the generator at test time as in training: batch normalisation uses the
statistics of the test batch (of one image) and dropout stays on, as the generator's
only source of noise. Calling a Keras model with `training=True` does this by updating
the moving statistics and drawing from a stateful seed generator, both variable
writes, which a server must not do. Here instead:

- every BatchNormalization layer is replaced by the same normalisation with the
  statistics of each image on its own (the paper's batch of one), computed
  functionally from the layer's own gamma and beta;
- every Dropout layer is replaced by dropout drawn from a stateless random op whose
  seed is a fingerprint of the input image and a fixed export seed, so the same image
  always gives the same output, whatever else is in the batch.

The result is a new functional model that shares the generator's weights.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class ContentSeeds(keras.layers.Layer):
    """Per-image stateless seeds: [N, S, S, C] -> int32 [N, 2], from the pixels' bytes."""

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def call(self, images):
        # A farmhash fingerprint of each image's raw bytes: [N, 8] uint8 -> [N, 2] int32.
        fingerprint = tf.fingerprint(tf.cast(images, tf.float32))
        seeds = tf.bitcast(tf.reshape(fingerprint, [-1, 2, 4]), tf.int32)
        return seeds + tf.constant([self.seed, 0], tf.int32)

    def compute_output_spec(self, images):
        return keras.KerasTensor((images.shape[0], 2), dtype="int32")


class SeededDropout(keras.layers.Layer):
    """Inverted dropout with one stateless seed per image, salted per layer."""

    def __init__(self, rate: float, salt: int, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.salt = salt

    def call(self, inputs, seeds):
        if self.rate == 0.0:
            return inputs
        salted = seeds + tf.constant([0, self.salt], tf.int32)

        def drop_one(arguments):
            image, seed = arguments
            noise = tf.random.stateless_uniform(tf.shape(image), seed=seed)
            keep = noise >= self.rate
            scaled = image / tf.cast(1.0 - self.rate, image.dtype)
            return tf.where(keep, scaled, tf.zeros_like(image))

        return tf.map_fn(
            drop_one, (inputs, salted), fn_output_signature=tf.TensorSpec(None, inputs.dtype)
        )

    def compute_output_shape(self, inputs_shape, seeds_shape):
        return inputs_shape


class PerImageBatchNormalization(keras.layers.Layer):
    """A BatchNormalization layer's transform with each image's own statistics."""

    def __init__(self, layer: keras.layers.BatchNormalization, **kwargs):
        super().__init__(dtype=layer.dtype_policy, **kwargs)
        self.source = layer

    def call(self, inputs):
        source = self.source
        rank = len(inputs.shape)
        axis = source.axis if source.axis >= 0 else rank + source.axis
        # Statistics over everything but the batch and channel axes, in float32.
        reduction = [index for index in range(1, rank) if index != axis]
        values = tf.cast(inputs, tf.float32)
        mean, variance = tf.nn.moments(values, axes=reduction, keepdims=True)
        shape = [1] * rank
        shape[axis] = values.shape[axis]
        gamma = None if source.gamma is None else tf.reshape(source.gamma, shape)
        beta = None if source.beta is None else tf.reshape(source.beta, shape)
        outputs = tf.nn.batch_normalization(
            values, mean, variance, offset=beta, scale=gamma, variance_epsilon=source.epsilon
        )
        return tf.cast(outputs, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def _contains_stateful_layers(layer: keras.layers.Layer) -> bool:
    for sublayer in getattr(layer, "layers", []):
        if isinstance(sublayer, keras.layers.BatchNormalization | keras.layers.Dropout):
            return True
        if _contains_stateful_layers(sublayer):
            return True
    return False


def paper_test_time_model(generator: keras.Model, seed: int = 0) -> keras.Model:
    """A functional copy of `generator` sharing its weights, with the paper's test-time
    behaviour implemented without variable updates (see the module docstring)."""
    if not isinstance(generator, keras.Model) or not hasattr(generator, "_nodes_by_depth"):
        raise ValueError("paper test-time mode needs a functional keras.Model generator.")
    for layer in generator.layers:
        if isinstance(layer, keras.Model) and _contains_stateful_layers(layer):
            raise ValueError(
                f"paper test-time mode: layer {layer.name!r} is a nested model containing "
                "BatchNormalization or Dropout; only top-level layers can be rewritten."
            )
    inputs = keras.Input(
        batch_shape=generator.inputs[0].shape,
        dtype=generator.inputs[0].dtype,
        name=generator.inputs[0].name,
    )
    seeds = ContentSeeds(seed, name="content_seeds")(inputs)
    dropout_count = [0]

    def call_function(layer, *args, **kwargs):
        if isinstance(layer, keras.layers.BatchNormalization):
            return PerImageBatchNormalization(layer, name=f"{layer.name}_per_image")(args[0])
        if isinstance(layer, keras.layers.Dropout):
            dropout_count[0] += 1
            dropout = SeededDropout(layer.rate, dropout_count[0], name=f"{layer.name}_seeded")
            return dropout(args[0], seeds)
        return layer(*args, **kwargs)

    return keras.models.clone_model(
        generator,
        input_tensors=inputs,
        clone_function=lambda layer: layer,
        call_function=call_function,
    )
