"""Train step memory and speed with and without --remat, and the analytic estimate.

    python -m pix2pix_tf.benchmark memory --preset hd512 --generator resnet [--json]
    python -m pix2pix_tf.benchmark memory --preset hd1024 --precision float32 --no-measure

Takes the training flags (--dataset, --preset, --image_size, --generator, --ngf,
--num_discriminators, --batch_size, --precision ...; see `python train.py --help`) and
runs the train step of that config twice, `plain` and with `--remat`, each in its own
worker process (benchmark/workers.py, the train benchmark's: real optimizer updates on
fixed synthetic tensors), so that each peak resident memory (ru_maxrss) is its own. The
workers are timed in turn for --rounds rounds of --steps_per_round steps after
--warmup_steps untimed ones; the report gives medians, the median of the per-round time
ratios (remat / plain) and the ratio of the peaks. Peak RSS holds the TensorFlow runtime,
weights and Adam's moments besides the activations, so each peak is also split (from
TensorFlow's CPU allocator statistics, `composition`) into the runtime, the weights and
moments, the step's live tensors above them (activations, gradients: what --remat works
on) and the rest; the report gives the ratio of the step's live tensors too.

Then (unless --no-estimate) the analytic estimate of benchmark/memory_estimate.py for the
same config: the bytes of every layer output the backward pass keeps, batch 1, at the
compute dtype the config resolves to here, and the parameters with their gradients and
Adam moments. --no-measure prints the estimate alone (no step is run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from pix2pix_tf import configs as config_lib
from pix2pix_tf.benchmark.workers import run_workers
from pix2pix_tf.cli import flags

VARIANTS = ("plain", "remat")
# Config flags the benchmark sets itself.
OWN_FIELDS = ("remat", "steps", "epochs")


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, dict]:
    """(the benchmark's own flags, the config's keyword arguments for build_config)."""
    parser = argparse.ArgumentParser(
        prog="python -m pix2pix_tf.benchmark memory",
        description=__doc__.split("\n\n")[0],
        usage="python -m pix2pix_tf.benchmark memory [--preset NAME] [--FIELD VALUE ...]",
    )
    bench = parser.add_argument_group("benchmark")
    bench.add_argument("--rounds", type=int, default=3)
    bench.add_argument("--steps_per_round", type=int, default=2, help="Timed steps per round.")
    bench.add_argument("--warmup_steps", type=int, default=1, help="Untimed steps first.")
    bench.add_argument(
        "--measure",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Run the two workers (--no-measure: the estimate alone).",
    )
    bench.add_argument(
        "--estimate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Print the analytic activation-memory estimate.",
    )
    bench.add_argument("--json", action="store_true", help="Print one JSON object.")
    flags.add_preset_flag(parser)
    flags.add_config_flags(parser)
    config, args = flags.parse_config(parser, argv)
    for name in OWN_FIELDS:
        if getattr(args, name) is not None:
            parser.error(f"--{name} is set by the benchmark; leave it out.")
    for name in ("rounds", "steps_per_round", "warmup_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}.")
    spe = config.train.steps_per_execution
    if args.steps_per_round % spe or args.warmup_steps % spe:
        parser.error(
            f"--steps_per_round and --warmup_steps must be multiples of {spe} "
            f"(--steps_per_execution)."
        )
    if not (args.measure or args.estimate):
        parser.error("--no-measure with --no-estimate leaves nothing to do.")
    overrides = {
        name: getattr(args, name)
        for name in config_lib.FIELD_SECTION
        if name not in OWN_FIELDS and getattr(args, name, None) is not None
    }
    overrides["preset"] = args.preset
    return args, overrides


def measure(args, overrides: dict, log) -> dict:
    """Both variants side by side: per variant peak RSS and ms/step, and their ratios."""
    specs = {
        name: {
            "kind": "ours",
            "config": {**overrides, "remat": name == "remat"},
            "warmup": args.warmup_steps,
        }
        for name in VARIANTS
    }
    workers, peaks = run_workers(specs, args.rounds, args.steps_per_round, log)
    plain, remat = (workers[name].seconds for name in VARIANTS)
    rows = {
        name: {
            "peak_rss_mb": peaks[name],
            "ms_per_step": 1000 * statistics.median(workers[name].seconds),
            "rounds_ms_per_step": [1000 * seconds for seconds in workers[name].seconds],
            "policy": workers[name].info["policy"],
            "image_size": workers[name].info["image_size"],
            **composition(workers[name].memory),
        }
        for name in VARIANTS
    }
    summary = {
        "variants": rows,
        "memory_ratio": peaks["remat"] / peaks["plain"],
        "peak_saved_mb": peaks["plain"] - peaks["remat"],
        "time_ratio": statistics.median(b / a for a, b in zip(plain, remat, strict=True)),
        "rounds": args.rounds,
        "steps_per_round": args.steps_per_round,
        "warmup_steps": args.warmup_steps,
    }
    if all("step_tensor_mb" in row for row in rows.values()) and rows["plain"]["step_tensor_mb"]:
        summary["step_tensor_ratio"] = (
            rows["remat"]["step_tensor_mb"] / rows["plain"]["step_tensor_mb"]
        )
    return summary


def composition(memory: dict) -> dict:
    """What a worker's peak RSS holds, from its memory reply (train_benchmark.serve_variant):

    - `runtime_mb`: resident memory after building, less the live tensors then (the
      TensorFlow runtime, the models' Python objects, the traced functions);
    - `built_tensor_mb`: the live tensors after building (weights, Adam's moments, the
      fixed batch), which no recomputation can remove;
    - `step_tensor_mb`: the live tensors' peak during the steps above those (activations
      the backward pass keeps, gradients, what a segment recomputes), the part --remat
      works on;
    - `untracked_mb`: the rest of the peak, memory outside TensorFlow's tensors that the
      steps added (oneDNN's buffers, the C library's retained free blocks).

    Live tensor bytes are TensorFlow's CPU allocator's statistics
    (tf.config.experimental.get_memory_info), which in TensorFlow's oneDNN builds count
    the allocations of 256 KiB and more (smaller ones go to a small-size allocator
    without statistics and fall under `runtime_mb` and `untracked_mb`); without the
    statistics only the resident memory after building is given."""
    if "built_rss_mb" not in memory:
        return {}
    if "peak_tensor_mb" not in memory:
        return {"built_rss_mb": memory["built_rss_mb"]}
    runtime = memory["built_rss_mb"] - memory["built_tensor_mb"]
    return {
        "runtime_mb": runtime,
        "built_tensor_mb": memory["built_tensor_mb"],
        "step_tensor_mb": memory["peak_tensor_mb"] - memory["built_tensor_mb"],
        "untracked_mb": memory["peak_rss_mb"] - memory["peak_tensor_mb"] - runtime,
    }


def estimate(overrides: dict) -> dict:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pix2pix_tf.benchmark import memory_estimate
    from pix2pix_tf.training import precision

    config = config_lib.build_config(**overrides)
    policy = precision.resolve_precision(config.train.precision)
    return memory_estimate.estimate(config, policy)


def main(argv: list[str]) -> int:
    args, overrides = parse_args(argv)
    config = config_lib.build_config(**overrides)
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    summary = {
        "image_size": config.data.image_size,
        "generator": config.model.generator,
        "batch_size": config.train.batch_size,
        "config": overrides,
    }
    if args.measure:
        summary.update(measure(args, overrides, log))
    if args.estimate:
        summary["estimate"] = estimate(overrides)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"{summary['image_size']}, --generator {summary['generator']}, batch "
        f"{summary['batch_size']}" + (f", preset {args.preset}" if args.preset else "")
    )
    if args.measure:
        print(
            f"{args.rounds} rounds of {args.steps_per_round} steps after {args.warmup_steps} "
            f"warm-up; medians"
        )
        parts = ("runtime_mb", "built_tensor_mb", "step_tensor_mb", "untracked_mb")
        rows = summary["variants"]
        split = all(part in row for row in rows.values() for part in parts)
        header = f"{'variant':8s} {'policy':15s} {'ms/step':>9s} {'peak MB':>8s}"
        if split:
            header += f" = {'runtime':>7s} + {'weights':>7s} + {'step':>7s} + {'other':>6s}"
        print(header)
        for name, row in rows.items():
            line = (
                f"{name:8s} {row['policy']:15s} {row['ms_per_step']:9.1f} {row['peak_rss_mb']:8.0f}"
            )
            if split:
                line += "   " + " + ".join(f"{row[part]:7.0f}" for part in parts[:3])
                line += f" + {row['untracked_mb']:6.0f}"
            print(line)
        if split:
            print(
                "(runtime: resident after building, less its tensors; weights: the live "
                "tensors then, weights and Adam's moments; step: the live tensors' peak above "
                "them, activations and gradients; other: the rest of the peak)"
            )
        print(
            f"remat vs plain: {summary['time_ratio']:.2f}x time per step, "
            f"{summary['memory_ratio']:.2f}x peak memory ({summary['peak_saved_mb']:+.0f} MB saved)"
            + (
                f", {summary['step_tensor_ratio']:.2f}x the step's live tensors"
                if "step_tensor_ratio" in summary
                else ""
            )
        )
    if args.estimate:
        from pix2pix_tf.benchmark import memory_estimate

        print(memory_estimate.describe(summary["estimate"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
