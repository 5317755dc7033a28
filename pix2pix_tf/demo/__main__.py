"""`python -m pix2pix_tf.demo`: the browser demo's command (pix2pix_tf/cli/demo.py)."""

import sys

from pix2pix_tf.cli.demo import PROG, is_loopback, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
