"""Exports a trained generator as a versioned SavedModel for TF Serving.

The command lives in pix2pix_tf/cli/export.py; `pip install .` also makes it `pix2pix-export`.
"""

import sys

from pix2pix_tf.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
