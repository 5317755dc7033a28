"""Evaluates a training run over a whole split: L1, PSNR, SSIM and the FCN-score.

    python evaluate.py --workdir checkpoints/cityscapes [--split val]

Prints the report, and writes metrics.json, an HTML gallery, an image grid and
loss curves to <workdir>/evaluation/<split>_step<N>/, and the metrics to
TensorBoard (<workdir>/eval).
"""

import argparse
import os
import sys

# Flags are parsed before TensorFlow is imported: --help and flag errors answer at once.
from pix2pix_tf import options as options_lib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = options_lib.EvalOptions()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True, help="Run directory written by train.py.")
    parser.add_argument("--checkpoint", default=None, help="Checkpoint path (default: latest).")
    parser.add_argument("--split", default=None, help="Split to score (default: val).")
    parser.add_argument("--batch_size", type=int, default=defaults.batch_size)
    parser.add_argument(
        "--fcn",
        choices=options_lib.FCN_CHOICES,
        default=defaults.fcn,
        help="FCN-score: auto (when a segmenter is trained), on (required), off.",
    )
    parser.add_argument("--segmenter_root", default=defaults.segmenter_root)
    parser.add_argument("--gallery_size", type=int, default=defaults.gallery_size)
    parser.add_argument("--max_examples", type=int, default=None)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return _evaluate(args)
    except KeyboardInterrupt:
        sys.stderr.write("evaluate.py: interrupted; no report was written.\n")
        return 130


def _evaluate(args: argparse.Namespace) -> int:
    from pix2pix_tf.evaluation import evaluator as evaluation

    options = options_lib.EvalOptions(
        split=args.split,
        batch_size=args.batch_size,
        fcn=args.fcn,
        segmenter_root=args.segmenter_root,
        gallery_size=args.gallery_size,
        max_examples=args.max_examples,
    )
    try:
        results, output_dir = evaluation.evaluate(args.workdir, options, args.checkpoint)
    except (ValueError, FileNotFoundError) as error:
        # The missing-segmenter message puts the command that trains it on its own line.
        sys.stderr.write(f"evaluate.py: error: {error}\n")
        return 2
    print(evaluation.format_report(results))
    print(f"Report: {os.path.join(output_dir, 'index.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
