"""Named presets: one function each, taking a Config and returning it with overrides.

A preset applies on top of the dataset's defaults and under the command-line flags:
`build_config(dataset=..., preset="tiny")` (below) calls `tiny(config)` on the dataset's
config. `--preset NAME` chooses one from `PRESETS`. Presets depend on the schema
(schema.py), never the reverse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pix2pix_tf.configs.schema import Config
from pix2pix_tf.data import registry


def tiny(config: Config) -> Config:
    """Drives the tests and CPU smoke runs: 64x64, a shallow U-Net, few filters."""
    return config.replace(
        image_size=64,
        load_size=72,
        ngf=8,
        ndf=8,
        unet_depth=4,
        discriminator_layers=2,
        steps=2,
        log_every=1,
        image_every=1,
        checkpoint_every=1,
        synthetic_train_examples=16,
        synthetic_val_examples=4,
        preset="tiny",
    )


def cpu128(config: Config) -> Config:
    """The documented CPU experiment on real data (e.g. `--dataset cityscapes`).

    128x128, a 7-level U-Net and the 70x70 PatchGAN at half the filters, batch 1 as
    in the paper, 30k steps (about 10 Cityscapes epochs), within an hour on 2 CPU cores.
    """
    return config.replace(
        image_size=128,
        ngf=32,
        ndf=32,
        batch_size=1,
        steps=30000,
        log_every=100,
        image_every=2000,
        checkpoint_every=2000,
        preset="cpu128",
    )


def quick(config: Config) -> Config:
    """The README's first run: a few minutes on 2 CPU cores.

    128x128 with a full 7-level U-Net and the 70x70 PatchGAN, but a quarter of the filters.
    """
    return config.replace(
        image_size=128,
        ngf=16,
        ndf=16,
        batch_size=4,
        steps=2000,
        log_every=100,
        image_every=500,
        checkpoint_every=500,
        preset="quick",
    )


def _pix2pixhd(config: Config, image_size: str, name: str, generator: str, ngf: int) -> Config:
    """pix2pixHD's training settings (Wang et al. 2018; NVIDIA/pix2pixHD's options).

    Instance norm, LSGAN, 3 discriminators at 1, 1/2, 1/4 scale (each the 70x70
    PatchGAN, 64 filters), feature matching weighted 10, Adam 2e-4 with beta_1 0.5,
    batch 1, the dataset's --epochs (Cityscapes: 200, pix2pixHD's 100 + 100) with the
    second half decaying linearly to zero, and no random crop (its `scale_width`
    loading only resizes and flips). pix2pixHD has no L1 term; its
    optional VGG perceptual loss needs pretrained weights this project does not
    have, so the objective is its GAN + feature matching (paper eq. 4) alone.
    """
    return config.replace(
        image_size=image_size,
        load_size=image_size,
        generator=generator,
        ngf=ngf,
        random_jitter=False,
        random_mirror=True,
        norm="instance",
        ndf=64,
        discriminator_layers=3,
        num_discriminators=3,
        dropout=0.0,
        gan_mode="lsgan",
        lambda_feature_matching=10.0,
        lambda_l1=0.0,
        learning_rate=2e-4,
        beta_1=0.5,
        lr_decay_fraction=0.5,
        batch_size=1,
        steps=None,
        preset=name,
    )


def hd512(config: Config) -> Config:
    """pix2pixHD at 512x1024 (its `label2city_512p`), e.g. Cityscapes.

    pix2pixHD trains its global generator here; the nearest generator that runs at
    full size is the ResNet one (2 downsamplings where the global network has 4).
    """
    return _pix2pixhd(config, "512x1024", "hd512", generator="resnet", ngf=64)


def hd1024(config: Config) -> Config:
    """pix2pixHD at 1024x2048 (its `label2city_1024p`), e.g. Cityscapes at full size.

    The global network (64 filters) plus a local enhancer (32), as its `--netG local
    --ngf 32`, trained in --stage global, local, joint on one run directory.
    """
    return _pix2pixhd(config, "1024x2048", "hd1024", generator="global_local", ngf=32)


PRESETS: dict[str, Callable[[Config], Config]] = {
    "tiny": tiny,
    "cpu128": cpu128,
    "quick": quick,
    "hd512": hd512,
    "hd1024": hd1024,
}


def apply(name: str, config: Config) -> Config:
    """`config` with the preset `name` applied; raises ValueError naming --preset."""
    if name not in PRESETS:
        raise ValueError(f"--preset: unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
    return PRESETS[name](config)


def build_config(dataset: str | None = None, preset: str | None = None, **overrides: Any) -> Config:
    """Builds a resolved config: defaults <- dataset <- preset <- overrides."""
    config = Config()
    name = dataset or config.data.dataset
    config = config.replace(dataset=name, **registry.dataset_info(name).overrides)
    if preset is not None:
        config = apply(preset, config)
    explicit = {key: value for key, value in overrides.items() if value is not None}
    # An explicit --epochs means the step count is derived from it, and an explicit
    # --image_size the load size (a preset's load_size belongs to its image_size).
    if "epochs" in explicit and "steps" not in explicit:
        explicit["steps"] = None
    if "image_size" in explicit and "load_size" not in explicit:
        explicit["load_size"] = None
    return config.replace(**explicit).resolved()
