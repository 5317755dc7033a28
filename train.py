"""Trains pix2pix: `python train.py --dataset cityscapes` (see --help).

The command lives in pix2pix_tf/cli/train.py; `pip install .` also makes it `pix2pix-train`.
"""

import sys

from pix2pix_tf.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
