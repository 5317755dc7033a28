"""pix2pix models: the U-Net, ResNet and global_local generators and the PatchGAN
discriminator(s), built from plain keyword values (pix2pix_tf/configs/arguments.py maps a
Config to them); no module here reads a config."""

from pix2pix_tf.models.blocks import ARCH_SPECS, ArchSpec, arch_spec
from pix2pix_tf.models.discriminator import (
    build_patchgan,
    output_hw,
    output_size,
    receptive_field,
)
from pix2pix_tf.models.generator import build_unet
from pix2pix_tf.models.generators import (
    build_discriminator,
    build_generator,
    discriminator_image_hw,
    generator_pass,
    generator_variables,
    pad_multiple,
)
from pix2pix_tf.models.global_local import build_global_local
from pix2pix_tf.models.multiscale import build_multiscale_discriminator, scale_sizes, with_features
from pix2pix_tf.models.resnet import build_resnet

__all__ = [
    "ARCH_SPECS",
    "ArchSpec",
    "arch_spec",
    "build_discriminator",
    "build_generator",
    "build_global_local",
    "build_multiscale_discriminator",
    "build_patchgan",
    "build_resnet",
    "build_unet",
    "discriminator_image_hw",
    "generator_pass",
    "generator_variables",
    "pad_multiple",
    "output_hw",
    "output_size",
    "receptive_field",
    "scale_sizes",
    "with_features",
]
