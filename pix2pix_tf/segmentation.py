"""`python -m pix2pix_tf.segmentation`: trains the FCN-score's segmenter (see
pix2pix_tf/evaluation/segmenter.py).

Kept at the top level so that the documented command stays the same.
"""

import sys

from pix2pix_tf.cli.segmentation import main

if __name__ == "__main__":
    sys.exit(main())
