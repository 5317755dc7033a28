"""Runs a pix2pix generator over images from the command line.

The command lives in pix2pix_tf/cli/predict.py; `pip install .` also makes it `pix2pix-predict`.
"""

import sys

from pix2pix_tf.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
