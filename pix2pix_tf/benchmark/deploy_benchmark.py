"""Deployment runtimes side by side: TF SavedModel, LiteRT, ONNX Runtime (CPU, batch 1).

    python -m pix2pix_tf.benchmark deploy --workdir checkpoints/cityscapes
    python -m pix2pix_tf.benchmark deploy --model exported/pix2pix exported/pix2pix-litert \
        exported/pix2pix-onnx --json
    python -m pix2pix_tf.benchmark deploy --workdir RUN --parity val --quantize float16 int8

With --workdir, exports the run's latest checkpoint as a SavedModel, a float32 LiteRT
file (plus the --quantize variants) and an ONNX file into a temporary directory;
with --model, measures those exports (one per runtime). Each runtime runs the float
contract (`generate`: float32 [1, H, W, C] in [-1, 1], H x W the training size) on
the same inputs, in rounds that take turns between the runtimes (so load on the
machine hits them alike), with --threads intra-op threads each: TensorFlow's
SavedModel, the `ai-edge-litert` interpreter with its default CPU delegate (XNNPACK),
ONNX Runtime's CPUExecutionProvider. Reports p50/p95 latency, images/s (1 / mean
latency) and the file size (the SavedModel's: saved_model.pb and variables/).

--parity SPLIT also runs every export over the run's SPLIT inputs (at the training
size, centre-cropped) and reports the PSNR of its outputs against the SavedModel's
float outputs (dB, on the [-1, 1] scale with peak-to-peak 2, over the whole split;
null for identical outputs)
and the L1 of its outputs against the targets (the metric evaluate.py reports). For
Cityscapes-palette runs in their natural direction (label map -> photo) with a
segmenter of the training size under --segmenter_root (`python -m
pix2pix_tf.segmentation`), also the FCN-score of its outputs as evaluate.py computes
it (its segmenter loading and metrics): per-pixel accuracy, per-class accuracy and
class IoU against the input label maps, plus one line with the real targets' score
(the segmenter's ceiling); otherwise one line says why it is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import TYPE_CHECKING

from pix2pix_tf.evaluation.options import SEGMENTER_ROOT

if TYPE_CHECKING:
    import numpy as np


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pix2pix_tf.benchmark deploy", description=__doc__.split("\n\n")[0]
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--workdir", help="Run directory: export its latest checkpoint.")
    source.add_argument("--model", nargs="+", help="Exports (SavedModel, .tflite, .onnx).")
    parser.add_argument("--threads", type=int, default=2, help="Intra-op threads per runtime.")
    parser.add_argument("--rounds", type=int, default=30, help="Timed calls per runtime.")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed calls per runtime.")
    parser.add_argument("--parity", metavar="SPLIT", help="Also measure parity on this split.")
    parser.add_argument("--max_examples", type=int, default=100, help="With --parity.")
    parser.add_argument(
        "--segmenter_root",
        default=SEGMENTER_ROOT,
        help="With --parity: where the FCN-score's segmenters are (evaluate.py's default).",
    )
    parser.add_argument(
        "--quantize",
        nargs="*",
        default=[],
        choices=("float16", "dynamic_int8", "int8"),
        help="With --workdir: also export and measure these LiteRT variants.",
    )
    parser.add_argument(
        "--representative_examples",
        type=int,
        default=100,
        help="With --quantize int8: training inputs that calibrate it (export.py's flag).",
    )
    parser.add_argument(
        "--float_layers",
        help="With --quantize int8: convolutions kept in float32 (export.py's flag).",
    )
    parser.add_argument(
        "--sensitivity",
        action="store_true",
        help="With --workdir: also quantize int8 once per convolution with that layer in "
        "float32 and rank the layers by the PSNR each gains over the --parity inputs "
        "(default: val).",
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    return parser.parse_args(argv)


def export_all(
    workdir: str,
    directory: str,
    quantizations=(),
    representative_examples: int = 100,
    float_layers: tuple[str, ...] = (),
) -> dict[str, str]:
    """{name: path}: saved_model, litert, onnx and litert_<q> exports of the run."""
    from pix2pix_tf.serving import deploy
    from pix2pix_tf.serving import export as export_lib

    paths = {"saved_model": export_lib.export(workdir, os.path.join(directory, "sm"), warmup=False)}
    for fmt, quantize in [("litert", "none"), ("onnx", "none")] + [
        ("litert", q) for q in quantizations
    ]:
        name = fmt if quantize == "none" else f"{fmt}_{quantize}"
        int8 = quantize == "int8"
        folder = deploy.export(
            workdir,
            os.path.join(directory, name),
            fmt,
            quantize,
            representative_examples=representative_examples,
            float_layers=float_layers if int8 else (),
        )
        paths[name] = os.path.join(folder, deploy.FILE_NAMES[fmt])
    return paths


def _percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


def measure_speed(models: dict, images: np.ndarray, rounds: int, warmup: int) -> dict:
    """{name: latency_ms_p50/p95, images_per_s, file_mb}, rounds taking turns."""
    import numpy as np

    for model in models.values():
        for _ in range(warmup):
            model(images)
    latencies: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model(images)
            latencies[name].append((time.perf_counter() - start) * 1000.0)
    return {
        name: {
            "latency_ms_p50": round(_percentile(values, 50), 3),
            "latency_ms_p95": round(_percentile(values, 95), 3),
            "images_per_s": round(images.shape[0] * 1000.0 / float(np.mean(values)), 2),
            "file_mb": round(models[name].file_mb, 3),
        }
        for name, values in latencies.items()
    }


def measure_parity(models: dict, pairs: list[tuple[np.ndarray, np.ndarray]], segmenter=None):
    """{name: psnr_db against models["saved_model"], l1 against the targets[, fcn_*]}.

    With a `segmenter`, the FCN-score of each model's outputs against the input label
    maps, and {"real": ...} the targets' own score (None without one).
    """
    import numpy as np

    reference = [models["saved_model"](inputs) for inputs, _ in pairs]
    results = {}
    for name, model in models.items():
        outputs = reference if name == "saved_model" else [model(x) for x, _ in pairs]
        squared = np.mean([np.mean((o - r) ** 2) for o, r in zip(outputs, reference, strict=True)])
        l1 = np.mean([np.mean(np.abs(o - t)) for o, (_, t) in zip(outputs, pairs, strict=True)])
        # None (JSON null) when identical: the reference itself.
        psnr = None if squared == 0 else round(float(10.0 * np.log10(4.0 / squared)), 2)
        results[name] = {"psnr_db": psnr, "l1": round(float(l1), 5)}
        if segmenter is not None:
            results[name].update(fcn_score(segmenter, pairs, outputs))
    real = fcn_score(segmenter, pairs, [t for _, t in pairs]) if segmenter is not None else None
    return results, real


def fcn_score(segmenter, pairs, photos) -> dict:
    """evaluate.py's FCN-score of `photos` against the label maps (the pairs' inputs)."""
    import tensorflow as tf

    from pix2pix_tf.data import cityscapes_labels
    from pix2pix_tf.evaluation import metrics

    confusion = 0
    for (label_map, _), photo in zip(pairs, photos, strict=True):
        predictions = tf.argmax(segmenter(photo, training=False), axis=-1)
        labels = cityscapes_labels.colors_to_labels(label_map)
        confusion += metrics.confusion_matrix(
            labels, predictions, cityscapes_labels.NUM_CLASSES
        ).numpy()
    scores = metrics.segmentation_scores(confusion)
    return {
        f"fcn_{name}": round(getattr(scores, name), 4)
        for name in ("per_pixel_accuracy", "per_class_accuracy", "class_iou")
    }


def load_segmenter(config, root: str):
    """evaluate.py's segmenter for the run (its --fcn auto), or None after one line
    (on stderr, so --json keeps stdout to its one object) saying why not."""
    from pix2pix_tf.cli import flags
    from pix2pix_tf.evaluation import evaluator
    from pix2pix_tf.evaluation.options import EvalOptions

    if not evaluator.fcn_applies(config):
        sys.stderr.write(
            f"FCN-score skipped: {config.data.dataset} {config.data.direction} "
            f"({config.data.input_channels} -> {config.data.output_channels} channels) is "
            "not Cityscapes-palette label maps -> RGB photos.\n"
        )
        return None
    try:
        return evaluator.fcn_segmenter(config, EvalOptions(fcn="on", segmenter_root=root))
    except FileNotFoundError as error:
        sys.stderr.write(f"FCN-score skipped: {flags.one_line(error)}\n")
        return None


def split_pairs(config, split: str, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to `count` (input, target) float32 [1, H, W, C] of `split` at the training size."""
    from pix2pix_tf.data import pipeline, prepare

    dataset = prepare.prepare(config.data)
    batches = pipeline.build_dataset(dataset, split, training=False, batch_size=1)
    return [(x.numpy(), y.numpy()) for x, y in batches.take(count)]


def run(args: argparse.Namespace) -> dict:
    import numpy as np
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already running in this process (tests): its threads.
        pass
    from pix2pix_tf import configs as config_lib
    from pix2pix_tf.serving import deploy_runtimes

    with tempfile.TemporaryDirectory() as directory:
        if args.workdir:
            float_layers = tuple(n for n in (args.float_layers or "").split(",") if n)
            paths = export_all(
                args.workdir, directory, args.quantize, args.representative_examples, float_layers
            )
        else:
            paths = {}
            for path in args.model:
                kind, _ = deploy_runtimes.find(path)
                paths[kind] = path
            if "saved_model" not in paths and args.parity:
                raise ValueError("--parity needs a SavedModel among --model (the reference).")
        models = {name: deploy_runtimes.load(path, args.threads) for name, path in paths.items()}
        record = next(iter(models.values())).metadata
        height, width = record["training_size"]
        rng = np.random.default_rng(0)
        images = rng.uniform(-1.0, 1.0, (1, height, width, record["input_channels"]))
        results = measure_speed(models, images.astype(np.float32), args.rounds, args.warmup)
        if args.parity:
            config = config_lib.Config.from_dict(record["config"])
            pairs = split_pairs(config, args.parity, args.max_examples)
            segmenter = load_segmenter(config, args.segmenter_root)
            parity, real = measure_parity(models, pairs, segmenter)
            for name, values in parity.items():
                results[name].update(values, examples=len(pairs), split=args.parity)
            if real is not None:
                # Not a runtime: the JSON stays keyed by runtime; the text prints it.
                results["saved_model"]["fcn_real"] = real
        for values in results.values():
            values["threads"] = args.threads
            values["input"] = [1, height, width, record["input_channels"]]
        if args.sensitivity:
            from pix2pix_tf.benchmark import quantization_sweep

            config = config_lib.Config.from_dict(record["config"])
            inputs = [x for x, _ in split_pairs(config, args.parity or "val", args.max_examples)]
            results["int8_sensitivity"] = quantization_sweep.sweep(
                args.workdir, inputs, args.threads, args.representative_examples
            )
    return results


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.sensitivity and not args.workdir:
        sys.stderr.write("benchmark deploy: error: --sensitivity needs --workdir (a run).\n")
        return 2
    try:
        results = run(args)
    except (ValueError, OSError) as error:
        sys.stderr.write(f"benchmark deploy: error: {str(error).splitlines()[0]}\n")
        return 1
    if args.json:
        print(json.dumps(results, sort_keys=True))
        return 0
    sensitivity = results.pop("int8_sensitivity", None)
    print(f"{'runtime':20s} {'p50 ms':>9s} {'p95 ms':>9s} {'img/s':>8s} {'MB':>8s}  parity")
    for name, values in results.items():
        parity = ""
        if "psnr_db" in values:
            psnr = values["psnr_db"]
            parity = "reference" if psnr is None else f"{psnr} dB vs SavedModel"
            parity += f", L1 {values['l1']}"
        print(
            f"{name:20s} {values['latency_ms_p50']:9.2f} {values['latency_ms_p95']:9.2f} "
            f"{values['images_per_s']:8.1f} {values['file_mb']:8.3f}  {parity}"
        )
    real = results.get("saved_model", {}).get("fcn_real")
    if real is not None:
        print("FCN-score (per-pixel acc., per-class acc., class IoU):")
        rows = {name: values for name, values in results.items() if "fcn_class_iou" in values}
        for name, values in [*rows.items(), ("real targets (ceiling)", real)]:
            print(
                f"  {name:22s} {values['fcn_per_pixel_accuracy']:.4f}  "
                f"{values['fcn_per_class_accuracy']:.4f}  {values['fcn_class_iou']:.4f}"
            )
    first = next(iter(results.values()))
    print(f"batch 1, input {first['input']}, {first['threads']} threads per runtime")
    if sensitivity is not None:
        from pix2pix_tf.benchmark import quantization_sweep

        quantization_sweep.print_table(sensitivity)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
