"""Runs a pix2pix generator over images from the command line.

    python predict.py --model exported/pix2pix --input labels/ --output results/ --gallery

--model is an exported SavedModel (a version directory or the TF Serving base path,
whose highest version is used) or a run directory (its latest checkpoint, or
--checkpoint). Writes <output>/<stem>.png per input, and with --strip / --gallery
side-by-side strips in <output>/strips/ and an <output>/index.html. Unreadable inputs
are skipped and listed; the exit status is non-zero only if nothing could be processed.
JPEGs are turned upright by their EXIF orientation first. Outputs are 1-channel or
16-bit PNGs when the run's --output_channels / --output_bits say so. With --tile H[xW]
(and --overlap P) images of any size are generated tile by tile and blended without
seams, in bounded memory (docs/tiling.md).
"""

import argparse
import sys

# Flags are parsed before TensorFlow is imported: --help and flag errors answer at once.
from pix2pix_tf.cli import flags, startup
from pix2pix_tf.serving.options import PredictOptions, parse_tile


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    flags.add_option_flags(parser, PredictOptions)
    flags.add_verbose_flag(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = flags.options_from_args(PredictOptions, args)
    try:
        options.validate()
    except ValueError as error:
        sys.stderr.write(f"predict.py: error: {flags.one_line(error)}\n")
        return flags.EXIT_USAGE
    tile_hw = parse_tile(options.tile) if options.tile is not None else None
    try:
        startup.start_tensorflow(args.verbose)
        from pix2pix_tf.serving import predict as predict_lib

        try:
            model = predict_lib.load_model(options.model, options.checkpoint)
            print(f"Model: {model.description}")
            summary = predict_lib.predict(
                model,
                list(options.input),
                options.output,
                batch_size=options.batch_size,
                strip=options.strip,
                gallery=options.gallery,
                pairs=options.pairs,
                direction=options.direction,
                tile_hw=tile_hw,
                overlap=options.overlap,
                tile_statistics=options.tile_statistics,
            )
        except predict_lib.PredictUsageError as error:
            sys.stderr.write(f"predict.py: error: {flags.one_line(error)}\n")
            return flags.EXIT_USAGE
        except predict_lib.PredictError as error:
            sys.stderr.write(f"predict.py: error: {flags.one_line(error)}\n")
            return flags.EXIT_ERROR
        predict_lib.report(summary, options.output)
    except KeyboardInterrupt:
        sys.stderr.write(
            f"predict.py: interrupted; the images already in {options.output} are complete.\n"
        )
        return flags.EXIT_INTERRUPTED
    return flags.EXIT_OK if summary.written else flags.EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
