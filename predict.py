"""Runs a pix2pix generator over images from the command line.

    python predict.py --model exported/pix2pix --input labels/ --output results/ --gallery

--model is an exported SavedModel (a version directory or the TF Serving base path,
whose highest version is used) or a run directory (its latest checkpoint, or
--checkpoint). Writes <output>/<stem>.png per input, and with --strip / --gallery
side-by-side strips in <output>/strips/ and an <output>/index.html. Unreadable inputs
are skipped and listed; the exit status is non-zero only if nothing could be processed.
JPEGs are turned upright by their EXIF orientation first.
"""

import argparse
import os
import sys

# The config module does not import TensorFlow.
from pix2pix_tf.config import DIRECTIONS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="SavedModel, export base path or run dir.")
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="With a run directory as --model: this checkpoint (e.g. <run>/ckpt-1000) "
        "instead of the latest.",
    )
    parser.add_argument("--input", required=True, nargs="+", help="Image files and directories.")
    parser.add_argument("--output", required=True, help="Directory for the generated PNGs.")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--strip", action="store_true", help="Also write input | output strips.")
    parser.add_argument("--gallery", action="store_true", help="Strips plus an index.html.")
    parser.add_argument(
        "--pairs",
        action="store_true",
        help="Inputs are side-by-side pairs (as in the datasets): one half is sent to the "
        "model, the other is shown as the target in strips.",
    )
    parser.add_argument(
        "--direction",
        choices=DIRECTIONS,
        default=None,
        help="With --pairs: AtoB sends the left half. Default: the run's direction.",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    # Flags first: --help and flag errors answer without importing TensorFlow.
    args = parse_args(argv)
    try:
        return _predict(args)
    except KeyboardInterrupt:
        sys.stderr.write(
            f"predict.py: interrupted; the images already in {args.output} are complete.\n"
        )
        return 130


def _predict(args: argparse.Namespace) -> int:
    from pix2pix_tf.serving import predict as predict_lib

    try:
        model = predict_lib.load_model(args.model, args.checkpoint)
        print(f"Model: {model.description}")
        summary = predict_lib.predict(
            model,
            args.input,
            args.output,
            batch_size=args.batch_size,
            strip=args.strip,
            gallery=args.gallery,
            pairs=args.pairs,
            direction=args.direction,
        )
    except predict_lib.PredictError as error:
        sys.stderr.write(f"predict.py: error: {' '.join(str(error).split())}\n")
        return 1
    predict_lib.report(summary, args.output)
    return 0 if summary.written else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
