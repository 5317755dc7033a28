"""`python -m pix2pix_tf.benchmark train --sizes 256x256 256x512 512x512`: the report.

Our train step alone at each size, timed in the same alternating rounds by
train_benchmark.py's workers (one process per size, so each peak resident memory
is its own). Each row compares with the first size: pixels x, time x (the median
of the per-round ratios of ms/step) and memory x, so one sees whether the cost
grows linearly with the pixels.
"""

from __future__ import annotations

import json
import statistics

from pix2pix_tf.configs import sizes


def check_args(parser, args) -> None:
    """Size flags: sizes the models take, --sizes without --image_size or --levers, no repeats."""
    from pix2pix_tf import configs as config_lib

    try:
        for size in [args.image_size] if args.image_size is not None else args.sizes or []:
            # Sizes the models cannot take fail here, naming the nearest valid ones.
            config_lib.build_config(
                preset=args.preset, arch=args.arch, image_size=size, load_size=size
            )
    except ValueError as error:
        parser.error(str(error))
    if args.sizes and (args.image_size is not None or args.levers):
        parser.error("--sizes times our step alone: leave out --image_size and --levers.")
    if args.sizes and len(set(args.sizes)) != len(args.sizes):
        parser.error(f"--sizes repeats a size: {' '.join(args.sizes)}.")


def variants(model: dict, ours: dict, sizes: list[str]) -> dict[str, dict]:
    """Our step at each size (no jitter here: load_size = image_size)."""
    return {
        size: {"kind": "ours", "config": {**model, **ours, "image_size": size, "load_size": size}}
        for size in sizes
    }


def summarize(args, workers: dict, peaks: dict) -> dict:
    """The JSON summary: one row per size, ratios against the first."""
    first = args.sizes[0]
    first_pixels = _pixels(first)
    rows = {}
    for size in args.sizes:
        worker = workers[size]
        seconds = statistics.median(worker.seconds)
        ratios = [
            own / base for base, own in zip(workers[first].seconds, worker.seconds, strict=True)
        ]
        rows[size] = {
            "height_width": list(sizes.parse_size(size)),
            "policy": worker.info["policy"],
            "images_per_s": args.batch_size / seconds,
            "ms_per_step": 1000 * seconds,
            "ms_per_megapixel": 1000 * seconds / (_pixels(size) * args.batch_size / 1e6),
            "gflops_per_step": worker.info["flops_per_step"] / 1e9,
            "gflops_per_s": worker.info["flops_per_step"] / seconds / 1e9,
            "peak_rss_mb": peaks[size],
            "pixels_ratio": _pixels(size) / first_pixels,
            "time_ratio": statistics.median(ratios),
            "memory_ratio": peaks[size] / peaks[first],
            "rounds_ms_per_step": [1000 * value for value in worker.seconds],
        }
    return {
        "sizes": rows,
        "batch_size": args.batch_size,
        "arch": args.arch,
        "rounds": args.rounds,
        "steps_per_round": args.steps,
    }


def report(args, workers: dict, peaks: dict) -> int:
    summary = summarize(args, workers, peaks)
    if args.json:
        print(json.dumps(summary))
        return 0
    from pix2pix_tf.benchmark.flops import CONVENTION

    print(
        f"ours ({args.arch}), batch {args.batch_size}, {args.rounds} rounds of {args.steps} "
        f"steps; medians; ratios against {args.sizes[0]}. FLOPs: {CONVENTION}."
    )
    header = f"{'size':10s} {'policy':15s} {'images/s':>9s} {'ms/step':>8s} {'ms/Mpx':>7s} "
    header += f"{'GFLOP/step':>10s} {'GFLOP/s':>8s} {'peak MB':>8s} "
    header += f"{'pixels x':>8s} {'time x':>7s} {'memory x':>8s}"
    print(header)
    for size, row in summary["sizes"].items():
        print(
            f"{size:10s} {row['policy']:15s} {row['images_per_s']:9.3f} {row['ms_per_step']:8.1f} "
            f"{row['ms_per_megapixel']:7.0f} {row['gflops_per_step']:10.3g} "
            f"{row['gflops_per_s']:8.1f} {row['peak_rss_mb']:8.0f} {row['pixels_ratio']:8.2f} "
            f"{row['time_ratio']:7.2f} {row['memory_ratio']:8.2f}"
        )
    return 0


def _pixels(size: str) -> int:
    height, width = sizes.parse_size(size)
    return height * width
