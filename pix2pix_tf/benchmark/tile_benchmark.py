"""Tiled against whole-image inference: peak memory, time, and how far apart they are.

    python -m pix2pix_tf.benchmark tile --workdir checkpoints/synthetic-quick \\
        --tiled_size 16384 --whole_size 4096 --tile 512 --overlap 64

The run is exported once to a temporary SavedModel whose --max_pixels admits the
whole-image size. An input mosaic is built from the run's evaluation-split inputs
(the model's own input domain, each example flipped at random so neighbours differ),
and `predict.py` runs in a fresh process per variant, its wall time (TensorFlow start-up,
decoding and writing included) and peak resident memory (that process's VmHWM)
measured:

- whole: predict.py without --tile at --whole_size (the largest size that fits is yours
  to choose; memory grows with the pixels);
- tiled: predict.py --tile at --whole_size, whose output is compared with the whole
  run's: PSNR over the whole image, over the seam bands (pixels within --seam_band of a
  tile edge inside the image), over the overlaps (pixels two or more tiles cover along
  either axis) and over the rest (one tile, away from its edges), and the largest
  difference in levels;
- tiled at --tiled_size (the issue's 16,384 x 16,384): memory and time.

With --picture PATH it also writes a crop of the tiled --whole_size output beside the
same crop with the tile grid drawn on it (tile edges in red, overlaps tinted) and the
difference from the whole-image output, 10x.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf.data import pipeline, prepare, registry
from pix2pix_tf.serving import export as export_lib
from pix2pix_tf.serving import predict as predict_lib
from pix2pix_tf.serving import tiling
from pix2pix_tf.serving.options import ServingOptions


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pix2pix_tf.benchmark tile", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workdir", required=True, help="Run directory (train.py's).")
    parser.add_argument("--tiled_size", type=int, default=16384, help="Side of the big input.")
    parser.add_argument(
        "--whole_size", type=int, default=4096, help="Side of the whole-image comparison."
    )
    parser.add_argument("--tile", default="512", help="predict.py --tile.")
    parser.add_argument("--overlap", type=int, default=64, help="predict.py --overlap.")
    parser.add_argument("--examples", type=int, default=50, help="Val inputs in the mosaic.")
    parser.add_argument("--picture", default=None, help="Write the grid picture here.")
    parser.add_argument("--picture_crop", type=int, default=768, help="Its crop side.")
    parser.add_argument("--skip_tiled_size", action="store_true", help="Only --whole_size.")
    parser.add_argument(
        "--whole_only_sizes",
        type=int,
        nargs="*",
        default=[],
        help="Also run whole-image predict.py at these sides (memory and time only).",
    )
    parser.add_argument(
        "--from_run",
        action="store_true",
        help="Run predict.py on the run directory itself, not a SavedModel export (for "
        "--tile_statistics image; the whole image is then bounded by 2048x2048).",
    )
    parser.add_argument("--tile_statistics", default="auto", help="predict.py's.")
    parser.add_argument(
        "--seam_band", type=int, default=32, help="Half-width of the seam bands, in pixels."
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    return parser.parse_args(argv)


def val_inputs(workdir: str, count: int) -> list[np.ndarray]:
    """Up to `count` uint8 inputs [h, w, C] of the run's evaluation split."""
    config = config_lib.Config.from_json(os.path.join(workdir, config_lib.CONFIG_FILE))
    dataset = prepare.prepare(config.data)
    split = registry.dataset_info(config.data.dataset).eval_split
    batches = pipeline.build_dataset(dataset, split, training=False, batch_size=1)
    return [
        np.round((inputs[0].numpy() + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
        for inputs, _ in batches.take(count)
    ]


def mosaic(examples: list[np.ndarray], side: int, seed: int = 0) -> np.ndarray:
    """A side x side uint8 image of `examples` laid edge to edge, each flipped at random."""
    rng = np.random.default_rng(seed)
    height, width = examples[0].shape[:2]
    image = np.empty((side, side, examples[0].shape[2]), np.uint8)
    for top in range(0, side, height):
        for left in range(0, side, width):
            example = examples[rng.integers(len(examples))]
            if rng.integers(2):
                example = example[:, ::-1]
            if rng.integers(2):
                example = example[::-1]
            block = image[top : top + height, left : left + width]
            block[...] = example[: block.shape[0], : block.shape[1]]
    return image


# Runs predict.py's main and prints the process's peak resident memory (VmHWM) last.
# ru_maxrss from wait4 is no use here: Linux keeps a forked child's high-water mark
# across exec, so it would report the benchmark's own size at the fork.
_CHILD = """
import sys
from pix2pix_tf.cli import predict
code = predict.main(sys.argv[1:])
with open("/proc/self/status") as status:
    peak = [line.split()[1] for line in status if line.startswith("VmHWM:")][0]
sys.stderr.write(f"\\nVmHWM_KB {peak}\\n")
sys.exit(code)
"""


def run_predict(arguments: list[str]) -> dict:
    """predict.py in a fresh process: wall seconds and its own peak RSS in MB."""
    command = [sys.executable, "-c", _CHILD, *arguments]
    start = time.perf_counter()
    process = subprocess.run(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        check=False,
    )
    seconds = time.perf_counter() - start
    errors = process.stderr.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"predict.py {' '.join(arguments)} failed:\n{errors[-2000:]}")
    peak_kb = int(errors.rsplit("VmHWM_KB ", 1)[1].split()[0])
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_kb / 1024)}


def psnr(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size == 0:
        return None
    error = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if error == 0 else 10 * np.log10(255.0**2 / error)


def coverage(layout: tiling.Plan) -> np.ndarray:
    """bool [H, W]: pixels two or more tiles cover along either axis (the overlaps)."""
    counts = []
    for starts, size, length in (
        (layout.row_starts, layout.tile_hw[0], layout.height),
        (layout.column_starts, layout.tile_hw[1], layout.width),
    ):
        count = np.zeros(max(length, starts[-1] + size), int)
        for start in starts:
            count[start : start + size] += 1
        counts.append(count[:length] > 1)
    return counts[0][:, None] | counts[1][None, :]


def near_edges(layout: tiling.Plan, band: int) -> np.ndarray:
    """bool [H, W]: pixels within `band` pixels of a tile edge inside the image (where a
    tile's context is cut: the seam bands, whatever the overlap)."""
    masks = []
    for starts, size, length in (
        (layout.row_starts, layout.tile_hw[0], layout.height),
        (layout.column_starts, layout.tile_hw[1], layout.width),
    ):
        mask = np.zeros(length, bool)
        for start in starts:
            for edge in (start, start + size):
                if 0 < edge < length:
                    mask[max(edge - band, 0) : edge + band] = True
        masks.append(mask)
    return masks[0][:, None] | masks[1][None, :]


def grid_picture(
    image: np.ndarray, whole: np.ndarray, layout: tiling.Plan, crop: int
) -> np.ndarray:
    """Three panels of the top-left `crop`: the tiled output; the same with the tile grid
    drawn on it (each tile's edges in red, the overlaps tinted yellow); and |tiled -
    whole| x 10 (black: identical)."""
    view = image[:crop, :crop, :3]
    if view.shape[-1] == 1:
        view = np.repeat(view, 3, axis=-1)
    marked = view.astype(np.float32)
    seams = coverage(layout)[:crop, :crop]
    marked[seams] = 0.75 * marked[seams] + 0.25 * np.array([255.0, 255.0, 0.0])
    for top, left, bottom, right in layout.boxes():
        for row in (top, bottom - 1):
            if row < crop:
                marked[row, left : min(right, crop)] = (255, 0, 0)
        for column in (left, right - 1):
            if column < crop:
                marked[top : min(bottom, crop), column] = (255, 0, 0)
    difference = np.abs(view.astype(np.int32) - whole[:crop, :crop, :3].astype(np.int32))
    difference = np.clip(difference * 10, 0, 255).astype(np.uint8)
    if difference.shape[-1] == 1:
        difference = np.repeat(difference, 3, axis=-1)
    gap = np.full((view.shape[0], 8, 3), 255, np.uint8)
    panels = [view, gap, marked.round().astype(np.uint8), gap, difference]
    return np.concatenate(panels, axis=1)


def _decode(path: str) -> np.ndarray:
    return tf.io.decode_png(open(path, "rb").read()).numpy()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.json:
        # Only the JSON object on stdout: what preparing the data prints goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            results = _measure(args)
    else:
        results = _measure(args)
    print(json.dumps(results, indent=None if args.json else 2))
    return 0


def _measure(args: argparse.Namespace) -> dict:
    log = (lambda text: None) if args.json else (lambda text: print(text, flush=True))
    results: dict = {
        "cpu": _cpu(),
        "tile": args.tile,
        "overlap": args.overlap,
        "whole_size": args.whole_size,
    }
    with tempfile.TemporaryDirectory(prefix="tile-benchmark-") as root:
        sides = [args.whole_size, *args.whole_only_sizes]
        bound = max(max(sides) ** 2, ServingOptions().max_pixels)
        export_dir = os.path.join(root, "exported")
        export_lib.export(
            args.workdir, export_dir, options=ServingOptions(max_pixels=bound), warmup=False
        )
        examples = val_inputs(args.workdir, args.examples)
        model = predict_lib.load_model(export_dir)
        tile_hw = tuple(int(side) for side in (args.tile.split("x") * 2)[:2])

        whole_input = os.path.join(root, "whole", "mosaic.png")
        os.makedirs(os.path.dirname(whole_input))
        with open(whole_input, "wb") as file:
            image = mosaic(examples, args.whole_size)
            file.write(tf.io.encode_png(image, compression=1).numpy())
        served = args.workdir if args.from_run else export_dir
        common = ["--model", served, "--input", whole_input]
        log(f"whole image {args.whole_size}x{args.whole_size} ...")
        results["whole"] = run_predict([*common, "--output", os.path.join(root, "out_whole")])
        log(f"  {results['whole']}")
        log(f"tiled {args.whole_size}x{args.whole_size} ...")
        tiled_args = ["--tile", args.tile, "--overlap", str(args.overlap)]
        tiled_args += ["--tile_statistics", args.tile_statistics]
        results["model"] = "run directory" if args.from_run else "SavedModel"
        results["tile_statistics"] = args.tile_statistics
        results["tiled_whole_size"] = run_predict(
            [*common, "--output", os.path.join(root, "out_tiled"), *tiled_args]
        )
        log(f"  {results['tiled_whole_size']}")
        whole = _decode(os.path.join(root, "out_whole", "mosaic.png"))
        tiled = _decode(os.path.join(root, "out_tiled", "mosaic.png"))
        layout = tiling.plan(whole.shape[:2], tile_hw, args.overlap, model.tiled)
        seams = coverage(layout)
        results["tiles_whole_size"] = layout.count
        shared = [
            before + layout.tile_hw[0] - after
            for before, after in zip(layout.row_starts, layout.row_starts[1:], strict=False)
        ]
        results["effective_overlap"] = [min(shared), max(shared)] if shared else [0, 0]
        edges = near_edges(layout, args.seam_band)
        alone = ~seams & ~edges
        results["psnr_db"] = {
            "image": round(psnr(tiled, whole), 2),
            f"within_{args.seam_band}px_of_tile_edges": _rounded(psnr(tiled[edges], whole[edges])),
            "overlaps": _rounded(psnr(tiled[seams], whole[seams])),
            "one_tile_away_from_edges": _rounded(psnr(tiled[alone], whole[alone])),
            "edge_band_fraction": round(float(edges.mean()), 3),
            "overlap_fraction": round(float(seams.mean()), 3),
            "max_level_difference": int(np.abs(tiled.astype(int) - whole.astype(int)).max()),
        }
        log(f"  PSNR tiled vs whole: {results['psnr_db']}")
        if args.picture:
            picture = grid_picture(tiled, whole, layout, args.picture_crop)
            with open(args.picture, "wb") as file:
                file.write(tf.io.encode_png(picture, compression=9).numpy())
            log(f"  wrote {args.picture}")
        del whole, tiled, image
        for side in args.whole_only_sizes:
            path = os.path.join(root, f"whole_{side}", "mosaic.png")
            os.makedirs(os.path.dirname(path))
            with open(path, "wb") as file:
                file.write(tf.io.encode_png(mosaic(examples, side), compression=1).numpy())
            log(f"whole image {side}x{side} ...")
            output = os.path.join(root, f"out_whole_{side}")
            results[f"whole_{side}"] = run_predict(
                ["--model", served, "--input", path, "--output", output]
            )
            log(f"  {results[f'whole_{side}']}")
            shutil.rmtree(os.path.dirname(path))
            shutil.rmtree(output)
        if not args.skip_tiled_size:
            big_input = os.path.join(root, "big", "mosaic.png")
            os.makedirs(os.path.dirname(big_input))
            with open(big_input, "wb") as file:
                image = mosaic(examples, args.tiled_size, seed=1)
                file.write(tf.io.encode_png(image, compression=1).numpy())
                del image
            results["tiled_size"] = args.tiled_size
            results["input_mb"] = round(os.path.getsize(big_input) / 2**20)
            log(f"tiled {args.tiled_size}x{args.tiled_size} ...")
            results["tiled_big"] = run_predict(
                ["--model", served, "--input", big_input, "--output",
                 os.path.join(root, "out_big"), *tiled_args]
            )  # fmt: skip
            output = os.path.join(root, "out_big", "mosaic.png")
            results["output_mb"] = round(os.path.getsize(output) / 2**20)
            log(f"  {results['tiled_big']}")
    results["parent_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return results


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
