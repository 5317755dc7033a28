"""Convolutions with matmul gradients over small maps: same values as Keras' layers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf import models
from pix2pix_tf.models import conv


def _values_and_gradients(layer, inputs, linear=False):
    """The layer's output and the gradients of a loss of it.

    The loss is non-linear, or with `linear` a fixed weighting of the outputs,
    so that 16-bit rounding of the outputs does not change the gradients.
    """
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = tf.cast(layer(inputs), tf.float32)
        if linear:
            weights = tf.random.stateless_normal(outputs.shape, [1, 1])
            loss = tf.reduce_sum(outputs * weights)
        else:
            loss = tf.reduce_sum(tf.sin(3.0 * outputs))
    return [outputs, *tape.gradient(loss, [inputs, *layer.trainable_variables])]


def _assert_close(mine, reference, tolerance=1e-5):
    """Equal up to float rounding, relative to the largest value."""
    mine, reference = np.asarray(mine, np.float32), np.asarray(reference, np.float32)
    scale = max(float(np.abs(reference).max()), 1e-12)
    np.testing.assert_allclose(mine / scale, reference / scale, rtol=0, atol=tolerance)


def _pair(ours, theirs, input_shape):
    ours.build(input_shape)
    theirs.build(input_shape)
    weights = [np.random.default_rng(1).normal(size=w.shape) for w in ours.get_weights()]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    return ours, theirs


@pytest.mark.parametrize(
    "input_shape, use_bias",
    [
        ((1, 2, 2, 16), False),
        ((2, 4, 4, 8), True),
        ((3, 5, 7, 3), True),
        ((1, 16, 16, 4), False),
        # Non-square maps of a HxW run (issue #12): 2:1, 1:2 and 1x2 bottlenecks.
        ((2, 2, 4, 8), True),
        ((1, 8, 16, 4), False),
        ((1, 16, 4, 4), True),
    ],
)
def test_conv2d_matches_keras_values_and_gradients(input_shape, use_bias):
    kwargs = dict(filters=6, kernel_size=4, strides=2, padding="same", use_bias=use_bias)
    ours, theirs = _pair(conv.Conv2D(**kwargs), keras.layers.Conv2D(**kwargs), input_shape)
    inputs = tf.random.stateless_normal(input_shape, [0, 1])
    for mine, reference in zip(
        _values_and_gradients(ours, inputs), _values_and_gradients(theirs, inputs), strict=True
    ):
        _assert_close(mine, reference)


@pytest.mark.parametrize(
    "input_shape, use_bias",
    [
        ((1, 1, 1, 16), False),
        ((2, 2, 2, 8), True),
        ((1, 3, 5, 4), True),
        ((1, 8, 8, 4), False),
        ((2, 1, 2, 16), True),
        ((1, 4, 8, 8), False),
        ((1, 8, 2, 4), True),
    ],
)
def test_conv2d_transpose_matches_keras_values_and_gradients(input_shape, use_bias):
    kwargs = dict(filters=5, kernel_size=4, strides=2, padding="same", use_bias=use_bias)
    ours, theirs = _pair(
        conv.Conv2DTranspose(**kwargs), keras.layers.Conv2DTranspose(**kwargs), input_shape
    )
    inputs = tf.random.stateless_normal(input_shape, [0, 2])
    for mine, reference in zip(
        _values_and_gradients(ours, inputs), _values_and_gradients(theirs, inputs), strict=True
    ):
        _assert_close(mine, reference)


def _graph_ops(layer, input_shape) -> set[str]:
    @tf.function
    def step(inputs):
        return _values_and_gradients(layer, inputs)

    graph = step.get_concrete_function(tf.TensorSpec(input_shape)).graph
    return {op.type for op in graph.get_operations()}


@pytest.mark.parametrize(
    "layer_class", [conv.Conv2D, conv.Conv2DTranspose], ids=["conv", "transpose"]
)
def test_matmul_path_only_over_small_maps_and_when_enabled(layer_class):
    small, large = (1, 8, 8, 4), (1, 64, 64, 4)  # 16-64 patch rows vs 1024-4096.
    enabled = layer_class(4, 4, strides=2, padding="same")
    assert "ExtractImagePatches" in _graph_ops(enabled, small)
    large_layer = layer_class(4, 4, strides=2, padding="same")
    assert "ExtractImagePatches" not in _graph_ops(large_layer, large)
    disabled = layer_class(4, 4, strides=2, padding="same", matmul_convs=False)
    assert "ExtractImagePatches" not in _graph_ops(disabled, small)
    restored = layer_class.from_config(disabled.get_config())
    assert restored.matmul_convs is False and restored.filters == 4


@pytest.mark.parametrize(
    "layer_class, keras_class",
    [(conv.Conv2D, keras.layers.Conv2D), (conv.Conv2DTranspose, keras.layers.Conv2DTranspose)],
    ids=["conv", "transpose"],
)
def test_mixed_bfloat16_matches_keras_within_bfloat16_precision(layer_class, keras_class):
    kwargs = dict(filters=32, kernel_size=4, strides=2, padding="same", dtype="mixed_bfloat16")
    ours, theirs = _pair(layer_class(**kwargs), keras_class(**kwargs), (1, 4, 4, 64))
    inputs = tf.random.stateless_normal((1, 4, 4, 64), [0, 3])
    assert ours(inputs).dtype == theirs(inputs).dtype == tf.bfloat16
    for mine, reference in zip(
        _values_and_gradients(ours, inputs, linear=True),
        _values_and_gradients(theirs, inputs, linear=True),
        strict=True,
    ):
        assert mine.dtype == reference.dtype
        _assert_close(mine, reference, 2e-2)


@pytest.mark.parametrize(
    "layer_class, keras_class",
    [(conv.Conv2D, keras.layers.Conv2D), (conv.Conv2DTranspose, keras.layers.Conv2DTranspose)],
    ids=["conv", "transpose"],
)
def test_weight_bound_layers_compute_in_float32_under_mixed_precision(layer_class, keras_class):
    """At most MAX_FLOAT32_ROWS rows: float32 matmuls on the variable itself, no 16-bit
    copy of the kernel; the output is still the compute dtype; values as Keras' float32."""
    # A conv's rows are its output positions, a transposed conv's its input pixels.
    shape = (1, 4, 4, 8) if layer_class is conv.Conv2D else (1, 2, 2, 8)
    kwargs = dict(filters=16, kernel_size=4, strides=2, padding="same")
    ours = layer_class(**kwargs, dtype="mixed_bfloat16")
    ours, theirs = _pair(ours, keras_class(**kwargs), shape)

    @tf.function
    def step(inputs):
        return _values_and_gradients(ours, inputs, linear=True)

    graph = step.get_concrete_function(tf.TensorSpec(shape)).graph
    matmuls = {op.get_attr("T") for op in graph.get_operations() if op.type == "MatMul"}
    assert matmuls == {tf.float32}
    casts = {
        (tuple(op.inputs[0].shape.as_list()), op.get_attr("DstT"))
        for op in graph.get_operations()
        if op.type == "Cast"
    }
    assert ((4, 4, 8, 16), tf.bfloat16) not in casts and ((4, 4, 16, 8), tf.bfloat16) not in casts
    inputs = tf.cast(tf.random.stateless_normal(shape, [0, 5]), tf.bfloat16)  # Exact in both.
    mine = step(tf.cast(inputs, tf.float32))
    assert ours(inputs).dtype == tf.bfloat16
    reference = _values_and_gradients(theirs, tf.cast(inputs, tf.float32), linear=True)
    _assert_close(mine[0], reference[0], 2**-8)  # The output, rounded to bfloat16.
    for a, b in zip(mine[2:], reference[2:], strict=True):  # The weight gradients.
        _assert_close(a, b, 2**-7)  # The output gradient arrives in bfloat16.
    larger = layer_class(**kwargs, dtype="mixed_bfloat16")
    larger_shape = (1, 8, 8, 8) if layer_class is conv.Conv2D else (1, 4, 4, 8)
    larger_graph = (
        tf.function(lambda x: _values_and_gradients(larger, x))
        .get_concrete_function(tf.TensorSpec(larger_shape))
        .graph
    )
    matmuls = {op.get_attr("T") for op in larger_graph.get_operations() if op.type == "MatMul"}
    assert matmuls == {tf.bfloat16}


@pytest.mark.parametrize("image_size", [64, "32x64"], ids=["square", "2to1"])
def test_generator_gradients_do_not_depend_on_the_option(image_size):
    """The whole U-Net, with and without matmul gradients: same variables, same gradients."""
    config = config_lib.build_config(preset="tiny", dropout=0.0, image_size=image_size)
    height, width = config_lib.image_hw(config.data)
    images = tf.random.stateless_uniform([2, height, width, 3], [0, 4], minval=-1, maxval=1)
    results = []
    for enabled in (True, False):
        keras.utils.set_random_seed(0)
        generator = models.build_generator(
            **config_lib.generator_arguments(config.replace(matmul_convs=enabled))
        )
        initial = generator.get_weights()
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(generator(images, training=True) - images))
        names = [variable.path for variable in generator.trainable_variables]
        gradients = tape.gradient(loss, generator.trainable_variables)
        results.append((names, initial, gradients))
    (names, weights, gradients), (other_names, other_weights, other_gradients) = results
    assert names == other_names
    for mine, reference in zip(weights, other_weights, strict=True):
        np.testing.assert_array_equal(mine, reference)
    for mine, reference in zip(gradients, other_gradients, strict=True):
        np.testing.assert_allclose(mine, reference, rtol=1e-4, atol=1e-6)
    matmul = models.build_generator(**config_lib.generator_arguments(config))
    assert {conv.Conv2D, conv.Conv2DTranspose} <= {type(layer) for layer in matmul.layers}
    plain = models.build_generator(
        **config_lib.generator_arguments(config.replace(matmul_convs=False))
    )
    assert not {conv.Conv2D, conv.Conv2DTranspose} & {type(layer) for layer in plain.layers}


@pytest.fixture
def restore_matmul_limits():
    yield
    conv.use_matmul_limits("auto")


def test_amx_limits_widen_the_bfloat16_matmuls_only(monkeypatch, restore_matmul_limits):
    default, amx = conv.matmul_limits("default"), conv.matmul_limits("amx")
    assert default["MAX_MATMUL_ROWS"] == conv.MAX_MATMUL_ROWS
    assert default["MAX_CONV_MATMUL_ROWS"] == conv.MAX_CONV_MATMUL_ROWS
    for name in default:
        assert amx[name]["bfloat16"] > default[name]["bfloat16"], name
        for dtype in ("float32", "float16"):
            assert amx[name][dtype] == default[name][dtype], (name, dtype)
    for has_amx, expected in ((True, amx), (False, default)):
        monkeypatch.setattr(conv, "_HAS_AMX", has_amx)
        assert conv.matmul_limits("auto") == expected
    with pytest.raises(ValueError, match="auto, default, amx"):
        conv.matmul_limits("avx")


@pytest.mark.parametrize(
    "layer_class, keras_class, shape",
    [
        (conv.Conv2D, keras.layers.Conv2D, (2, 32, 32, 8)),  # 512 output positions.
        (conv.Conv2DTranspose, keras.layers.Conv2DTranspose, (2, 32, 32, 8)),  # 2048 inputs.
    ],
    ids=["conv", "transpose"],
)
def test_amx_limits_take_the_matmul_path_with_keras_values(
    layer_class, keras_class, shape, restore_matmul_limits
):
    kwargs = dict(filters=8, kernel_size=4, strides=2, padding="same", dtype="mixed_bfloat16")
    conv.use_matmul_limits("default")
    assert "MatMul" not in _graph_ops(layer_class(**kwargs), shape)
    conv.use_matmul_limits("amx")
    # Against Keras' float32 layer: over 8192 positions Keras' bfloat16 bias gradient is
    # more than 10% off it, ours within bfloat16's precision.
    reference_kwargs = {**kwargs, "dtype": "float32"}
    ours, theirs = _pair(layer_class(**kwargs), keras_class(**reference_kwargs), shape)
    forward = tf.function(lambda x: ours(x)).get_concrete_function(tf.TensorSpec(shape))
    assert "MatMul" in {op.type for op in forward.graph.get_operations()}
    inputs = tf.random.stateless_normal(shape, [0, 7])
    for mine, reference in zip(
        _values_and_gradients(ours, inputs, linear=True),
        _values_and_gradients(theirs, inputs, linear=True),
        strict=True,
    ):
        _assert_close(mine, reference, 2e-2)
