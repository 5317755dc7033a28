"""pix2pix models: the U-Net generator and the PatchGAN discriminator(s)."""

from pix2pix_tf.models.blocks import ARCH_SPECS, ArchSpec, arch_spec
from pix2pix_tf.models.discriminator import output_hw, output_size, receptive_field
from pix2pix_tf.models.generator import unet_depth
from pix2pix_tf.models.generators import (
    build_discriminator,
    build_generator,
    generator_pass,
    generator_variables,
    pad_multiple,
)
from pix2pix_tf.models.multiscale import scale_sizes, with_features

__all__ = [
    "ARCH_SPECS",
    "ArchSpec",
    "arch_spec",
    "build_discriminator",
    "build_generator",
    "generator_pass",
    "generator_variables",
    "pad_multiple",
    "output_hw",
    "output_size",
    "receptive_field",
    "scale_sizes",
    "unet_depth",
    "with_features",
]
