"""Each convolution of the step timed alone, forward and backward, against its FLOP floor.

    python -m pix2pix_tf.benchmark train --image_size 256 --batch_size 8 --arch tutorial --layers

For every Conv2D and Conv2DTranspose of the "ours" variant's generator and
discriminator(s) that sits in a functional graph (so its input shape is known; the
convolutions inside the ResNet's residual blocks are counted as skipped), a copy of
the layer (the same config: dtype policy, matmul switch) is built at the batch size and
the layer's input shape, and its forward pass with the gradients for its input and
kernel is timed as one tf.function on fixed random inputs (the median of `repeats`
calls after two untimed ones). The floor is three times the forward FLOPs (flops.py's
convention) over the matmul peak of the dtype the layer computes in
(step_breakdown.machine_peaks, measured in the same run). `path` says how the layer
computes: `matmul` (models/conv.py's matmuls, `matmul float32` for its weight-bound
layers under mixed precision) or `kernel` (TensorFlow's convolution kernels; oneDNN on
CPU). A layer alone has the machine to itself, so the sum is a lower bound on what the
layers cost inside a step, where two ops share the two cores.
"""

from __future__ import annotations

import statistics
import time


def _conv_layers(model):
    """The model's convolution layers, nested models included."""
    import keras

    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Conv2DTranspose):
            yield layer


def _input_shape(layer):
    try:
        return tuple(layer.input.shape)
    except (AttributeError, ValueError):
        return None  # Not called in a functional graph (a residual block's insides).


def _forward_flops(layer, batch: int) -> int:
    """flops.py's count for one layer: multiply-adds x2 over the positions it computes."""
    import keras

    kernel = layer.kernel_size[0] * layer.kernel_size[1]
    if isinstance(layer, keras.layers.Conv2DTranspose):
        _, height, width, _ = layer.input.shape  # Each input pixel spread over a patch.
    else:
        _, height, width, _ = layer.output.shape
    return 2 * batch * height * width * kernel * layer.input.shape[-1] * layer.filters


def time_layer(layer, batch: int, input_shape, repeats: int) -> tuple[float, str]:
    """(median seconds of forward + input and kernel gradients, path) for a copy of `layer`."""
    import tensorflow as tf

    copy = type(layer).from_config(layer.get_config())
    shape = (batch, *input_shape[1:])
    copy.build(shape)
    inputs = tf.cast(tf.random.stateless_normal(shape, [1, 2]), copy.compute_dtype)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.cast(copy(x), tf.float32))
        input_gradient, kernel_gradient = tape.gradient(loss, [x, copy.kernel])
        # One element of each, so nothing is copied out and nothing pruned.
        return input_gradient[0, 0, 0, 0], kernel_gradient[0, 0, 0, 0]

    graph = step.get_concrete_function(inputs).graph
    matmuls = {op.get_attr("T") for op in graph.get_operations() if op.type == "MatMul"}
    if not matmuls:
        path = "kernel"
    elif matmuls == {tf.float32} and copy.compute_dtype != "float32":
        path = "matmul float32"
    else:
        path = "matmul"
    for _ in range(2):
        step(inputs)[0].numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(inputs)[0].numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times), path


def measure(config, repeats: int) -> dict:
    """Every timed convolution of `config`'s models: shape, ms, floor ms, path."""
    from pix2pix_tf.benchmark import step_breakdown
    from pix2pix_tf.training import step as step_lib

    state = step_lib.build_train_state(config, total_steps=1_000_000)
    batch = config.train.batch_size
    peaks = step_breakdown.machine_peaks()
    rows, skipped = [], 0
    for model_name, model in (
        ("generator", state.generator),
        ("discriminator", state.discriminator),
    ):
        for layer in _conv_layers(model):
            input_shape = _input_shape(layer)
            if input_shape is None:
                skipped += 1
                continue
            seconds, path = time_layer(layer, batch, input_shape, repeats)
            dtype = "float32" if path == "matmul float32" else layer.compute_dtype
            peak = peaks["bfloat16_flops_per_s" if dtype == "bfloat16" else "float32_flops_per_s"]
            floor = 3 * _forward_flops(layer, batch) / peak
            rows.append(
                {
                    "model": model_name,
                    "layer": layer.name,
                    "input": [batch, *input_shape[1:]],
                    "filters": layer.filters,
                    "path": path,
                    "ms": seconds * 1000,
                    "floor_ms": floor * 1000,
                    "x_floor": seconds / floor,
                }
            )
    return {
        "batch_size": batch,
        "policy": state.policy,
        "peaks": peaks,
        "layers": rows,
        "skipped": skipped,
    }


def report(result: dict) -> str:
    lines = [
        f"batch {result['batch_size']}, {result['policy']}; each convolution alone, forward "
        "and backward; floor = 3 x forward FLOPs over the matmul peak of its dtype",
        f"{'model':14s}{'layer':28s}{'input':>20s}{'filters':>8s}  {'path':15s}"
        f"{'ms':>8s}{'floor ms':>10s}{'x floor':>8s}",
    ]
    for row in result["layers"]:
        shape = "x".join(str(side) for side in row["input"])
        lines.append(
            f"{row['model']:14s}{row['layer'][:27]:28s}{shape:>20s}{row['filters']:>8d}  "
            f"{row['path']:15s}{row['ms']:8.2f}{row['floor_ms']:10.2f}{row['x_floor']:8.1f}"
        )
    if result["skipped"]:
        lines.append(f"({result['skipped']} convolutions inside residual blocks not timed)")
    return "\n".join(lines)
