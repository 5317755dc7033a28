"""Training input pipeline throughput: our TFRecord pipeline vs per-file JPEGs.

    python -m pix2pix_tf.benchmark input --dataset cityscapes [--cache_decoded] [--json]

Three pipelines produce the same thing, training batches of one jittered pair:

- baseline: the straightforward per-file pipeline: `list_files` -> read ->
  decode -> jitter -> batch(1) -> prefetch, with the TensorFlow pix2pix
  tutorial's load() and random_jitter() (float resize to load_size, stacked
  random crop, random flip) in a plain `map`.
- baseline_parallel: the same with the map parallel (AUTOTUNE), as the tutorial
  has it.
- ours: `input_pipeline.build_dataset(..., training=True, batch_size=1)` with
  the data flags given (e.g. --cache_decoded).

Resuming: the time to the first batch of our pipeline started at step 0 and at
`--resume_step` (default: the last step of the first epoch, the most records a
resume reads and skips without decoding), alternately over the same rounds.

The baselines read the records' original JPEG bytes, written once to
`<data_dir>/downloads/benchmark/<config>-train/` (byte-identical to the archive's
files). The machine is shared, so absolute numbers drift: the pipelines are
timed alternately for several rounds, each with a fresh iterator and untimed
warm-up pairs; the report gives medians, the median of the per-round ratios,
and the CPU time of this process per pair.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf.cli import flags
from pix2pix_tf.data import datasets, prepare
from pix2pix_tf.data import pipeline as input_pipeline

AUTOTUNE = tf.data.AUTOTUNE


def export_jpegs(dataset, split: str, directory: str) -> str:
    """Writes the split's original image files to `directory` (once); returns it."""
    if os.path.isdir(directory):
        return directory
    files, side_by_side = dataset.files(split), dataset.shards(split).side_by_side
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


def baseline_dataset(directory: str, data_config: config_lib.DataConfig, seed: int, parallel: bool):
    """The per-file pipeline, with the TF tutorial's load() and random_jitter().

    parallel=False is the straightforward version; parallel=True maps with
    AUTOTUNE parallelism, as the tutorial does.
    """
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
    parallelism = AUTOTUNE if parallel else None
    dataset = dataset.repeat().map(load_and_jitter, num_parallel_calls=parallelism)
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

    Every round starts a fresh iterator per variant and deletes it afterwards,
    so no pipeline keeps filling its buffers while another one is timed; the
    first `warmup` pairs of each stretch are not timed (thread start-up,
    autotuning).
    """
    results = {name: {"pairs_per_s": [], "cpu_ms_per_pair": []} for name in variants}
    for _ in range(rounds):
        for name, dataset in variants.items():
            iterator = iter(dataset)
            _time(iterator, warmup)
            speed, cpu = _time(iterator, pairs)
            del iterator
            results[name]["pairs_per_s"].append(speed)
            results[name]["cpu_ms_per_pair"].append(cpu)
    return results


def first_batch_ms(make_dataset, steps: tuple[int, ...], rounds: int) -> dict[int, list[float]]:
    """Milliseconds from building the pipeline at each start step to its first batch."""
    times: dict[int, list[float]] = {step: [] for step in steps}
    for _ in range(rounds):
        for step in steps:
            start = time.perf_counter()
            next(iter(make_dataset(step)))
            times[step].append(1000 * (time.perf_counter() - start))
    return times


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pix2pix_tf.benchmark input",
        description=__doc__.split("\n\n")[0],
    )
    flags.add_preset_flag(parser)
    flags.add_config_flags(parser, only=("data",))
    parser.add_argument("--rounds", type=int, default=7, help="Alternating timing rounds.")
    parser.add_argument("--pairs", type=int, default=400, help="Timed image pairs per round.")
    parser.add_argument(
        "--warmup", type=int, default=100, help="Untimed pairs before each timed stretch."
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--resume_step",
        type=int,
        default=None,
        help="Times the first batch of a run resumed at this step against one at step 0; "
        "default: the last step of the first epoch (batch 1).",
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args(argv)
    if args.dataset is None:
        args.dataset = "cityscapes"
    data_config = flags.config_from_args(args).data

    dataset = prepare.prepare(data_config)
    split = "train"
    config_name = datasets.locate(data_config).config_name
    cache = os.path.join(data_config.data_dir, "downloads", "benchmark")
    jpeg_dir = export_jpegs(dataset, split, os.path.join(cache, f"{config_name}-{split}"))
    training_options = data_config.training_input()
    variants = {
        "baseline": baseline_dataset(jpeg_dir, data_config, args.seed, parallel=False),
        "baseline_parallel": baseline_dataset(jpeg_dir, data_config, args.seed, parallel=True),
        "ours": input_pipeline.build_dataset(
            dataset, split, training=True, batch_size=1, seed=args.seed, **training_options
        ),
    }
    results = measure(variants, rounds=args.rounds, pairs=args.pairs, warmup=args.warmup)
    examples = dataset.num_examples(split)
    resume_step = examples - 1 if args.resume_step is None else args.resume_step
    first_batch = first_batch_ms(
        lambda step: input_pipeline.build_dataset(
            dataset,
            split,
            training=True,
            batch_size=1,
            seed=args.seed,
            start_step=step,
            **training_options,
        ),
        (0, resume_step),
        args.rounds,
    )

    def ratio(name):
        pairs = zip(results["ours"]["pairs_per_s"], results[name]["pairs_per_s"], strict=True)
        return statistics.median(ours / other for ours, other in pairs)

    medians = {
        name: {key: statistics.median(values) for key, values in result.items()}
        for name, result in results.items()
    }
    summary = {
        "benchmark": "input",
        "dataset": data_config.dataset,
        "split": split,
        "examples": examples,
        "image_size": data_config.image_size,
        "load_size": data_config.load_size,
        "cache_decoded": data_config.cache_decoded,
        "batch_size": 1,
        "rounds": args.rounds,
        "pairs_per_round": args.pairs,
        "pairs_per_s": medians["ours"]["pairs_per_s"],
        "baseline_pairs_per_s": medians["baseline"]["pairs_per_s"],
        "ratio": ratio("baseline"),
        "baseline_parallel_pairs_per_s": medians["baseline_parallel"]["pairs_per_s"],
        "ratio_vs_parallel": ratio("baseline_parallel"),
        "cpu_ms_per_pair": {name: median["cpu_ms_per_pair"] for name, median in medians.items()},
        "rounds_pairs_per_s": {name: result["pairs_per_s"] for name, result in results.items()},
        "resume_step": resume_step,
        "first_batch_ms": statistics.median(first_batch[0]),
        "resumed_first_batch_ms": statistics.median(first_batch[resume_step]),
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    cached = ", decoded images cached" if data_config.cache_decoded else ""
    print(
        f"Input pipeline, {data_config.dataset} {split} ({summary['examples']} pairs), batch 1, "
        f"jitter {data_config.load_size} -> {data_config.image_size}{cached}; {args.rounds} "
        f"alternating rounds of {args.pairs} pairs, {os.cpu_count()} CPUs:"
    )
    for name, result in results.items():
        rounds = " ".join(f"{value:.0f}" for value in result["pairs_per_s"])
        print(
            f"  {name:17s} {medians[name]['pairs_per_s']:7.1f} pairs/s, "
            f"{medians[name]['cpu_ms_per_pair']:.2f} CPU ms/pair (rounds: {rounds})"
        )
    print(f"  ours / baseline:          {summary['ratio']:.2f}x (median of per-round ratios)")
    print(f"  ours / baseline_parallel: {summary['ratio_vs_parallel']:.2f}x")
    print(
        f"  first batch: {summary['first_batch_ms']:.0f} ms at step 0, "
        f"{summary['resumed_first_batch_ms']:.0f} ms resumed at step {resume_step} (medians)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
