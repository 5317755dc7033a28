"""Named presets: one function each, taking a Config and returning it with overrides.

A preset applies on top of the dataset's defaults and under the command-line flags
(see `pix2pix_tf/config.py`): `build_config(dataset=..., preset="tiny")` calls
`tiny(config)` on the dataset's config. `--preset NAME` chooses one from `PRESETS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pix2pix_tf.config import Config


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


PRESETS: dict[str, Callable[[Config], Config]] = {"tiny": tiny, "cpu128": cpu128, "quick": quick}


def apply(name: str, config: Config) -> Config:
    """`config` with the preset `name` applied; raises ValueError naming --preset."""
    if name not in PRESETS:
        raise ValueError(f"--preset: unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
    return PRESETS[name](config)
