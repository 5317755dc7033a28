"""`python -m pix2pix_tf.segmentation` (`pix2pix-segmentation`): trains the FCN-score's
segmenter (pix2pix_tf/evaluation/segmenter.py, imported once the flags are parsed)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from pix2pix_tf import configs as config_lib
from pix2pix_tf.cli import flags, startup
from pix2pix_tf.configs import sizes
from pix2pix_tf.evaluation.options import SegmenterConfig, SegmenterPaths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pix2pix_tf.segmentation",
        description="Train the segmentation network behind the FCN-score.",
    )
    flags.add_option_flags(parser, SegmenterConfig, SegmenterPaths)
    flags.add_verbose_flag(parser)
    args = parser.parse_args(argv)
    startup.start_tensorflow(args.verbose)
    from pix2pix_tf.evaluation import segmenter

    config = flags.options_from_args(SegmenterConfig, args)
    paths = flags.options_from_args(SegmenterPaths, args)
    try:
        config = dataclasses.replace(
            config, image_size=sizes.format_size(*sizes.parse_size(config.image_size))
        )
        base = config_lib.build_config(
            dataset=config.dataset, data_dir=paths.data_dir, manual_dir=paths.manual_dir
        ).data
    except ValueError as error:
        parser.error(flags.one_line(error))  # Exits with status 2.
    try:
        directory = segmenter.train_segmenter(config, paths.root, base)
    except (ValueError, OSError) as error:
        print(f"error: {flags.one_line(error)}", file=sys.stderr)
        return flags.EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume.", file=sys.stderr)
        return flags.EXIT_INTERRUPTED
    print(f"Segmenter in {directory}")
    return flags.EXIT_OK
