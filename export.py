"""Exports a trained generator as a versioned SavedModel for TF Serving.

    python export.py --workdir checkpoints/cityscapes --export_dir exported/pix2pix

writes exported/pix2pix/<version>/ (one above the highest version already there)
with the `serving_default` (PNG/JPEG bytes in, PNG bytes out) and `generate`
(float images in [-1, 1]) signatures, and a TF Serving warmup file.
"""

import argparse
import os
import sys

# Flags are parsed before TensorFlow is imported: --help and flag errors answer at once.
from pix2pix_tf import options as options_lib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv: list[str]) -> argparse.Namespace:
    defaults = options_lib.ServingOptions()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True, help="Run directory written by train.py.")
    parser.add_argument("--export_dir", default="exported/pix2pix", help="TF Serving base path.")
    parser.add_argument("--checkpoint", default=None, help="Checkpoint prefix (default: latest).")
    parser.add_argument("--version", type=int, default=None, help="Default: highest + 1.")
    parser.add_argument(
        "--precision",
        default="float32",
        choices=options_lib.PRECISIONS,
        help="Compute precision of the exported graph; float32 runs on any CPU or GPU.",
    )
    parser.add_argument(
        "--test_time_mode",
        default=defaults.test_time_mode,
        choices=options_lib.TEST_TIME_MODES,
        help="inference: moving BN statistics, no dropout. paper: per-image BN statistics "
        "and dropout noise seeded by the image content and --seed (still stateless).",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="Seed for paper mode.")
    parser.add_argument(
        "--resize_method",
        default=defaults.resize_method,
        choices=options_lib.RESIZE_METHODS,
        help="Resizing of inputs to the model's size and of outputs back (antialiased "
        "when shrinking).",
    )
    parser.add_argument(
        "--png_compression",
        type=int,
        default=defaults.png_compression,
        help="Output PNG compression, 0 (fastest) to 9 (smallest); -1: zlib's default.",
    )
    parser.add_argument(
        "--parallel_iterations",
        type=int,
        default=defaults.parallel_iterations,
        help="Images decoded/encoded concurrently within a request.",
    )
    parser.add_argument("--model_name", default="pix2pix", help="Model name in warmup requests.")
    parser.add_argument(
        "--warmup",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Write assets.extra/tf_serving_warmup_requests.",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        return _export(args)
    except KeyboardInterrupt:
        sys.stderr.write(
            f"export.py: interrupted; nothing was exported to {args.export_dir} "
            "(the staging folder was removed).\n"
        )
        return 130


def _export(args: argparse.Namespace) -> int:
    from pix2pix_tf.serving import export as export_lib

    options = options_lib.ServingOptions(
        resize_method=args.resize_method,
        png_compression=args.png_compression,
        parallel_iterations=args.parallel_iterations,
        test_time_mode=args.test_time_mode,
        seed=args.seed,
    )
    try:
        path = export_lib.export(
            args.workdir,
            args.export_dir,
            checkpoint=args.checkpoint,
            version=args.version,
            options=options,
            precision=args.precision,
            warmup=args.warmup,
            model_name=args.model_name,
        )
    except (export_lib.ExportError, ValueError, OSError) as error:
        sys.stderr.write(f"export.py: error: {_one_line(error)}\n")
        return 1
    print(f"Exported {path}")
    return 0


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
