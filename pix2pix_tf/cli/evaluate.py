"""Evaluates a training run over a whole split: L1, PSNR, SSIM, the FCN-score, FID and KID.

    python evaluate.py --workdir checkpoints/cityscapes [--split val] [--eval_size training]

Scores each pair at its own size (the fully convolutional generator, inputs
reflect-padded to a multiple of 2^unet_depth), or with --eval_size training at the
run's training size. FID and KID compare the generated with the real target images in
InceptionV3's features (--fid auto|on|off; weights from the Keras cache or
--inception_weights).

Prints the report, and writes metrics.json, an HTML gallery, an image grid and
loss curves to <workdir>/evaluation/<split>_step<N>/, and the metrics to
TensorBoard (<workdir>/eval).
"""

import argparse
import os
import sys

# Flags are parsed before TensorFlow is imported: --help and flag errors answer at once.
from pix2pix_tf.cli import flags, startup
from pix2pix_tf.evaluation.options import EvalOptions
from pix2pix_tf.serving.options import RunOptions


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    flags.add_option_flags(parser, RunOptions, EvalOptions)
    flags.add_verbose_flag(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = flags.options_from_args(RunOptions, args)
    options = flags.options_from_args(EvalOptions, args)
    try:
        options.validate()
    except ValueError as error:
        sys.stderr.write(f"evaluate.py: error: {flags.one_line(error)}\n")
        return flags.EXIT_USAGE
    try:
        startup.start_tensorflow(args.verbose)
        from pix2pix_tf.evaluation import evaluator
        from pix2pix_tf.serving import tiling

        try:
            results, output_dir = evaluator.evaluate(run.workdir, options, run.checkpoint)
        except tiling.TilingError as error:  # A --tile the loaded generator cannot use.
            sys.stderr.write(f"evaluate.py: error: {flags.one_line(error)}\n")
            return flags.EXIT_USAGE
        except (ValueError, OSError) as error:
            sys.stderr.write(f"evaluate.py: error: {flags.one_line(error)}\n")
            return flags.EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("evaluate.py: interrupted; no report was written.\n")
        return flags.EXIT_INTERRUPTED
    print(evaluator.format_report(results))
    print(f"Report: {os.path.join(output_dir, 'index.html')}")
    return flags.EXIT_OK
