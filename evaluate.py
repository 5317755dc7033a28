"""Evaluates a training run over a whole split: L1, PSNR, SSIM, the FCN-score, FID and KID.

The command lives in pix2pix_tf/cli/evaluate.py; `pip install .` also makes it `pix2pix-evaluate`.
"""

import sys

from pix2pix_tf.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
