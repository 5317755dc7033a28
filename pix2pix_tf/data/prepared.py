"""A prepared dataset, resolved once: the one value its readers take.

`prepare(data_config)` (prepare.py) prepares the dataset if needed and returns a
PreparedDataset: where it lives, its splits' shards, how each side is read
(channels and bit depths, checked against what the images hold: formats.py), the
direction, the sizes and how pairs are fitted to them. The input pipeline
(pipeline.build_dataset), the trainer, evaluation, the segmenter and int8
calibration all take this value; none of them looks the builder up again, reads
metadata.json or re-derives a default.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from pix2pix_tf.data import streams
from pix2pix_tf.data.records import SideFormat


@dataclasses.dataclass(frozen=True)
class PreparedDataset:
    """A prepared dataset and how a run reads it."""

    # The --dataset name, e.g. "cityscapes".
    name: str
    # The builder's name and version, e.g. "berkeley 1.0.0".
    builder: str
    # The folder with the TFRecord shards, dataset_info.json and metadata.json.
    directory: str
    # Split -> its shards (sorted), their lengths and whether examples are
    # side-by-side pairs.
    splits: Mapping[str, streams.Shards]
    # Split -> the bytes of its records (for prepared_data.json).
    split_bytes: Mapping[str, int]
    # The split evaluation scores by default (the registry's, e.g. "val").
    eval_split: str
    # AtoB maps A (the left half, or A/ image) to B; BtoA the reverse.
    direction: str
    # How the A and B sides are read (channels, bits), after --direction.
    side_formats: tuple[SideFormat, SideFormat]
    # --image_size and --load_size as (height, width).
    image_hw: tuple[int, int]
    load_hw: tuple[int, int]
    # How a pair of another aspect is fitted to a size: cover (crop) or squash.
    resize_mode: str
    # What prepare() did or found (prepare.PrepareReport).
    report: object
    # Lines reporting how images are converted on reading (formats.resolve).
    notes: tuple[str, ...] = ()

    def shards(self, split: str) -> streams.Shards:
        """The shards of `split`; ValueError naming the splits there are."""
        if split not in self.splits:
            raise ValueError(
                f"The {self.name} dataset has no {split!r} split; it has "
                f"{', '.join(sorted(self.splits))}."
            )
        return self.splits[split]

    def num_examples(self, split: str) -> int:
        return sum(self.shards(split).lengths)

    def files(self, split: str) -> list[str]:
        """The paths of the split's shards, sorted."""
        shards = self.shards(split)
        return [os.path.join(shards.directory, name) for name in shards.names]

    @property
    def sample_split(self) -> str:
        """The evaluation split, or train when the prepared copy has none."""
        return self.eval_split if self.eval_split in self.splits else "train"

    def _side(self, role: int) -> SideFormat:
        # side_formats is (A, B); the input is A when the direction is AtoB.
        return self.side_formats[role if self.direction == "AtoB" else 1 - role]

    @property
    def input_format(self) -> SideFormat:
        return self._side(0)

    @property
    def target_format(self) -> SideFormat:
        return self._side(1)

    def identity(self, split: str = "train") -> dict:
        """What identifies a prepared split for a resumed run: the builder's name and
        version, and the split's examples, bytes and shard lengths (JSON values).

        Not where it lives: neither the data_dir nor a folder dataset's source path
        (which names its builder config).
        """
        shards = self.shards(split)
        return {
            "builder": self.builder,
            split: {
                "examples": sum(shards.lengths),
                "bytes": int(self.split_bytes[split]),
                "shard_lengths": list(shards.lengths),
            },
        }
