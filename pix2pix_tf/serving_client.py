"""`python -m pix2pix_tf.serving_client`: gRPC and REST clients of a served model (see
pix2pix_tf/serving/client.py).

Kept at the top level so that the documented command stays the same.
"""

import sys

from pix2pix_tf.cli.serving_client import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
