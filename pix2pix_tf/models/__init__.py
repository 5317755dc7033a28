"""pix2pix models: the U-Net generator and the PatchGAN discriminator."""

from pix2pix_tf.models.blocks import ARCH_SPECS, ArchSpec, arch_spec
from pix2pix_tf.models.discriminator import (
    build_discriminator,
    output_hw,
    output_size,
    receptive_field,
)
from pix2pix_tf.models.generator import build_generator, unet_depth

__all__ = [
    "ARCH_SPECS",
    "ArchSpec",
    "arch_spec",
    "build_discriminator",
    "build_generator",
    "output_hw",
    "output_size",
    "receptive_field",
    "unet_depth",
]
