"""`python -m pix2pix_tf.prepare`: prepares a dataset as TFRecords (see pix2pix_tf/data/prepare.py).

Kept at the top level so that the documented command stays the same.
"""

import sys

from pix2pix_tf.cli.prepare import main

if __name__ == "__main__":
    sys.exit(main())
