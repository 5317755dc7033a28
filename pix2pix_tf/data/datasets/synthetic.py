"""The embedded default dataset: procedural street scenes, no download.

Each example is a 512x256 JPEG laid out exactly like the Berkeley Cityscapes
pairs: the photo-like rendering on the left (A), the Cityscapes-coloured label
map on the right (B), so the natural direction is BtoA (labels -> photo). The
scenes are rendered by `streets.render_pair` from (seed, split, index), so every
example is reproducible on its own and the dataset does not depend on the order
of generation. Each (train size, val size, seed) is its own builder config and
therefore its own folder: prepared data of other sizes is never reused.

A non-square --image_size renders scenes at its aspect (`half_size`: the short
side 256), e.g. 256x512 halves (1024x256 pairs) for --image_size 64x128; the
config name then ends in the half size (`..._seed0_256x512`), so square data
keeps its folder and is reused as before.
"""

from __future__ import annotations

import io
import re
from concurrent import futures

import tensorflow_datasets as tfds
from PIL import Image

from pix2pix_tf.configs import sizes
from pix2pix_tf.data.datasets import base, streets

# Scenes are rendered at 256x256 per half, like the Berkeley Cityscapes pairs.
HALF_SIZE = 256
# JPEG like the Berkeley archives (quality 90 keeps the label colours crisp).
JPEG_QUALITY = 90
_SPLIT_IDS = {"train": 0, "val": 1}
_CONFIG_NAME = re.compile(r"^train(\d+)_val(\d+)_seed(\d+)(?:_(\d+)x(\d+))?$")


def half_size(image_size: int | str) -> tuple[int, int]:
    """(height, width) of each rendered half for a training size: its aspect, short side 256."""
    height, width = sizes.parse_size(image_size)
    short = min(height, width)
    return round(HALF_SIZE * height / short), round(HALF_SIZE * width / short)


def config_name(
    train_examples: int, val_examples: int, seed: int, half: tuple[int, int] = (HALF_SIZE,) * 2
) -> str:
    name = f"train{train_examples}_val{val_examples}_seed{seed}"
    return name if half == (HALF_SIZE, HALF_SIZE) else f"{name}_{half[0]}x{half[1]}"


def encode_pair(
    seed: int, split: str, index: int, half: tuple[int, int] = (HALF_SIZE,) * 2
) -> bytes:
    """The JPEG bytes of one example; the same arguments give the same bytes."""
    pixels = streets.render_pair([seed, _SPLIT_IDS[split], index], *half)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


class SyntheticStreets(base.PairBuilder, skip_registration=True):
    """Procedural street scenes in the Cityscapes palette (label map -> photo)."""

    name = "synthetic_streets"
    # A new version whenever the renderer's pixels change, so that data
    # rendered by other code is never reused.
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "First renderer.",
        "1.1.0": "Facades looked up per column and a numpy blur: about 2x faster.",
    }
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=config_name(400, 50, 0))]

    @classmethod
    def get_builder_config(cls, name, version=None):
        # Any size and seed is a valid config; its name says which.
        if _CONFIG_NAME.match(name):
            return tfds.core.BuilderConfig(name=name, description=f"Synthetic streets, {name}.")
        return super().get_builder_config(name, version)

    def _description(self) -> str:
        return (
            "Procedural street scenes: photo-like rendering (left) and Cityscapes "
            "colour label map (right), 512x256 JPEG pairs (or of a config's half size) "
            "rendered from a seed."
        )

    @property
    def sizes(self) -> tuple[int, int, int]:
        train, val, seed = _CONFIG_NAME.match(self.builder_config.name).groups()[:3]
        return int(train), int(val), int(seed)

    @property
    def half(self) -> tuple[int, int]:
        height, width = _CONFIG_NAME.match(self.builder_config.name).groups()[3:]
        return (HALF_SIZE, HALF_SIZE) if height is None else (int(height), int(width))

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing to download.
        train, val, seed = self.sizes
        self.info.metadata["source"] = {"renderer": "streets", "seed": seed}
        if self.half != (HALF_SIZE, HALF_SIZE):
            self.info.metadata["source"]["half_size"] = list(self.half)
        return {
            "train": self._generate_examples("train", train, seed),
            "val": self._generate_examples("val", val, seed),
        }

    def _generate_examples(self, split: str, count: int, seed: int):
        def items():
            # Rendering is numpy and Pillow work that releases the GIL; two
            # threads keep both cores busy. `map` keeps the order. Square scenes
            # are rendered by the same call as before non-square sizes.
            half = () if self.half == (HALF_SIZE, HALF_SIZE) else (self.half,)
            with futures.ThreadPoolExecutor(max_workers=2) as pool:
                encoded = pool.map(
                    lambda index: encode_pair(seed, split, index, *half), range(count)
                )
                for index, data in enumerate(encoded):
                    yield f"{split}/{index:06d}.jpg", lambda data=data: (data,)

        yield from self._checked_examples(split, f"synthetic streets ({split})", items())
