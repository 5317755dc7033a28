"""Trains pix2pix: `python train.py --dataset cityscapes` (see --help).

Rerunning the same command resumes from the latest checkpoint in --workdir.
"""

from __future__ import annotations

import argparse
import sys

from pix2pix_tf import configs as config_lib
from pix2pix_tf.cli import flags, startup

# Exit status (flags.py): 0 done; 2 bad flags; 1 the run could not start (data, run
# directory), a loss diverged or a file could not be written; 128 + N stopped by
# signal N (after saving a checkpoint, except for a Ctrl-C during start-up or a
# second one).
EXIT_ERROR = flags.EXIT_ERROR
EXIT_INTERRUPTED = flags.EXIT_INTERRUPTED
STARTUP_INTERRUPTED = "interrupted by Ctrl-C during start-up; nothing was saved."


def parse_config(argv: list[str] | None) -> tuple[config_lib.Config, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        usage="python train.py [--dataset NAME] [--preset NAME] [--FIELD VALUE ...] (see --help)",
        description=(
            "Train pix2pix. Settings resolve as: paper defaults <- the dataset's settings\n"
            "<- --preset <- flags. Checkpoints, config.json, TensorBoard events and sample\n"
            "grids go to --workdir (default checkpoints/<dataset>[-<preset>][-<H>x<W>]);\n"
            "rerunning the same command resumes from the latest checkpoint."
        ),
        epilog=f"datasets:\n{flags.datasets_help()}\n\npresets:\n{flags.preset_help()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    flags.add_preset_flag(parser)
    flags.add_verbose_flag(parser)
    flags.add_config_flags(parser)
    return flags.parse_config(parser, argv)


def describe(error: BaseException) -> str:
    """One line for an error that ends the run: the path involved and what went wrong."""
    import tensorflow as tf

    if isinstance(error, OSError) and error.filename and error.strerror:
        return (
            f"{error.filename}: {error.strerror}. Check the path, its permissions and "
            f"free space, then rerun the same command."
        )
    if isinstance(error, tf.errors.OpError):
        lines = (error.message or type(error).__name__).strip().splitlines()
        return f"{lines[0] if lines else type(error).__name__}. Rerun once this is fixed."
    return flags.one_line(error)


def main(argv: list[str] | None = None) -> int:
    config, args = parse_config(argv)
    # TensorFlow is imported only once the flags are known to be good.
    try:
        tf = startup.start_tensorflow(args.verbose)

        from pix2pix_tf.evaluation import evaluator
        from pix2pix_tf.runs.directory import SaveError
        from pix2pix_tf.training import trainer as training
        from pix2pix_tf.training.controller import NonFiniteLossError
        from pix2pix_tf.training.step import LOSS_NAMES
    except KeyboardInterrupt:
        print(f"train.py: {STARTUP_INTERRUPTED}", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        # The trainer is handed the periodic evaluator: training does not import evaluation.
        result = training.train(config, periodic_evaluator=evaluator.periodic_evaluator)
    except KeyboardInterrupt as error:  # controller.Interrupted says what was kept.
        print(f"train.py: {str(error) or STARTUP_INTERRUPTED}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (NonFiniteLossError, SaveError, ValueError, OSError, tf.errors.OpError) as error:
        print(f"train.py: error: {describe(error)}", file=sys.stderr)
        return EXIT_ERROR
    if result["interrupted"] is not None:
        return 128 + result["interrupted"]  # The shell's convention for a signal.
    losses = [f"{name} {result[name]:.4f}" for name in LOSS_NAMES if name in result]
    # A run already at --steps trained nothing this time, so it has no losses to print.
    print(
        f"step {result['step']}/{result['total_steps']} " + (", ".join(losses) or "(no new steps)")
    )
    print(f"checkpoint: {result['checkpoint']}")
    if result["sample"]:
        print(f"samples: {result['sample']}")
    # The run itself (its train/ and eval/ events), not the folder it sits in.
    print(f"TensorBoard: tensorboard --logdir {result['workdir']}")
    return 0
