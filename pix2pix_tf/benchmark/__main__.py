"""Dispatches `python -m pix2pix_tf.benchmark SUBCOMMAND [flags]`."""

import importlib
import sys

from pix2pix_tf.benchmark import SUBCOMMANDS
from pix2pix_tf.cli import startup


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        lines = [f"  {name:6s} {text}" for name, text in SUBCOMMANDS.items()]
        choices = ",".join(SUBCOMMANDS)
        usage = f"usage: python -m pix2pix_tf.benchmark {{{choices}}} [flags]\n\n"
        usage += "\n".join(lines)
        usage += "\n"
        if argv and argv[0] not in ("-h", "--help"):
            sys.stderr.write(f"unknown benchmark {argv[0]!r}\n{usage}")
            return 2
        sys.stdout.write(usage)
        return 0 if argv else 2
    if not {"-h", "--help"} & set(argv):  # --help answers without TensorFlow.
        startup.start_tensorflow()
    module = importlib.import_module(f"pix2pix_tf.benchmark.{argv[0]}_benchmark")
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
