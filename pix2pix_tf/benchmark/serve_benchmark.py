"""Serving cost of the exported SavedModel: bytes signature vs bare generator.

    python -m pix2pix_tf.benchmark serve --model exported/pix2pix
    python -m pix2pix_tf.benchmark serve --fresh_generator      # no trained run needed
    python -m pix2pix_tf.benchmark serve --fresh_generator --input_size 512 1024

For each batch size, calls `serving_default` (JPEG bytes in, PNG bytes out: decode,
pad or resize, generator, crop or resize, encode in the graph) and `generate` (the
generator alone on pre-decoded float tensors) alternately, in one process, and reports
images/s and p50/p95 latency of each, and the overhead of the in-graph pre/post-processing
as the median of the per-round ratios, in wall-clock time and in this process's CPU time
(the latter is robust to other load on the machine). The target is <= 20%.

A native-size export (the default) runs the generator at the inputs' own size, padded
to a multiple of 2^unet_depth: `generate` then gets the same padded size, so the
overhead compares like with like. A training-size export (`--serving_size training`)
resizes to the training size: `generate` gets that size.

`--fresh_generator` exports a freshly initialised full-size generator (paper
architecture, 256x256) to a temporary directory. Its output layer's weights are scaled
up so its images are textured, not flat grey (flat images encode unrealistically fast).
At the default PNG compression (1) this texture takes about twice as long to encode as
real Cityscapes photos of the same size, so the overhead reported is an upper bound.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

TARGET_OVERHEAD = 0.20


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pix2pix_tf.benchmark serve", description=__doc__.split("\n\n")[0]
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="SavedModel version dir or TF Serving base path.")
    source.add_argument(
        "--fresh_generator",
        action="store_true",
        help="Export a freshly initialised full-size paper generator and measure that.",
    )
    parser.add_argument("--image_size", type=int, default=256, help="With --fresh_generator.")
    parser.add_argument(
        "--png_compression",
        type=int,
        default=None,
        help="With --fresh_generator: output PNG compression (default: the export default).",
    )
    parser.add_argument(
        "--resize_method", default=None, help="With --fresh_generator: resize method."
    )
    parser.add_argument(
        "--serving_size",
        default=None,
        choices=("native", "training"),
        help="With --fresh_generator: native (default) or training.",
    )
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=20, help="Timed rounds per batch size.")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed rounds first.")
    parser.add_argument(
        "--input_size",
        type=int,
        nargs=2,
        default=None,
        metavar=("HEIGHT", "WIDTH"),
        help="Size of the JPEG inputs (default: the model's, so no resizing).",
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.add_argument(
        "--check", action="store_true", help="Exit 1 if the overhead exceeds the 20%% target."
    )
    return parser.parse_args(argv)


def _version_dir(path: str) -> str:
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return path
    if not tf.io.gfile.isdir(path):
        raise ValueError(f"--model {path}: no such directory.")
    versions = [name for name in tf.io.gfile.listdir(path) if name.strip("/").isdigit()]
    if not versions:
        raise ValueError(f"--model {path}: no saved_model.pb and no numbered versions.")
    return os.path.join(path, str(max(int(name.strip("/")) for name in versions)))


def export_fresh_generator(args: argparse.Namespace, directory: str) -> str:
    """Exports a freshly initialised paper generator with textured outputs."""
    import dataclasses

    from pix2pix_tf import models
    from pix2pix_tf.configs import build_config, generator_arguments
    from pix2pix_tf.serving import export as export_lib
    from pix2pix_tf.serving import graph as serving

    image_size = args.image_size
    overrides = {
        name: getattr(args, name)
        for name in ("png_compression", "resize_method", "serving_size")
        if getattr(args, name) is not None
    }
    options = dataclasses.replace(serving.ServingOptions(), **overrides)

    config = build_config(image_size=image_size)
    generator = models.build_generator(**generator_arguments(config))
    output_layer = generator.get_layer("output_deconv")
    kernel, *rest = output_layer.get_weights()
    output_layer.set_weights([kernel * 50.0, *rest])
    return export_lib.write_model(generator, directory, 1, options, warmup=False)


def make_inputs(batch_size: int, height: int, width: int, network_size, seed: int = 0):
    """JPEG bytes [batch] (smooth colour fields with edges, like label maps and photos)
    and the same images decoded and resized to float32 [batch, h, w, 3] in [-1, 1],
    (h, w) = `network_size`, the size the generator runs at."""
    rng = np.random.default_rng(seed)
    encoded, floats = [], []
    for _ in range(batch_size):
        coarse = rng.uniform(0, 255, size=(8, 8, 3)).astype(np.float32)
        pixels = tf.image.resize(coarse, [height, width], method="nearest")
        pixels = tf.cast(pixels + rng.normal(0, 8, size=(height, width, 3)), tf.float32)
        pixels = tf.cast(tf.clip_by_value(pixels, 0, 255), tf.uint8)
        data = tf.io.encode_jpeg(pixels, quality=90)
        decoded = tf.cast(tf.io.decode_jpeg(data), tf.float32)
        floats.append(tf.image.resize(decoded, network_size) / 127.5 - 1.0)
        encoded.append(data)
    return tf.stack(encoded), tf.stack(floats)


def _timed(function) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds of this process, all threads) for one call."""
    start, start_cpu = time.perf_counter(), time.process_time()
    outputs = function()
    for value in outputs.values():
        value.numpy()
    return time.perf_counter() - start, time.process_time() - start_cpu


def _stats(seconds: list[float], batch_size: int) -> dict:
    values = np.asarray(seconds)
    return {
        "images_per_s": round(batch_size * len(values) / float(values.sum()), 3),
        "p50_ms": round(float(np.percentile(values, 50)) * 1000, 2),
        "p95_ms": round(float(np.percentile(values, 95)) * 1000, 2),
    }


def measure(version_dir: str, args: argparse.Namespace) -> dict:
    loaded = tf.saved_model.load(version_dir)
    serve_bytes = loaded.signatures["serving_default"]
    generate = loaded.signatures["generate"]
    metadata = _export_metadata(version_dir)
    signature_shape = generate.structured_input_signature[1]["images"].shape
    native = signature_shape[1] is None
    if native:
        if "pad_multiple" not in metadata:
            raise ValueError(f"--model {version_dir}: no pad_multiple in its export metadata.")
        training_size = tuple(metadata["training_size"])
        multiple = metadata["pad_multiple"]
    else:
        training_size = (int(signature_shape[1]), int(signature_shape[2]))
    height, width = args.input_size or training_size
    # What the generator runs at: the padded input (native) or the training size.
    if native:
        network_size = [-(-height // multiple) * multiple, -(-width // multiple) * multiple]
    else:
        network_size = list(training_size)
    image_size = training_size[0] if training_size[0] == training_size[1] else list(training_size)
    results = {
        "model": version_dir,
        "image_size": image_size,
        "serving_size": "native" if native else "training",
        "network_size": network_size,
        "input_size": [height, width],
        "repeats": args.repeats,
        "target_overhead": TARGET_OVERHEAD,
        "batch_sizes": {},
    }
    for batch_size in args.batch_sizes:
        encoded, floats = make_inputs(batch_size, height, width, network_size)
        calls = {
            "bytes": lambda encoded=encoded: serve_bytes(image_bytes=encoded),
            "generator": lambda floats=floats: generate(images=floats),
        }
        times: dict[str, list[float]] = {"bytes": [], "generator": []}
        cpu_times: dict[str, list[float]] = {"bytes": [], "generator": []}
        for round_index in range(args.warmup + args.repeats):
            # Alternate which variant goes first, so drifting load hits both alike.
            order = ("bytes", "generator") if round_index % 2 == 0 else ("generator", "bytes")
            measured = {name: _timed(calls[name]) for name in order}
            if round_index >= args.warmup:
                for name, (seconds, cpu_seconds) in measured.items():
                    times[name].append(seconds)
                    cpu_times[name].append(cpu_seconds)
        ratios = np.asarray(times["bytes"]) / np.asarray(times["generator"])
        overhead = float(np.median(ratios)) - 1.0
        # CPU time counts the work done, whatever other processes take of the cores.
        cpu_ratios = np.asarray(cpu_times["bytes"]) / np.asarray(cpu_times["generator"])
        results["batch_sizes"][str(batch_size)] = {
            **_stats(times["bytes"], batch_size),
            "generator": _stats(times["generator"], batch_size),
            "overhead": round(overhead, 4),
            "cpu_overhead": round(float(np.median(cpu_ratios)) - 1.0, 4),
            "overhead_ratio_p50": round(
                float(np.percentile(times["bytes"], 50) / np.percentile(times["generator"], 50)),
                4,
            ),
        }
    return results


def _export_metadata(version_dir: str) -> dict:
    """What export.py recorded (training size, pad multiple); {} for older exports."""
    path = os.path.join(version_dir, "assets.extra", "pix2pix_export.json")
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, ValueError):
        return {}


def print_table(results: dict) -> None:
    height, width = results["input_size"]
    network_height, network_width = results["network_size"]
    print(
        f"serve benchmark: {results['model']} ({results['serving_size']} size: generator "
        f"at {network_height}x{network_width}, JPEG inputs {height}x{width}, "
        f"{results['repeats']} interleaved rounds)"
    )
    print(f"{'batch':>5}  {'endpoint':<36} {'images/s':>9} {'p50 ms':>9} {'p95 ms':>9}")
    for batch_size, entry in results["batch_sizes"].items():
        rows = (
            ("serving_default (bytes -> PNG bytes)", entry),
            ("generate (bare generator, floats)", entry["generator"]),
        )
        for name, stats in rows:
            print(
                f"{batch_size:>5}  {name:<36} {stats['images_per_s']:>9.2f} "
                f"{stats['p50_ms']:>9.1f} {stats['p95_ms']:>9.1f}"
            )
        verdict = "ok" if entry["overhead"] <= TARGET_OVERHEAD else "OVER TARGET"
        print(
            f"{batch_size:>5}  in-graph decode/resize/encode overhead: "
            f"{entry['overhead'] * 100:+.1f}% wall clock, {entry['cpu_overhead'] * 100:+.1f}% "
            f"CPU time (medians of per-round ratios; target <= {TARGET_OVERHEAD * 100:.0f}%: "
            f"{verdict})"
        )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or min(args.batch_sizes) < 1:
        sys.stderr.write("--repeats and --batch_sizes must be >= 1, --warmup >= 0.\n")
        return 2
    with tempfile.TemporaryDirectory(prefix="serve-benchmark-") as scratch:
        try:
            if args.fresh_generator:
                version_dir = export_fresh_generator(args, scratch)
            else:
                version_dir = _version_dir(args.model)
            results = measure(version_dir, args)
        except ValueError as error:
            sys.stderr.write(f"serve benchmark: error: {error}\n")
            return 2
        results["fresh_generator"] = bool(args.fresh_generator)
    if args.json:
        print(json.dumps(results, sort_keys=True))
    else:
        print_table(results)
    over = [entry["overhead"] > TARGET_OVERHEAD for entry in results["batch_sizes"].values()]
    return 1 if args.check and any(over) else 0
