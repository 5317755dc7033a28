"""pix2pix models: the U-Net generator and the PatchGAN discriminator(s)."""

from pix2pix_tf.models.blocks import ARCH_SPECS, ArchSpec, arch_spec
from pix2pix_tf.models.discriminator import output_hw, output_size, receptive_field
from pix2pix_tf.models.generator import build_generator, unet_depth
from pix2pix_tf.models.multiscale import build_discriminator, scale_sizes, with_features

__all__ = [
    "ARCH_SPECS",
    "ArchSpec",
    "arch_spec",
    "build_discriminator",
    "build_generator",
    "output_hw",
    "output_size",
    "receptive_field",
    "scale_sizes",
    "unet_depth",
    "with_features",
]
