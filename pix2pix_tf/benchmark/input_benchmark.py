"""Training input pipeline throughput: our TFRecord pipeline vs per-file JPEGs.

    python -m pix2pix_tf.benchmark input --dataset cityscapes [--json]

Both pipelines produce the same thing, training batches of one jittered pair:

- baseline: the straightforward per-file pipeline of the TensorFlow pix2pix
  tutorial: `list_files` -> read -> decode -> jitter (float resize to load_size,
  stacked random crop, random flip) -> batch(1) -> prefetch, the map parallel
  with AUTOTUNE. Its JPEGs are the records' original bytes, written once to
  `<data_dir>/downloads/benchmark/<dataset>/` (byte-identical to the archive).
- ours: `input_pipeline.build_dataset(..., training=True, batch_size=1)`.

The machine is shared, so absolute numbers drift: the two pipelines are timed
alternately for several rounds after a warm-up, and the report gives medians and
the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import tensorflow as tf

from pix2pix_tf import config as config_lib
from pix2pix_tf import datasets, input_pipeline, prepare

AUTOTUNE = tf.data.AUTOTUNE


def export_jpegs(data_config: config_lib.DataConfig, split: str, directory: str) -> str:
    """Writes the split's original image files to `directory` (once); returns it."""
    if os.path.isdir(directory):
        return directory
    files, side_by_side = input_pipeline.split_files(data_config, split)
    if not side_by_side:
        raise ValueError("The per-file baseline needs side-by-side pairs (not A/ and B/).")
    temporary = f"{directory}.incomplete-{os.getpid()}"
    os.makedirs(temporary, exist_ok=True)
    for serialized in tf.data.TFRecordDataset(files):
        features = input_pipeline.parse(serialized, side_by_side=True)
        name = os.path.basename(features["key"].numpy().decode())
        with open(os.path.join(temporary, name), "wb") as file:
            file.write(features["image"].numpy())
    os.replace(temporary, directory)
    return directory


def baseline_dataset(directory: str, data_config: config_lib.DataConfig, seed: int):
    """The tutorial's per-file pipeline (its load() and random_jitter())."""
    size, load_size = data_config.image_size, data_config.load_size

    def load_and_jitter(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        half = tf.shape(image)[1] // 2
        a = tf.cast(image[:, :half], tf.float32)
        b = tf.cast(image[:, half : 2 * half], tf.float32)
        a = tf.image.resize(a, [load_size, load_size], method="nearest")
        b = tf.image.resize(b, [load_size, load_size], method="nearest")
        pair = tf.image.random_crop(tf.stack([a, b]), size=[2, size, size, 3])
        pair = tf.cond(
            tf.random.uniform(()) > 0.5, lambda: tf.reverse(pair, axis=[2]), lambda: pair
        )
        pair = pair / 127.5 - 1.0
        return pair[1], pair[0]

    dataset = tf.data.Dataset.list_files(os.path.join(directory, "*"), shuffle=True, seed=seed)
    dataset = dataset.repeat().map(load_and_jitter, num_parallel_calls=AUTOTUNE)
    return dataset.batch(1).prefetch(AUTOTUNE)


def _time(iterator, count: int) -> tuple[float, float]:
    """(pairs per second, CPU milliseconds of this process per pair)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        next(iterator)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return count / wall, 1000 * cpu / count


def measure(variants: dict, *, rounds: int, pairs: int, warmup: int) -> dict[str, dict]:
    """Times each variant alternately; returns per-round pairs/s and CPU ms/pair.

    Before each timed stretch the variant's buffers, filled while the other
    ran, are drained by `warmup` untimed pairs, so every stretch measures the
    steady state.
    """
    iterators = {name: iter(dataset) for name, dataset in variants.items()}
    results = {name: {"pairs_per_s": [], "cpu_ms_per_pair": []} for name in variants}
    for _ in range(rounds):
        for name, iterator in iterators.items():
            _time(iterator, warmup)
            speed, cpu = _time(iterator, pairs)
            results[name]["pairs_per_s"].append(speed)
            results[name]["cpu_ms_per_pair"].append(cpu)
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pix2pix_tf.benchmark input",
        description=__doc__.split("\n\n")[0],
    )
    config_lib.add_preset_flag(parser)
    config_lib.add_config_flags(parser, only=("data",))
    parser.add_argument("--rounds", type=int, default=7, help="Alternating timing rounds.")
    parser.add_argument("--pairs", type=int, default=400, help="Timed image pairs per round.")
    parser.add_argument(
        "--warmup", type=int, default=200, help="Untimed pairs before each timed stretch."
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args(argv)
    if args.dataset is None:
        args.dataset = "cityscapes"
    data_config = config_lib.config_from_args(args).data

    report = prepare.prepare(data_config)
    split = "train"
    builder_name, config_name = datasets.builder_location(data_config)
    cache = os.path.join(data_config.data_dir, "downloads", "benchmark")
    jpeg_dir = export_jpegs(data_config, split, os.path.join(cache, f"{config_name}-{split}"))
    variants = {
        "baseline": baseline_dataset(jpeg_dir, data_config, args.seed),
        "ours": input_pipeline.build_dataset(
            data_config, split, training=True, batch_size=1, seed=args.seed
        ),
    }
    results = measure(variants, rounds=args.rounds, pairs=args.pairs, warmup=args.warmup)
    ours, baseline = results["ours"], results["baseline"]
    ratios = [o / b for o, b in zip(ours["pairs_per_s"], baseline["pairs_per_s"], strict=True)]
    summary = {
        "benchmark": "input",
        "dataset": data_config.dataset,
        "split": split,
        "examples": report.examples[split],
        "image_size": data_config.image_size,
        "load_size": data_config.load_size,
        "batch_size": 1,
        "rounds": args.rounds,
        "pairs_per_round": args.pairs,
        "pairs_per_s": statistics.median(ours["pairs_per_s"]),
        "baseline_pairs_per_s": statistics.median(baseline["pairs_per_s"]),
        "ratio": statistics.median(ratios),
        "cpu_ms_per_pair": statistics.median(ours["cpu_ms_per_pair"]),
        "baseline_cpu_ms_per_pair": statistics.median(baseline["cpu_ms_per_pair"]),
        "rounds_detail": results,
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"Input pipeline, {data_config.dataset} {split} ({summary['examples']} pairs), batch 1, "
        f"jitter {data_config.load_size} -> {data_config.image_size}, {args.rounds} alternating "
        f"rounds of {args.pairs} pairs, {os.cpu_count()} CPUs:"
    )
    for name in ("baseline", "ours"):
        speeds = results[name]["pairs_per_s"]
        cpu = statistics.median(results[name]["cpu_ms_per_pair"])
        print(
            f"  {name:9s} {statistics.median(speeds):7.1f} pairs/s (median), "
            f"{cpu:.2f} CPU ms/pair; "
            f"rounds: {' '.join(f'{value:.0f}' for value in speeds)}"
        )
    print(f"  ours / baseline: {summary['ratio']:.2f}x (median of the per-round ratios)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
