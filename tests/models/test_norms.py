"""The fused batch norm: Keras' layer, with the same values, statistics and gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf.models import norms
from pix2pix_tf.training import step as step_lib


def _built_alike(ours, theirs, input_shape, weights):
    """Both layers built for `input_shape` and given the same `weights`."""
    for layer in (ours, theirs):
        layer.build(input_shape)
        layer.set_weights(weights)
    return ours, theirs


def _pair(input_shape, dtype="float32", **kwargs):
    """Ours and Keras' layer with the same random gamma, beta and moving statistics."""
    rng = np.random.default_rng(3)
    gamma, beta, mean = (rng.normal(size=input_shape[-1]) for _ in range(3))
    variance = rng.uniform(0.5, 2.0, size=input_shape[-1])
    return _built_alike(
        norms.BatchNormalization(dtype=dtype, **kwargs),
        keras.layers.BatchNormalization(dtype=dtype, **kwargs),
        input_shape,
        [gamma, beta, mean, variance],
    )


def _call(layer, inputs, training=True):
    """Output, gradients (input, gamma, beta) of a non-linear loss, and the moving
    statistics where the layer has them."""
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = tf.cast(layer(inputs, training=training), tf.float32)
        loss = tf.reduce_sum(tf.sin(3.0 * outputs))
    gradients = tape.gradient(loss, [inputs, layer.gamma, layer.beta])
    statistics = [layer.moving_mean, layer.moving_variance] if hasattr(layer, "moving_mean") else []
    return [np.asarray(t, np.float32) for t in [outputs, *gradients, *statistics]]


def _inputs(shape, dtype=tf.float32):
    values = tf.random.stateless_normal(shape, [4, 2]) * 2.5 + 0.7
    return tf.cast(values, dtype)


NAMES = ["output", "input grad", "gamma grad", "beta grad", "moving mean", "moving var"]
SHAPES = [(2, 5, 7, 3), (1, 16, 16, 8), (4, 2, 2, 16), (1, 1, 1, 4), (1, 2, 4, 6)]


@pytest.mark.parametrize("shape", SHAPES)
def test_training_pass_matches_keras_in_float32(shape):
    ours, theirs = _pair(shape)
    inputs = _inputs(shape)
    for _ in range(2):  # The second call starts from updated moving statistics.
        mine, reference = _call(ours, inputs), _call(theirs, inputs)
        names = ["output", "input grad", "gamma grad", "beta grad", "moving mean", "moving var"]
        for name, a, b in zip(names, mine, reference, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=name)


def test_training_pass_runs_the_fused_kernel_and_keras_does_not():
    def op_types(layer):
        function = tf.function(lambda x: layer(x, training=True))
        graph = function.get_concrete_function(tf.TensorSpec([2, 4, 4, 3])).graph
        return {op.type for op in graph.get_operations()}

    ours, theirs = _pair((2, 4, 4, 3))
    assert "FusedBatchNormV3" in op_types(ours)
    assert "FusedBatchNormV3" not in op_types(theirs)
    ours.fused = False
    assert "FusedBatchNormV3" not in op_types(ours)


def test_mixed_bfloat16_is_as_close_to_float32_as_keras_bfloat16():
    """Under mixed bfloat16 both layers round: ours stays within bfloat16's precision of
    the float32 values, as Keras' does."""
    shape = (2, 8, 8, 16)
    ours, theirs = _pair(shape, dtype="mixed_bfloat16")
    exact, _ = _pair(shape)  # Float32 on the same (bfloat16) inputs: the reference.
    inputs = _inputs(shape, tf.bfloat16)
    assert ours(inputs, training=False).dtype == tf.bfloat16
    mine, theirs_values = _call(ours, inputs), _call(theirs, inputs)
    reference = _call(exact, tf.cast(inputs, tf.float32))
    names = ["output", "input grad", "gamma grad", "beta grad", "moving mean", "moving var"]
    for name, a, b, r in zip(names, mine, theirs_values, reference, strict=True):
        scale = max(float(np.abs(r).max()), 1e-6)
        ours_error = float(np.abs(a - r).max()) / scale
        keras_error = float(np.abs(b - r).max()) / scale
        # Within a few bfloat16 steps (2^-8 relative) of float32, or as close as Keras.
        assert ours_error <= max(1.5 * keras_error, 4 * 2**-8), (name, ours_error, keras_error)


@pytest.mark.parametrize("case", ["inference", "unfused", "synchronized", "momentum 1"])
def test_other_calls_are_keras_own(case):
    shape = (2, 4, 4, 5)
    kwargs = {"synchronized": True} if case == "synchronized" else {}
    ours, theirs = _pair(shape, **kwargs)
    if case == "unfused":
        ours.fused = False
    if case == "momentum 1":  # What --remat's recomputation does: statistics kept.
        ours.momentum = theirs.momentum = 1.0
    inputs = _inputs(shape)
    training = case != "inference"
    mine, reference = _call(ours, inputs, training), _call(theirs, inputs, training)
    exact = case in ("inference", "unfused", "synchronized")
    for a, b in zip(mine, reference, strict=True):
        if exact:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    if case == "momentum 1":
        np.testing.assert_array_equal(mine[-2:], [w.numpy() for w in theirs.weights[2:]])


def test_variables_and_checkpoints_are_keras_own(tmp_path):
    shape = (1, 4, 4, 3)
    ours, theirs = _pair(shape)
    assert [w.path for w in ours.weights] == [
        w.path.replace(theirs.name, ours.name) for w in theirs.weights
    ]
    path = tf.train.Checkpoint(layer=theirs).write(str(tmp_path / "keras"))
    fresh = norms.BatchNormalization()
    fresh.build(shape)
    tf.train.Checkpoint(layer=fresh).read(path).assert_consumed()
    for a, b in zip(fresh.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_train_step_with_fused_norm_matches_keras_batch_norm():
    """Three steps of the tiny U-Net and PatchGAN, fused and not: the same losses and weights."""
    results = []
    for fused in (True, False):
        config = config_lib.build_config(preset="tiny", batch_size=2, fused_norm=fused)
        keras.utils.set_random_seed(0)
        state = step_lib.build_train_state(config, total_steps=10)
        layers = [
            layer
            for model in (state.generator, state.discriminator)
            for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)
        ]
        assert layers and all(isinstance(layer, norms.BatchNormalization) for layer in layers)
        assert all(layer.fused == fused for layer in layers)
        train_step = step_lib.make_train_step(config, state)
        shape = [2, *config_lib.image_hw(config.data), 3]
        inputs = tf.random.stateless_uniform(shape, [1, 2], minval=-1, maxval=1)
        targets = tf.random.stateless_uniform(shape, [3, 4], minval=-1, maxval=1)
        losses = [train_step(inputs, targets) for _ in range(3)]
        variables = state.generator.weights + state.discriminator.weights
        results.append(([{k: float(v) for k, v in x.items()} for x in losses], variables))
    (fused_losses, fused_variables), (keras_losses, keras_variables) = results
    for a, b in zip(fused_losses, keras_losses, strict=True):
        assert a.keys() == b.keys()
        for name in a:
            assert a[name] == pytest.approx(b[name], rel=1e-4, abs=1e-5), name
    for a, b in zip(fused_variables, keras_variables, strict=True):
        assert a.path == b.path
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-5, err_msg=a.path)


def _instance_pair(input_shape, dtype="float32"):
    rng = np.random.default_rng(5)
    return _built_alike(
        norms.InstanceNormalization(epsilon=1e-5, dtype=dtype),
        keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, dtype=dtype),
        input_shape,
        [rng.normal(size=input_shape[-1]) for _ in range(2)],
    )


@pytest.mark.parametrize("shape", [(1, 6, 5, 4), (3, 4, 4, 8), (2, 1, 1, 3), (1, 2, 8, 6)])
def test_instance_norm_training_pass_matches_keras_group_norm(shape):
    ours, theirs = _instance_pair(shape)
    inputs = _inputs(shape)
    mine, reference = _call(ours, inputs), _call(theirs, inputs)
    for name, a, b in zip(NAMES[:4], mine, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=name)

    function = tf.function(lambda x: ours(x, training=True))
    graph = function.get_concrete_function(tf.TensorSpec(shape)).graph
    assert "FusedBatchNormV3" in {op.type for op in graph.get_operations()}


def test_instance_norm_outside_training_and_unfused_is_keras_own():
    shape = (2, 4, 4, 5)
    ours, theirs = _instance_pair(shape)
    inputs = _inputs(shape)
    for a, b in zip(_call(ours, inputs, False), _call(theirs, inputs, False), strict=True):
        np.testing.assert_array_equal(a, b)
    ours.fused = False
    for a, b in zip(_call(ours, inputs), _call(theirs, inputs), strict=True):
        np.testing.assert_array_equal(a, b)
    restored = norms.InstanceNormalization.from_config(ours.get_config())
    assert restored.fused is False and restored.groups == 5  # One per channel.


def test_instance_norm_mixed_bfloat16_is_within_bfloat16_of_float32():
    shape = (2, 8, 8, 16)
    ours, theirs = _instance_pair(shape, "mixed_bfloat16")
    exact, _ = _instance_pair(shape)
    inputs = _inputs(shape, tf.bfloat16)
    assert ours(inputs, training=True).dtype == tf.bfloat16
    mine, theirs_values = _call(ours, inputs), _call(theirs, inputs)
    reference = _call(exact, tf.cast(inputs, tf.float32))
    for name, a, b, r in zip(NAMES[:4], mine, theirs_values, reference, strict=True):
        scale = max(float(np.abs(r).max()), 1e-6)
        ours_error = float(np.abs(a - r).max()) / scale
        keras_error = float(np.abs(b - r).max()) / scale
        assert ours_error <= max(1.5 * keras_error, 4 * 2**-8), (name, ours_error, keras_error)


@pytest.mark.parametrize("generator", ["resnet", "global_local"])
def test_instance_norm_generators_train_the_same_fused_or_not(generator):
    """The same losses and gradients at the first step, close losses over three.

    A bias right before an instance norm has a zero gradient, of rounding noise only,
    which Adam turns into steps of either sign: weights after the steps are not
    comparable there, and later losses differ a little."""
    results = []
    for fused in (True, False):
        config = config_lib.build_config(
            preset="tiny", generator=generator, norm="instance", batch_size=2, fused_norm=fused
        )
        keras.utils.set_random_seed(0)
        state = step_lib.build_train_state(config, total_steps=10)
        layers = [
            layer
            for layer in state.generator._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.GroupNormalization)
        ]
        assert layers and all(isinstance(layer, norms.InstanceNormalization) for layer in layers)
        assert all(layer.fused == fused for layer in layers)
        shape = [2, *config_lib.image_hw(config.data), 3]
        inputs = tf.random.stateless_uniform(shape, [1, 2], minval=-1, maxval=1)
        targets = tf.random.stateless_uniform(shape, [3, 4], minval=-1, maxval=1)
        _, generator_gradients, discriminator_gradients = step_lib.make_gradients(config, state)(
            inputs, targets
        )
        train_step = step_lib.make_train_step(config, state)
        losses = [{k: float(v) for k, v in train_step(inputs, targets).items()} for _ in range(3)]
        results.append((losses, [*generator_gradients, *discriminator_gradients]))
    (fused_losses, fused_gradients), (keras_losses, keras_gradients) = results
    for step, (a, b) in enumerate(zip(fused_losses, keras_losses, strict=True)):
        # Later steps follow Adam's steps on those noise gradients.
        tolerance = 1e-5 if step == 0 else 2e-2
        for name in a:
            assert a[name] == pytest.approx(b[name], rel=tolerance, abs=1e-5), (step, name)
    if generator == "global_local":
        # The tiny global stage ends at 2x2 maps, whose instance norms over 4 values
        # amplify rounding: Keras' own gradients move by 4% when the input moves by a
        # relative 1e-6. Its losses above and the layer tests are the comparison.
        return
    largest = max(float(np.abs(g).max()) for g in keras_gradients)
    for a, b in zip(fused_gradients, keras_gradients, strict=True):
        tolerance = max(1e-3 * float(np.abs(b).max()), 1e-5 * largest)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=tolerance)
