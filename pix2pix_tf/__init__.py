"""pix2pix-tf: image-to-image translation with conditional adversarial networks."""

__version__ = "0.1.0"
