"""What every pix2pix dataset builder shares.

The record format (original encoded bytes plus a stable key), shard sizes that
suit parallel reads and multi-worker sharding, and the bookkeeping of files that
were skipped or converted, of what the A and B images hold (colour or gray, 8 or
16 bits: "image_kinds", read by data/formats.py) and of exact duplicates across
splits, which ends up in the prepared dataset's `metadata.json` and in the
prepare report.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import logging
import math
from collections.abc import Callable, Iterable, Iterator

import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import shard_utils

from pix2pix_tf.data.datasets import images

logger = logging.getLogger("pix2pix_tf.datasets")

VERSION = tfds.core.Version("1.0.0")

# Shards of about this size: small enough that a dataset like Cityscapes
# (about 90 MB) spreads over ~20 files for parallel interleaved reads and
# per-worker sharding, large enough that each read is sequential.
TARGET_SHARD_BYTES = 4 << 20
# Even tiny datasets get this many shards (if they have that many examples), so
# that up to 4 input pipelines can shard them by file.
MIN_SHARDS = 4
MAX_SHARDS = 1024

# A split with more unusable files than this is an error, not a dataset.
MAX_BAD_FRACTION = 0.5

# Duplicate pairs listed per pair of splits in metadata.json (all are counted).
MAX_DUPLICATE_EXAMPLES = 5

# Feature names in the records. Side-by-side pairs store one image (A left,
# B right); datasets made of A/ and B/ folders store the two images.
IMAGE, IMAGE_A, IMAGE_B, KEY = "image", "image_a", "image_b", "key"


class PrepareError(ValueError):
    """Preparing a dataset failed; the message says why and what to do."""


class BadDatasetError(PrepareError):
    """The source data is unusable as a whole (e.g. mostly bad files)."""


# Side names in metadata.json's "image_kinds": A is the left half (or A/ image).
SIDES = ("A", "B")


def _image() -> tfds.features.Image:
    # JPEG or PNG with 3 channels or 1 (8 or 16 bits); the input pipeline decodes
    # them itself (data/pipeline.py), tfds.load would read them as uint8.
    return tfds.features.Image(shape=(None, None, None))


def pair_features() -> tfds.features.FeaturesDict:
    return tfds.features.FeaturesDict({IMAGE: _image(), KEY: tfds.features.Text()})


def ab_features() -> tfds.features.FeaturesDict:
    return tfds.features.FeaturesDict(
        {IMAGE_A: _image(), IMAGE_B: _image(), KEY: tfds.features.Text()}
    )


class ShardConfig(shard_utils.ShardConfig):
    """Picks the shard count from TARGET_SHARD_BYTES (TFDS aims at 64 MiB+).

    TFDS' public knobs cannot say this: in TFDS 4.9.10 `DownloadConfig(min_shard_size=,
    max_shard_size=)` reaches `ShardConfig.calculate_number_shards`, a classmethod
    that reads the class defaults instead (4-8 MiB shards asked for: 90 MiB and
    2975 examples still give 1 shard), it only picks powers of two, and it gives
    datasets under 64 MiB one shard, where MIN_SHARDS lets up to 4 input pipelines
    shard by file. `num_shards` is one count for every split. So this overrides the
    one method TFDS' writer calls; tests/data/test_prepare.py checks both premises.
    """

    def get_number_shards(self, total_size, num_examples, uses_precise_sharding=True):
        wanted = max(MIN_SHARDS, math.ceil(total_size / TARGET_SHARD_BYTES))
        return max(1, min(num_examples, wanted, MAX_SHARDS))


@dataclasses.dataclass
class DownloadConfig(tfds.download.DownloadConfig):
    """TFDS' download config with this project's shard sizes."""

    def get_shard_config(self) -> shard_utils.ShardConfig:
        return ShardConfig()


class SplitLog:
    """Counts a split's usable, skipped and converted files."""

    def __init__(self, split: str, skipped: dict[str, str] | None = None):
        self.split = split
        self.used = 0
        # Files found unusable before generation (e.g. while holding out `val`).
        self.skipped: dict[str, str] = dict(skipped or {})
        # Source file -> why it was converted to PNG.
        self.converted: dict[str, str] = {}
        # Side -> {kind: {"count": N, "example": first source file}} (formats.KINDS).
        self.kinds: dict[str, dict[str, dict]] = {side: {} for side in SIDES}

    def skip(self, name: str, reason: str) -> None:
        if len(self.skipped) < 10:
            logger.warning("Skipping %s: %s", name, reason)
        self.skipped[name] = reason

    def count_kinds(self, names: tuple[str, str], kinds: tuple[str, str]) -> None:
        """Counts what the A and B images hold; `names` name their files."""
        for side, name, kind in zip(SIDES, names, kinds, strict=True):
            found = self.kinds[side].setdefault(kind, {"count": 0, "example": name})
            found["count"] += 1

    def check(self, source: str) -> None:
        """Raises BadDatasetError if the split is empty or mostly unusable."""
        total = self.used + len(self.skipped)
        examples = "; ".join(f"{name}: {why}" for name, why in list(self.skipped.items())[:3])
        if self.used == 0:
            raise BadDatasetError(
                f"{source}: the {self.split!r} split has no usable images "
                f"({total} files, all skipped: {examples or 'none found'})."
            )
        if len(self.skipped) > MAX_BAD_FRACTION * total:
            raise BadDatasetError(
                f"{source}: {len(self.skipped)} of {total} files in the {self.split!r} split "
                f"are unusable (e.g. {examples}). This is not a usable dataset; check the "
                "source files (or download the archive again)."
            )


class PairBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the project's builders: records of checked images plus a key."""

    VERSION = VERSION
    RELEASE_NOTES = {"1.0.0": "Original encoded bytes plus the source file name as key."}
    # No TFDS checksums file next to the code: downloads are verified against
    # the MD5s in config.DATASETS. (TFDS would otherwise look the file up
    # through importlib resources for every builder.)
    code_path = None
    # Whether each example is one side-by-side image (else two: A and B).
    SIDE_BY_SIDE = True

    @abc.abstractmethod
    def _description(self) -> str: ...

    def _homepage(self) -> str | None:
        return None

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self._description(),
            features=pair_features() if self.SIDE_BY_SIDE else ab_features(),
            homepage=self._homepage(),
            metadata=tfds.core.MetadataDict(),
        )

    def _check_item(self, read: Callable[[], tuple[bytes, ...]]):
        """(source bytes, checked images) of one item; raises BadImageError."""
        try:
            contents = read()
        except OSError as error:
            raise images.BadImageError(f"cannot read ({error.strerror or error})") from None
        checked = [images.check_image(data, side_by_side=self.SIDE_BY_SIDE) for data in contents]
        return contents, checked

    def _checked_examples(
        self,
        split: str,
        source: str,
        items: Iterable[tuple[str, Callable[[], tuple[bytes, ...]]]],
        skipped: dict[str, str] | None = None,
    ) -> Iterator[tuple[str, dict]]:
        """Yields (key, example) for the usable items; records the others.

        Args:
          split: the split name, for the report.
          source: what the files come from, for error messages.
          items: (key, read) pairs; `read()` returns the file's bytes (one
            for a side-by-side pair, two for A and B) or raises OSError or
            BadImageError; a `read.files` attribute may name the A and B files.
          skipped: files of this split already found unusable, by key.
        """
        log = SplitLog(split, skipped)
        hashes: dict[bytes, str] = {}
        for key, read in items:
            try:
                contents, checked = self._check_item(read)
            except images.BadImageError as error:
                log.skip(key, str(error))
                continue
            reasons = [image.reason for image in checked if image.converted]
            if reasons:
                log.converted[key] = ", ".join(reasons)
            digest = hashlib.sha1()
            for data in contents:  # A and B both count: same A with another B is no copy.
                digest.update(hashlib.sha1(data).digest())
            hashes.setdefault(digest.digest(), key)
            log.used += 1
            if self.SIDE_BY_SIDE:
                log.count_kinds((key, key), checked[0].kinds)
            else:
                files = getattr(read, "files", (key, key))
                log.count_kinds(files, (checked[0].kinds[0], checked[1].kinds[0]))
            if self.SIDE_BY_SIDE:
                yield key, {IMAGE: checked[0].data, KEY: key}
            else:
                yield key, {IMAGE_A: checked[0].data, IMAGE_B: checked[1].data, KEY: key}
        log.check(source)
        metadata = self.info.metadata
        metadata.setdefault("skipped", {})[split] = log.skipped
        metadata.setdefault("converted", {})[split] = log.converted
        _merge_kinds(metadata.setdefault("image_kinds", {}), log.kinds)
        self._record_duplicates(split, hashes)

    def _record_duplicates(self, split: str, hashes: dict[bytes, str]) -> None:
        """Records examples of `split` whose source bytes equal another split's.

        metadata["duplicates"]["train/val"] = {"count": N, "examples": [[train
        key, val key], ...]}; a model scored on copies of its training data
        looks better than it is.
        """
        finished = getattr(self, "_split_hashes", None)
        if finished is None:
            finished = self._split_hashes = {}
        for other, other_hashes in finished.items():
            common = [digest for digest in hashes if digest in other_hashes]
            if not common:
                continue
            first, second = sorted((other, split), key=_split_order)
            pairs = [
                (other_hashes[d], hashes[d]) if first == other else (hashes[d], other_hashes[d])
                for d in common
            ]
            self.info.metadata.setdefault("duplicates", {})[f"{first}/{second}"] = {
                "count": len(pairs),
                "examples": [list(pair) for pair in sorted(pairs)[:MAX_DUPLICATE_EXAMPLES]],
            }
        finished[split] = hashes


def _merge_kinds(total: dict, split_kinds: dict) -> None:
    """Adds one split's counts to metadata["image_kinds"] (all splits together)."""
    for side, kinds in split_kinds.items():
        for kind, found in kinds.items():
            merged = total.setdefault(side, {}).setdefault(kind, {**found, "count": 0})
            merged["count"] += found["count"]


def _split_order(split: str) -> tuple[int, str]:
    order = ("train", "val", "test")
    return (order.index(split) if split in order else len(order), split)
