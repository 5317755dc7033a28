"""Your own paired images: `--dataset folder --source_dir DIR`.

Two layouts, with or without split folders:

    DIR/*.jpg|png             side-by-side pairs, A left and B right
    DIR/A/*, DIR/B/*          two folders whose files pair by name (`x.jpg` <-> `x.png`)
    DIR/train/..., DIR/val/..., DIR/test/...   either layout inside each split folder

Any image format Pillow reads, any size (halves must be at least 16x16; an odd
width drops the middle column). Without split folders, a fixed 5% of the pairs
(chosen by a hash of the file name, so adding files never moves old ones) is
held out as `val`. Files that do not pair up or cannot be decoded are skipped and
listed in the prepare report. The prepared copy records a fingerprint of the
source files; when they change, the next prepare rebuilds it.
"""

from __future__ import annotations

import hashlib
import os
import re

import tensorflow_datasets as tfds

from pix2pix_tf.datasets import base, images

SPLITS = ("train", "val", "test")
# Share of pairs held out for `val` when DIR has no split folders.
HELD_OUT_PERCENT = 5


def config_name(source_dir: str) -> str:
    """`/data/my pairs` -> `my_pairs-1a2b3c4d`: readable, unique per absolute path."""
    path = os.path.abspath(source_dir)
    slug = re.sub(r"[^a-z0-9]+", "_", os.path.basename(path.rstrip("/")).lower()).strip("_")
    return f"{slug or 'pairs'}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"


def _image_files(directory: str) -> list[str]:
    return sorted(
        name
        for name in os.listdir(directory)
        if images.is_image_name(name) and os.path.isfile(os.path.join(directory, name))
    )


def _has_ab(directory: str) -> bool:
    return all(os.path.isdir(os.path.join(directory, half)) for half in ("A", "B"))


def split_roots(source_dir: str) -> dict[str, str]:
    """{split: directory}; a single `train` root when there are no split folders."""
    if not os.path.isdir(source_dir):
        raise base.PrepareError(
            f"--source_dir {source_dir}: not a directory. Point it at a folder of "
            "side-by-side pairs, or at a folder holding A/ and B/."
        )
    roots = {
        split: os.path.join(source_dir, split)
        for split in SPLITS
        if os.path.isdir(os.path.join(source_dir, split))
    }
    return roots or {"train": source_dir}


def is_side_by_side(source_dir: str) -> bool:
    layouts = {not _has_ab(root) for root in split_roots(source_dir).values()}
    if len(layouts) > 1:
        raise base.PrepareError(
            f"--source_dir {source_dir}: some split folders hold A/ and B/, others "
            "side-by-side images; use one layout for all splits."
        )
    return layouts.pop()


def fingerprint(source_dir: str) -> str:
    """A hash of every file's path, size and modification time under source_dir."""
    digest = hashlib.sha1()
    for directory, subdirectories, files in sorted(os.walk(source_dir)):
        subdirectories.sort()
        for name in sorted(files):
            path = os.path.join(directory, name)
            stat = os.stat(path)
            relative = os.path.relpath(path, source_dir)
            digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _held_out(key: str) -> bool:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % 100 < HELD_OUT_PERCENT


class Folder(base.PairBuilder, skip_registration=True):
    """Side-by-side pairs or A/ and B/ folders from a directory of your own."""

    name = "folder"

    def __init__(self, *, source_dir: str, **kwargs):
        self._source_dir = os.path.abspath(source_dir)
        self.SIDE_BY_SIDE = is_side_by_side(self._source_dir)
        super().__init__(config=config_name(self._source_dir), **kwargs)

    @classmethod
    def get_builder_config(cls, name, version=None):
        # One config per source folder, named by config_name().
        return tfds.core.BuilderConfig(name=name, description=f"Pairs from a folder ({name}).")

    def _description(self) -> str:
        return f"Paired images from {self._source_dir}."

    def _split_generators(self, dl_manager):
        del dl_manager  # The files are local.
        self.info.metadata["source"] = {
            "source_dir": self._source_dir,
            "fingerprint": fingerprint(self._source_dir),
            "layout": "side_by_side" if self.SIDE_BY_SIDE else "A/B",
        }
        roots = split_roots(self._source_dir)
        items = {split: list(self._pairs(root)) for split, root in roots.items()}
        if not any(items.values()):
            layout = "side-by-side images" if self.SIDE_BY_SIDE else "images in A/ and B/"
            raise base.PrepareError(
                f"--source_dir {self._source_dir}: found no {layout} "
                f"({', '.join(images.IMAGE_EXTENSIONS)})."
            )
        if roots == {"train": self._source_dir}:
            pairs = items["train"]
            items = {
                "train": [item for item in pairs if not _held_out(item[0])],
                "val": [item for item in pairs if _held_out(item[0])],
            }
            if not items["val"] and len(pairs) > 1:
                # Too few pairs for 5%: hold out the one with the smallest hash.
                first = min(pairs, key=lambda item: hashlib.sha1(item[0].encode()).hexdigest())
                items = {"train": [p for p in pairs if p is not first], "val": [first]}
        return {split: self._generate_examples(split, pairs) for split, pairs in items.items()}

    def _generate_examples(self, split: str, pairs):
        yield from self._checked_examples(split, f"--source_dir {self._source_dir}", pairs)

    def _pairs(self, root: str):
        """(key, read) per pair in `root`; unpaired files are recorded as skipped."""
        relative = os.path.relpath(root, self._source_dir)
        prefix = "" if relative == "." else relative + "/"
        if self.SIDE_BY_SIDE:
            for name in _image_files(root):
                path = os.path.join(root, name)
                yield prefix + name, lambda path=path: (_read(path),)
            return
        halves = {}
        for half in ("A", "B"):
            by_stem = {}
            for name in _image_files(os.path.join(root, half)):
                by_stem.setdefault(os.path.splitext(name)[0], []).append(name)
            halves[half] = by_stem
        for stem in sorted(set(halves["A"]) | set(halves["B"])):
            a, b = halves["A"].get(stem, []), halves["B"].get(stem, [])
            key = f"{prefix}{stem}"
            if len(a) != 1 or len(b) != 1:
                yield key, _unpaired(a, b)
                continue
            path_a = os.path.join(root, "A", a[0])
            path_b = os.path.join(root, "B", b[0])
            yield key, lambda path_a=path_a, path_b=path_b: (_read(path_a), _read(path_b))


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def _unpaired(a: list[str], b: list[str]):
    def read():
        if not a or not b:
            missing = "B" if a else "A"
            raise images.BadImageError(f"no file with the same name in {missing}/")
        raise images.BadImageError(f"ambiguous pair: A/{a} and B/{b} share a name")

    return read
