"""Train step speed and memory: our train step vs the TensorFlow tutorial's.

    python -m pix2pix_tf.benchmark train --image_size 256 --batch_size 1 --arch tutorial [--json]
    python -m pix2pix_tf.benchmark train --sizes 256x256 256x512 512x512 --arch tutorial

--image_size takes SIZE or HEIGHTxWIDTH. --sizes times our step alone at each size,
side by side in the same rounds (see train_sizes.py): images/s, peak memory and
cost against pixels.

Both steps run real optimizer updates on fixed synthetic tensors (no input
pipeline), side by side in one run:

- tutorial: a faithful re-implementation of the train step of the TensorFlow
  pix2pix tutorial as published: float32, one `@tf.function` step, two
  `GradientTape`s, `BinaryCrossentropy(from_logits=True)` losses (generator:
  GAN + 100 x L1; discriminator: real + generated), `Adam(2e-4, beta_1=0.5)`
  for each model, and its generator and discriminator (`--arch tutorial`).
- ours: `step.make_train_step` / `make_train_loop` with the flags given
  (--precision, default auto; --steps_per_execution; --jit_compile;
  --matmul_convs and --fused_norm, default on; --matmul_limits, default auto: the
  matmul convolutions' row limits for this CPU; more than one kind adds a variant
  of ours per kind).
- with --breakdown, ours alone, in pieces against each piece's floor on this
  machine (step_breakdown.py); with --layers, each of its convolutions alone
  against its FLOP floor (layer_times.py).
- with --levers, also ours with the levers added one at a time (float32 with
  Keras' Adam, + the fused Adam update, + matmul convolutions over small
  maps, + mixed bfloat16), and ours with steps_per_execution 4 or XLA.

Each variant runs in its own worker process, so its peak resident memory
(`ru_maxrss`) is its own. The machine is shared, so absolute times drift: the
workers are timed in turn for several rounds (the order alternating), each
round a fixed number of steps after untimed warm-up steps; the report gives
medians and the median of the per-round speed ratios. GFLOP/s come from the
analytic count in pix2pix_tf/benchmark/flops.py (convention printed beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

from pix2pix_tf.benchmark import train_sizes
from pix2pix_tf.benchmark.workers import run_workers
from pix2pix_tf.configs import sizes

BASELINE = "tutorial"


# ---------------------------------------------------------------------------
# Worker side: one variant, driven over stdin/stdout.
# ---------------------------------------------------------------------------


def _build_tutorial(config):
    """The tutorial's train step, as published, on our `--arch tutorial` models."""
    import keras
    import tensorflow as tf

    from pix2pix_tf.configs import discriminator_arguments, generator_arguments
    from pix2pix_tf.models import build_discriminator, build_generator, norms

    # Keras' own convolutions and batch norm throughout, as published.
    config = config.replace(matmul_convs=False)
    generator = build_generator(**generator_arguments(config))
    discriminator = build_discriminator(**discriminator_arguments(config))
    for model in (generator, discriminator):
        norms.set_fused(model, False)  # Keras' own normalisation.
    loss_object = keras.losses.BinaryCrossentropy(from_logits=True)
    generator_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
    discriminator_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
    lambda_l1 = 100

    def generator_loss(disc_generated_output, gen_output, target):
        gan_loss = loss_object(tf.ones_like(disc_generated_output), disc_generated_output)
        l1_loss = tf.reduce_mean(tf.abs(target - gen_output))
        return gan_loss + lambda_l1 * l1_loss, gan_loss, l1_loss

    def discriminator_loss(disc_real_output, disc_generated_output):
        real_loss = loss_object(tf.ones_like(disc_real_output), disc_real_output)
        generated_loss = loss_object(tf.zeros_like(disc_generated_output), disc_generated_output)
        return real_loss + generated_loss

    @tf.function
    def train_step(input_image, target):
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            gen_output = generator(input_image, training=True)
            disc_real_output = discriminator([input_image, target], training=True)
            disc_generated_output = discriminator([input_image, gen_output], training=True)
            gen_total_loss, gen_gan_loss, gen_l1_loss = generator_loss(
                disc_generated_output, gen_output, target
            )
            disc_loss = discriminator_loss(disc_real_output, disc_generated_output)
        generator_gradients = gen_tape.gradient(gen_total_loss, generator.trainable_variables)
        discriminator_gradients = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(
            zip(generator_gradients, generator.trainable_variables, strict=True)
        )
        discriminator_optimizer.apply_gradients(
            zip(discriminator_gradients, discriminator.trainable_variables, strict=True)
        )
        return gen_total_loss

    return generator, discriminator, train_step


def _build_runner(spec: dict):
    """Returns (run(steps) -> seconds, flops_per_step, policy, image_size) for a variant."""
    import tensorflow as tf

    from pix2pix_tf import configs as config_lib
    from pix2pix_tf.benchmark import flops
    from pix2pix_tf.training import step as step_lib

    config = config_lib.build_config(**spec["config"], steps=1_000_000)
    size, batch = config.data.image_size, config.train.batch_size
    shape = [batch, *config_lib.image_hw(config.data)]
    inputs = tf.random.stateless_uniform(
        [*shape, config.data.input_channels], [0, 1], minval=-1, maxval=1
    )
    targets = tf.random.stateless_uniform(
        [*shape, config.data.output_channels], [0, 2], minval=-1, maxval=1
    )

    if spec["kind"] == BASELINE:
        generator, discriminator, train_step = _build_tutorial(config)
        policy = "float32"

        def call():
            return train_step(inputs, targets)

        per_call = 1
    else:
        from pix2pix_tf.models import conv

        conv.use_matmul_limits(spec.get("matmul_limits", "auto"))
        state = step_lib.build_train_state(
            config, total_steps=1_000_000, fused_adam=spec.get("fused_adam", True)
        )
        generator, discriminator, policy = state.generator, state.discriminator, state.policy
        per_call = config.train.steps_per_execution
        if per_call == 1:
            train_step = step_lib.make_train_step(config, state)

            def call():
                return train_step(inputs, targets)["gen_total"]

        else:
            train_steps = step_lib.make_train_loop(config, state)
            dataset = tf.data.Dataset.from_tensors((inputs, targets)).repeat()
            iterator = iter(state.strategy.experimental_distribute_dataset(dataset))

            def call():
                return train_steps(iterator, per_call)["gen_total"]

    def run(steps: int) -> float:
        calls = max(1, steps // per_call)
        start = time.perf_counter()
        for _ in range(calls):
            result = call()
        float(tf.reduce_sum(result))  # Waits for the last step.
        return (time.perf_counter() - start) / (calls * per_call)

    return run, flops.train_step_flops(generator, discriminator, batch), policy, size


def _resident_mb() -> float:
    """This process's resident memory now, in MB (/proc; the peak where there is none)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _tensor_memory(reset: bool = False) -> dict | None:
    """TensorFlow's CPU allocator: {'current', 'peak'} bytes of live tensors, or None;
    `reset` starts a new peak from the current bytes."""
    import tensorflow as tf

    try:
        memory = tf.config.experimental.get_memory_info("CPU:0")
        if reset:
            tf.config.experimental.reset_memory_stats("CPU:0")
        return memory
    except (ValueError, RuntimeError):
        return None


def serve_variant(spec_json: str) -> int:
    """Serves one variant: `run N` -> seconds per step; `quit` -> peak RSS, with the
    resident memory and live tensor bytes after building and the live tensors' peak."""
    spec = json.loads(spec_json)
    run, flop_count, policy, image_size = _build_runner(spec)
    built_rss, built_tensors = _resident_mb(), _tensor_memory(reset=True)
    run(spec["warmup"])
    ready = {"flops_per_step": flop_count, "policy": policy, "image_size": image_size}
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[0] == "run":
            print(json.dumps({"seconds_per_step": run(int(command[1]))}), flush=True)
        elif command[0] == "quit":
            break
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux.
    memory = {"peak_rss_mb": peak, "built_rss_mb": built_rss}
    tensors = _tensor_memory()
    if tensors is not None and built_tensors is not None:
        memory["built_tensor_mb"] = built_tensors["current"] / 2**20
        memory["peak_tensor_mb"] = tensors["peak"] / 2**20
    print(json.dumps(memory), flush=True)
    return 0


# ---------------------------------------------------------------------------
# Driver side.
# ---------------------------------------------------------------------------


def variants(args) -> dict[str, dict]:
    model = {"arch": args.arch, "batch_size": args.batch_size}
    if args.preset:
        model["preset"] = args.preset
    if args.image_size is not None:
        model["image_size"] = args.image_size
        model["load_size"] = args.image_size  # No jitter here; any value >= image_size.
    ours = {
        "precision": args.precision,
        "steps_per_execution": args.steps_per_execution,
        "jit_compile": args.jit_compile,
        "matmul_convs": args.matmul_convs,
        "fused_norm": args.fused_norm,
    }
    found = {BASELINE: {"kind": BASELINE, "config": {**model, "arch": "tutorial"}}}
    limits = args.matmul_limits
    found["ours"] = {"kind": "ours", "config": {**model, **ours}, "matmul_limits": limits[0]}
    for kind in limits[1:]:
        found[f"ours, matmul limits {kind}"] = {
            "kind": "ours",
            "config": {**model, **ours},
            "matmul_limits": kind,
        }
    if args.sizes:
        found = train_sizes.variants(model, ours, args.sizes)
    if args.levers:
        # The levers added one at a time, from the tutorial-equivalent float32 step.
        plain = {
            "precision": "float32",
            "steps_per_execution": 1,
            "jit_compile": False,
            "matmul_convs": False,
            "fused_norm": False,
        }
        found["+0 float32, Keras Adam"] = {
            "kind": "ours",
            "config": {**model, **plain},
            "fused_adam": False,
        }
        found["+1 fused Adam"] = {"kind": "ours", "config": {**model, **plain}}
        plain["matmul_convs"] = True
        found["+2 matmul small-map convs"] = {"kind": "ours", "config": {**model, **plain}}
        plain["precision"] = "mixed_bfloat16"
        found["+3 mixed_bfloat16"] = {"kind": "ours", "config": {**model, **plain}}
        plain["fused_norm"] = True
        found["+4 fused norm"] = {"kind": "ours", "config": {**model, **plain}}
        spe = max(args.steps_per_execution, 4)
        found[f"ours, steps_per_execution {spe}"] = {
            "kind": "ours",
            "config": {**model, **ours, "steps_per_execution": spe},
        }
        found["ours, jit_compile"] = {
            "kind": "ours",
            "config": {**model, **ours, "jit_compile": True},
        }
    for spec in found.values():
        spec["warmup"] = args.warmup
    return found


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m pix2pix_tf.benchmark train", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--image_size", default=None, help="SIZE or HxW. Default: the preset's, else 256."
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=None,
        metavar="HxW",
        help="Our step alone at each size, side by side (e.g. 256x256 256x512 512x512).",
    )
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--arch", choices=("paper", "tutorial"), default="paper")
    parser.add_argument("--preset", default=None, help="e.g. tiny, for a quick smoke run.")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "float32", "mixed_bfloat16", "mixed_float16"),
    )
    parser.add_argument("--steps_per_execution", type=int, default=1)
    parser.add_argument("--jit_compile", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--matmul_convs", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--fused_norm", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--matmul_limits",
        nargs="+",
        default=["auto"],
        choices=("auto", "default", "amx"),
        metavar="KIND",
        help="The row limits of the matmul convolutions (models/conv.py): auto (this CPU's), "
        "default, amx (AMX's bfloat16 limits); each one after the first is one more "
        "variant of ours, side by side.",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8, help="Timed steps per round.")
    parser.add_argument("--warmup", type=int, default=4, help="Untimed steps first.")
    parser.add_argument("--levers", action="store_true", help="Also time one lever at a time.")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="Our step in pieces (generator and discriminator forward, backward, optimizer "
        "update) against each one's floor on this machine (step_breakdown.py).",
    )
    parser.add_argument(
        "--layers",
        action="store_true",
        help="Each convolution of our step timed alone, forward and backward, against its "
        "FLOP floor, with the path it takes (layer_times.py).",
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args(argv)
    train_sizes.check_args(parser, args)
    if args.image_size is None and args.preset is None and not args.sizes:
        args.image_size = 256
    for name in ("batch_size", "rounds", "steps", "steps_per_execution"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}.")
    spe = max(args.steps_per_execution, 4) if args.levers else args.steps_per_execution
    if args.steps % spe or args.warmup % spe:
        parser.error(f"--steps and --warmup must be multiples of {spe} (--steps_per_execution).")
    return args


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        return serve_variant(os.environ["PIX2PIX_WORKER"])
    args = parse_args(argv)
    if args.breakdown:
        return _breakdown(args)
    if args.layers:
        return _layers(args)
    specs = variants(args)
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    workers, peaks = run_workers(specs, args.rounds, args.steps, log)
    if args.sizes:
        return train_sizes.report(args, workers, peaks)

    results = {}
    baseline = workers[BASELINE]
    for name, worker in workers.items():
        seconds = statistics.median(worker.seconds)
        ratios = [base / own for base, own in zip(baseline.seconds, worker.seconds, strict=True)]
        results[name] = {
            "policy": worker.info["policy"],
            "image_size": worker.info["image_size"],
            "config": specs[name]["config"],
            "images_per_s": args.batch_size / seconds,
            "ms_per_step": 1000 * seconds,
            "gflops_per_s": worker.info["flops_per_step"] / seconds / 1e9,
            "gflops_per_step": worker.info["flops_per_step"] / 1e9,
            "peak_rss_mb": peaks[name],
            "speed_ratio": statistics.median(ratios),
            "memory_ratio": peaks[name] / peaks[BASELINE],
            "rounds_ms_per_step": [1000 * value for value in worker.seconds],
        }
    ours = results["ours"]
    summary = {
        **{key: ours[key] for key in ("images_per_s", "ms_per_step", "gflops_per_s")},
        "peak_rss_mb": ours["peak_rss_mb"],
        "speed_ratio": ours["speed_ratio"],
        "memory_ratio": ours["memory_ratio"],
        "gflops_per_step": ours["gflops_per_step"],
        "flop_convention": _convention(),
        "image_size": ours["image_size"],
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "variants": results,
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    height, width = sizes.parse_size(ours["image_size"])
    print(
        f"{height}x{width}, batch {args.batch_size}, {args.rounds} rounds "
        f"of {args.steps} steps; medians. FLOPs: {_convention()}."
    )
    header = f"{'variant':32s} {'policy':15s} {'images/s':>9s} {'ms/step':>8s} "
    header += f"{'GFLOP/step':>10s} {'GFLOP/s':>8s} {'peak MB':>8s} "
    header += f"{'speed x':>8s} {'memory x':>8s}"
    print(header)
    for name, row in results.items():
        print(
            f"{name:32s} {row['policy']:15s} {row['images_per_s']:9.3f} {row['ms_per_step']:8.1f} "
            f"{row['gflops_per_step']:10.3g} {row['gflops_per_s']:8.1f} {row['peak_rss_mb']:8.0f} "
            f"{row['speed_ratio']:8.2f} {row['memory_ratio']:8.2f}"
        )
    print(
        f"ours vs tutorial: {ours['speed_ratio']:.2f}x images/s, "
        f"{ours['memory_ratio']:.2f}x peak memory"
    )
    return 0


def _breakdown(args) -> int:
    """--breakdown: our step's pieces against their floors, in this process."""
    from pix2pix_tf import configs as config_lib
    from pix2pix_tf.benchmark import step_breakdown
    from pix2pix_tf.models import conv

    spec = variants(args)["ours"]
    conv.use_matmul_limits(spec["matmul_limits"])
    config = config_lib.build_config(**spec["config"], steps=1_000_000)
    result = step_breakdown.measure(config, rounds=args.rounds, repeats=args.steps)
    result["flop_convention"] = _convention()
    print(json.dumps(result) if args.json else step_breakdown.report(result))
    return 0


def _layers(args) -> int:
    """--layers: each convolution of our step alone against its floor, in this process."""
    from pix2pix_tf import configs as config_lib
    from pix2pix_tf.benchmark import layer_times
    from pix2pix_tf.models import conv

    spec = variants(args)["ours"]
    conv.use_matmul_limits(spec["matmul_limits"])
    config = config_lib.build_config(**spec["config"], steps=1_000_000)
    result = layer_times.measure(config, repeats=args.steps)
    print(json.dumps(result) if args.json else layer_times.report(result))
    return 0


def _convention() -> str:
    from pix2pix_tf.benchmark.flops import CONVENTION

    return CONVENTION


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
