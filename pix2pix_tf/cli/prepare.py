"""`python -m pix2pix_tf.prepare` (`pix2pix-prepare`): prepares a dataset as TFRecords.

The library (pix2pix_tf/data/prepare.py, and TensorFlow with it) is imported once the
flags are parsed, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import sys

from pix2pix_tf.cli import flags, startup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pix2pix_tf.prepare",
        description="Prepares a dataset as sharded TFRecords (reuses what exists).",
        epilog="datasets:\n" + flags.datasets_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    flags.add_preset_flag(parser)
    flags.add_verbose_flag(parser)
    flags.add_config_flags(parser, only=("data",))
    config, args = flags.parse_config(parser, argv)  # Bad flags exit with status 2.
    try:
        startup.start_tensorflow(args.verbose)
        from pix2pix_tf.data import prepare as prepare_lib

        report = prepare_lib.prepare(config.data).report
    except ValueError as error:  # PrepareError, ArchiveError...
        print(f"error: {flags.one_line(error)}", file=sys.stderr)
        return flags.EXIT_ERROR
    except OSError as error:  # Whatever prepare() did not turn into a PrepareError.
        print(f"error: {prepare_lib.write_error(config.data.data_dir, error)}", file=sys.stderr)
        return flags.EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted; nothing was (re)built.", file=sys.stderr)
        return flags.EXIT_INTERRUPTED
    print(report.summary())
    return flags.EXIT_OK
