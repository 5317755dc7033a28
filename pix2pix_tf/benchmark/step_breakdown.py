"""Where a train step's time goes, against the floor each piece cannot beat on this machine.

    python -m pix2pix_tf.benchmark train --image_size 256 --batch_size 1 --arch tutorial --breakdown

The step of `benchmark train`'s "ours" variant is timed whole and in nested pieces,
each its own tf.function on the same fixed tensors, in alternating rounds:

    generator forward       G(x)
    + discriminator forward G(x), D(x, y), D(x, G(x))
    + backward              the step's forward and backward passes (step.make_gradients)
    + optimizer update      the whole train step (step.make_train_step)

Each piece's time is the difference of consecutive medians. Its floor, measured in
the same run:

- compute: the piece's FLOPs (benchmark/flops.py's convention: forward FLOPs of the
  convolutions; backward 2x forward) over the peak of the compute dtype, measured as a
  2048x2048 matmul in float32 and in bfloat16;
- memory: the bytes it must move over the measured bandwidth (an in-place
  `assign_add` of 256 MiB of float32: 3 x 4 bytes per element): Adam reads each
  weight, its gradient and both moments and writes the weight and the moments
  (7 x 4 bytes per parameter); under
  mixed_bfloat16 each forward reads every float32 weight and writes its bfloat16
  copy (6 bytes per parameter).

The report gives each piece's distance from its floor and the step's from the
sum of floors. Floors are lower bounds, not predictions: small layers run below
the matmul peak, and weights that fit in cache beat the memory floor. The
optimizer piece is what the update adds to the step: TensorFlow runs each
variable's update as soon as its gradient is ready, overlapping the backward
pass, so that piece can come in below its own floor.
"""

from __future__ import annotations

import statistics
import time

MATMUL_SIZE = 2048
BANDWIDTH_ELEMENTS = 64 << 20  # 256 MiB of float32.
# Adam's dense update: reads the weight, gradient, m and v; writes the weight, m, v.
ADAM_BYTES_PER_PARAMETER = 7 * 4
# A mixed-precision forward reads each float32 weight and writes its bfloat16 copy.
CAST_BYTES_PER_PARAMETER = 4 + 2
PIECES = ("generator forward", "discriminator forward", "backward", "optimizer update")


def _median_seconds(function, repeats: int) -> float:
    import tensorflow as tf

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        tf.nest.map_structure(lambda tensor: tensor.numpy(), result)  # Waits for it.
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine_peaks(repeats: int = 5) -> dict[str, float]:
    """The measured matmul FLOP/s in float32 and bfloat16, and bytes/s of an element-wise pass."""
    import tensorflow as tf

    peaks = {}
    for dtype in (tf.float32, tf.bfloat16):
        a = tf.random.stateless_uniform([MATMUL_SIZE, MATMUL_SIZE], [1, 2], dtype=tf.float32)
        a = tf.cast(a, dtype)
        matmul = tf.function(lambda a=a: tf.matmul(a, a))
        _median_seconds(matmul, 2)  # Traced and warm.
        seconds = _median_seconds(matmul, repeats)
        peaks[f"{dtype.name}_flops_per_s"] = 2 * MATMUL_SIZE**3 / seconds
    # In place, as the optimizer's update is: reads both, writes the variable (no
    # allocation, whose page faults would be timed too).
    total = tf.Variable(tf.zeros([BANDWIDTH_ELEMENTS], tf.float32))
    x = tf.ones([BANDWIDTH_ELEMENTS], tf.float32)

    @tf.function
    def accumulate():
        total.assign_add(x)
        return tf.constant(0)

    _median_seconds(accumulate, 2)
    peaks["bytes_per_s"] = 3 * 4 * BANDWIDTH_ELEMENTS / _median_seconds(accumulate, repeats)
    return peaks


def _parameters(model) -> int:
    return sum(int(weight.shape.num_elements()) for weight in model.trainable_weights)


def floors(generator, discriminator, batch_size: int, policy: str, peaks: dict) -> dict:
    """Each piece's floor in seconds (see the module docstring)."""
    from pix2pix_tf.benchmark import flops

    compute = peaks["bfloat16_flops_per_s" if "bfloat16" in policy else "float32_flops_per_s"]
    bandwidth = peaks["bytes_per_s"]
    generator_flops = flops.conv_forward_flops(generator, batch_size)
    discriminator_flops = 2 * flops.conv_forward_flops(discriminator, batch_size)
    parameters = {"generator": _parameters(generator), "discriminator": _parameters(discriminator)}
    cast = CAST_BYTES_PER_PARAMETER if "bfloat16" in policy or "float16" in policy else 0
    return {
        "generator forward": generator_flops / compute + cast * parameters["generator"] / bandwidth,
        "discriminator forward": discriminator_flops / compute
        + cast * parameters["discriminator"] / bandwidth,
        "backward": 2 * (generator_flops + discriminator_flops) / compute,
        "optimizer update": ADAM_BYTES_PER_PARAMETER * sum(parameters.values()) / bandwidth,
    }


def measure(config, rounds: int, repeats: int) -> dict:
    """Times the nested pieces of the train step of `config` and their floors."""
    import tensorflow as tf

    from pix2pix_tf import configs as config_lib
    from pix2pix_tf.training import step as step_lib

    batch = config.train.batch_size
    shape = [batch, *config_lib.image_hw(config.data)]
    inputs = tf.random.stateless_uniform(
        [*shape, config.data.input_channels], [0, 1], minval=-1, maxval=1
    )
    targets = tf.random.stateless_uniform(
        [*shape, config.data.output_channels], [0, 2], minval=-1, maxval=1
    )
    state = step_lib.build_train_state(config, total_steps=1_000_000)
    generator, discriminator = state.generator, state.discriminator

    @tf.function
    def generator_forward():
        return tf.reduce_sum(tf.cast(generator(inputs, training=True), tf.float32))

    @tf.function
    def forward():
        generated = generator(inputs, training=True)
        real = discriminator([inputs, targets], training=True)
        fake = discriminator([inputs, generated], training=True)
        return tf.reduce_sum(tf.cast(real, tf.float32)) + tf.reduce_sum(tf.cast(fake, tf.float32))

    gradients = step_lib.make_gradients(config, state)

    @tf.function
    def backward():
        values, generator_gradients, discriminator_gradients = gradients(inputs, targets)
        # One element of each gradient: every gradient is computed whole, none copied
        # out (outputs would be, and gradients nothing reads are pruned from the graph).
        firsts = [
            tf.cast(tf.reshape(gradient, [-1])[0], tf.float32)
            for gradient in (*generator_gradients, *discriminator_gradients)
        ]
        return values["gen_total"] + tf.add_n(firsts)

    train_step = step_lib.make_train_step(config, state)
    nested = {
        "generator forward": generator_forward,
        "discriminator forward": forward,
        "backward": backward,
        "optimizer update": lambda: train_step(inputs, targets)["gen_total"],
    }
    for function in nested.values():
        _median_seconds(function, 2)  # Traced and warm.
    seconds = {name: [] for name in nested}
    for round_index in range(rounds):
        names = list(nested) if round_index % 2 == 0 else list(reversed(nested))
        for name in names:
            seconds[name].append(_median_seconds(nested[name], repeats))
    cumulative = [statistics.median(seconds[name]) for name in PIECES]
    pieces = dict(
        zip(
            PIECES,
            [cumulative[0]] + [b - a for a, b in zip(cumulative, cumulative[1:], strict=False)],
            strict=True,
        )
    )
    peaks = machine_peaks()
    floor = floors(generator, discriminator, batch, state.policy, peaks)
    step_seconds = cumulative[-1]
    return {
        "policy": state.policy,
        "batch_size": batch,
        "image_size": config.data.image_size,
        "step_ms": 1000 * step_seconds,
        "floor_ms": 1000 * sum(floor.values()),
        "step_over_floor": step_seconds / sum(floor.values()),
        "pieces": {
            name: {
                "ms": 1000 * pieces[name],
                "floor_ms": 1000 * floor[name],
                "over_floor": pieces[name] / floor[name] if floor[name] else None,
            }
            for name in PIECES
        },
        "peaks": {
            "float32_gflops_per_s": peaks["float32_flops_per_s"] / 1e9,
            "bfloat16_gflops_per_s": peaks["bfloat16_flops_per_s"] / 1e9,
            "gb_per_s": peaks["bytes_per_s"] / 1e9,
        },
        "rounds": rounds,
        "calls_per_round": repeats,
    }


def report(result: dict) -> str:
    """The breakdown as a table."""
    peaks = result["peaks"]
    lines = [
        f"{result['image_size']}, batch {result['batch_size']}, {result['policy']}; medians of "
        f"{result['rounds']} alternating rounds of {result['calls_per_round']} calls.",
        f"measured peaks: float32 matmul {peaks['float32_gflops_per_s']:.0f} GFLOP/s, bfloat16 "
        f"matmul {peaks['bfloat16_gflops_per_s']:.0f} GFLOP/s, memory {peaks['gb_per_s']:.1f} GB/s",
        f"{'piece':24s} {'ms':>8s} {'floor ms':>9s} {'x floor':>8s}",
    ]
    for name, piece in result["pieces"].items():
        over = f"{piece['over_floor']:8.1f}" if piece["over_floor"] is not None else f"{'-':>8s}"
        lines.append(f"{name:24s} {piece['ms']:8.1f} {piece['floor_ms']:9.2f} {over}")
    lines.append(
        f"{'step':24s} {result['step_ms']:8.1f} {result['floor_ms']:9.2f} "
        f"{result['step_over_floor']:8.1f}"
    )
    return "\n".join(lines)
