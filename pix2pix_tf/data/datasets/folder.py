"""Your own paired images: `--dataset folder --source_dir DIR`.

Three layouts, with or without split folders:

    DIR/*.jpg|png             side-by-side pairs, A left and B right
    DIR/A/*, DIR/B/*          two folders whose files pair by name (`x.jpg` <-> `x.png`)
    DIR/x_input.jpg, DIR/x_target.jpg    files paired by a suffix (IN is A, OUT is B)
    DIR/train/..., DIR/val/..., DIR/test/...   one layout inside each split folder

The layout is detected (`--folder_layout auto`) or given (`side_by_side`, `ab`,
`suffix`). Suffix pairs are the ones in KNOWN_PAIR_SUFFIXES (the longest suffix
that matches a name wins, so `x_real_A` pairs as `_real_A/_real_B`) or the ones
given with `--pair_suffixes IN,OUT`. A folder that could be read two ways
(suffix-paired files beside plain images, or two different suffix pairs) is
refused with a message naming these options.

Any image format Pillow reads, any size (halves must be at least 16x16; an odd
width drops the middle column). Files that do not pair up, cannot be decoded,
are broken links or are larger than images.MAX_IMAGE_BYTES are skipped and
listed in the prepare report. Without split folders, a fixed 5% of the usable
pairs (chosen by a hash of the file name, so adding files never moves old ones)
is held out as `val`; the files are checked before that, so a bad file never
lands in, or empties, `val`. The prepared copy records a fingerprint of the
source files and the layout options; when either changes, the next prepare
rebuilds it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re

import tensorflow_datasets as tfds

from pix2pix_tf import configs as config_lib
from pix2pix_tf.data.datasets import base, images

SPLITS = ("train", "val", "test")
# Share of usable pairs held out for `val` when DIR has no split folders.
HELD_OUT_PERCENT = 5
# File-name suffix pairs (IN, OUT) that `auto` recognises; IN is stored as A.
# `_input/_target` is the layout of a widely copied Cityscapes pix2pix dataset,
# `_real_A/_real_B` what the reference pix2pix code writes next to its results.
KNOWN_PAIR_SUFFIXES = (
    ("_input", "_target"),
    ("_A", "_B"),
    ("_real_A", "_real_B"),
    ("_label", "_photo"),
    ("_in", "_out"),
)
SIDE_BY_SIDE, AB, SUFFIX = "side_by_side", "ab", "suffix"
_OPTIONS_HINT = (
    "pass --folder_layout side_by_side|ab|suffix, or --pair_suffixes IN,OUT "
    "(e.g. _input,_target) to say how the files pair up"
)


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a folder's files pair up."""

    kind: str  # SIDE_BY_SIDE, AB or SUFFIX.
    # For SUFFIX: (IN, OUT), e.g. ("_input", "_target").
    suffixes: tuple[str, str] | None = None

    def describe(self) -> str:
        if self.kind == SUFFIX:
            return f"suffix-paired files NAME{self.suffixes[0]} (A) + NAME{self.suffixes[1]} (B)"
        return "A/ and B/ folders" if self.kind == AB else "side-by-side images (A left, B right)"

    def to_metadata(self) -> dict:
        return {"kind": self.kind, "pair_suffixes": list(self.suffixes or ()) or None}


def config_name(source_dir: str) -> str:
    """`/data/my pairs` -> `my_pairs-1a2b3c4d`: readable, unique per absolute path."""
    path = os.path.abspath(source_dir)
    slug = re.sub(r"[^a-z0-9]+", "_", os.path.basename(path.rstrip("/")).lower()).strip("_")
    return f"{slug or 'pairs'}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"


def _image_files(directory: str) -> list[str]:
    """Image-named files in `directory`, including broken links (skipped later)."""
    return sorted(
        name
        for name in os.listdir(directory)
        if images.is_image_name(name)
        and (
            os.path.isfile(os.path.join(directory, name))
            or os.path.islink(os.path.join(directory, name))
        )
    )


def _has_ab(directory: str) -> bool:
    return all(os.path.isdir(os.path.join(directory, half)) for half in ("A", "B"))


def split_roots(source_dir: str) -> dict[str, str]:
    """{split: directory}; a single `train` root when there are no split folders."""
    if not os.path.isdir(source_dir):
        raise base.PrepareError(
            f"--source_dir {source_dir}: not a directory. Point it at a folder of "
            "side-by-side pairs, of A/ and B/, or of suffix-paired files."
        )
    roots = {
        split: os.path.join(source_dir, split)
        for split in SPLITS
        if os.path.isdir(os.path.join(source_dir, split))
    }
    return roots or {"train": source_dir}


def suffix_match(stem: str, pairs) -> tuple[tuple[str, str], int, str] | None:
    """(pair, side 0=IN/1=OUT, name without suffix) for the longest matching suffix."""
    best = None
    for pair in pairs:
        for side, suffix in enumerate(pair):
            if len(stem) > len(suffix) and stem.lower().endswith(suffix.lower()):
                if best is None or len(suffix) > len(best[0][best[1]]):
                    best = (pair, side, stem[: -len(suffix)])
    return best


def _suffix_census(roots: dict[str, str], pairs) -> tuple[dict, list[str]]:
    """({pair: complete pairs found}, image names that match no suffix)."""
    complete: dict[tuple[str, str], int] = {}
    plain: list[str] = []
    for root in roots.values():
        sides: dict[tuple, set[int]] = {}
        for name in _image_files(root):
            match = suffix_match(os.path.splitext(name)[0], pairs)
            if match is None:
                plain.append(name)
                continue
            pair, side, stem = match
            sides.setdefault((pair, stem), set()).add(side)
        for (pair, _), found in sides.items():
            if found == {0, 1}:
                complete[pair] = complete.get(pair, 0) + 1
    return complete, plain


def detect_layout(
    source_dir: str, folder_layout: str = "auto", pair_suffixes: str | None = None
) -> Layout:
    """The layout of `source_dir`; raises PrepareError when it is ambiguous."""
    roots = split_roots(source_dir)
    where = f"--source_dir {source_dir}"
    has_ab = {_has_ab(root) for root in roots.values()}
    if folder_layout == SIDE_BY_SIDE:
        return Layout(SIDE_BY_SIDE)
    if folder_layout == AB:
        if has_ab != {True}:
            raise base.PrepareError(
                f"{where}: --folder_layout ab needs A/ and B/ folders in every split folder."
            )
        return Layout(AB)
    if folder_layout == "auto" and pair_suffixes is None and True in has_ab:
        if len(has_ab) > 1:
            raise base.PrepareError(
                f"{where}: some split folders hold A/ and B/, others single images; "
                "use one layout for all splits."
            )
        return Layout(AB)
    given = pair_suffixes is not None
    pairs = (config_lib.parse_pair_suffixes(pair_suffixes),) if given else KNOWN_PAIR_SUFFIXES
    complete, plain = _suffix_census(roots, pairs)
    found = ", ".join(f"NAME{a}+NAME{b} ({count})" for (a, b), count in sorted(complete.items()))
    if len(complete) > 1:
        raise base.PrepareError(
            f"{where}: ambiguous layout: files pair by more than one suffix pair "
            f"({found}); pass --pair_suffixes IN,OUT to choose one."
        )
    if folder_layout == SUFFIX or given:
        if not complete:
            wanted = "/".join(pairs[0]) if given else "any known suffix pair"
            raise base.PrepareError(
                f"{where}: found no files that pair by {wanted} (e.g. x_input.jpg + "
                "x_target.jpg); pass --pair_suffixes IN,OUT with your files' suffixes."
            )
        return Layout(SUFFIX, next(iter(complete)))
    if not complete:
        return Layout(SIDE_BY_SIDE)
    if plain:
        raise base.PrepareError(
            f"{where}: ambiguous layout: {found} suffix-paired files beside {len(plain)} "
            f"other images (e.g. {plain[0]}); {_OPTIONS_HINT} (with a suffix layout the "
            "other images are skipped and listed)."
        )
    return Layout(SUFFIX, next(iter(complete)))


def fingerprint(source_dir: str) -> str:
    """A hash of every file's path, size and modification time under source_dir."""
    digest = hashlib.sha1()
    for directory, subdirectories, files in sorted(os.walk(source_dir)):
        subdirectories.sort()
        for name in sorted(files):
            path = os.path.join(directory, name)
            try:
                stat = os.stat(path)
            except OSError:  # A broken link: its own timestamps, and it is skipped later.
                stat = os.lstat(path)
            relative = os.path.relpath(path, source_dir)
            digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def layout_options(data_config: config_lib.DataConfig) -> dict:
    """The options that decide how a folder is read (a change rebuilds it)."""
    return {
        "folder_layout": data_config.folder_layout,
        "pair_suffixes": data_config.pair_suffixes,
    }


def _held_out(key: str) -> bool:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % 100 < HELD_OUT_PERCENT


class Folder(base.PairBuilder, skip_registration=True):
    """Side-by-side pairs, A/ and B/ folders or suffix-paired files of your own."""

    name = "folder"

    def __init__(
        self,
        *,
        source_dir: str,
        folder_layout: str = "auto",
        pair_suffixes: str | None = None,
        **kwargs,
    ):
        self._source_dir = os.path.abspath(source_dir)
        self._options = {"folder_layout": folder_layout, "pair_suffixes": pair_suffixes}
        self._layout = detect_layout(self._source_dir, folder_layout, pair_suffixes)
        self.SIDE_BY_SIDE = self._layout.kind == SIDE_BY_SIDE
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
            "layout": self._layout.to_metadata(),
            "layout_description": self._layout.describe(),
            "options": self._options,
        }
        roots = split_roots(self._source_dir)
        items = {split: list(self._pairs(root)) for split, root in roots.items()}
        if not any(items.values()):
            raise base.PrepareError(
                f"--source_dir {self._source_dir}: found no {self._layout.describe()} "
                f"({', '.join(images.IMAGE_EXTENSIONS)})."
            )
        if roots != {"train": self._source_dir}:
            return {split: self._generate_examples(split, pairs) for split, pairs in items.items()}
        # Check every file first, then hold out `val` from the usable pairs only.
        usable, skipped = [], {}
        for key, read in items["train"]:
            try:
                self._check_item(read)
            except images.BadImageError as error:
                skipped[key] = str(error)
            else:
                usable.append((key, read))
        held_out = [item for item in usable if _held_out(item[0])]
        if not held_out and len(usable) > 1:
            # Too few pairs for 5%: hold out the one with the smallest hash.
            held_out = [min(usable, key=lambda item: hashlib.sha1(item[0].encode()).hexdigest())]
        held_out_keys = {key for key, _ in held_out}
        generators = {
            "train": self._generate_examples(
                "train", [item for item in usable if item[0] not in held_out_keys], skipped
            )
        }
        if held_out:
            generators["val"] = self._generate_examples("val", held_out)
        return generators

    def _generate_examples(self, split: str, pairs, skipped=None):
        source = f"--source_dir {self._source_dir}"
        yield from self._checked_examples(split, source, pairs, skipped)

    def _pairs(self, root: str):
        """(key, read) per pair in `root`; unpaired files are recorded as skipped."""
        relative = os.path.relpath(root, self._source_dir)
        prefix = "" if relative == "." else relative + "/"
        if self._layout.kind == SIDE_BY_SIDE:
            for name in _image_files(root):
                path = os.path.join(root, name)
                yield prefix + name, lambda path=path: (_read(path),)
            return
        if self._layout.kind == AB:
            halves = {}
            for half in ("A", "B"):
                by_stem = {}
                for name in _image_files(os.path.join(root, half)):
                    by_stem.setdefault(os.path.splitext(name)[0], []).append(f"{half}/{name}")
                halves[half] = by_stem
        else:
            halves = {"A": {}, "B": {}}
            for name in _image_files(root):
                match = suffix_match(os.path.splitext(name)[0], (self._layout.suffixes,))
                if match is None:
                    reason = "name ends in neither {} nor {}".format(*self._layout.suffixes)
                    yield prefix + name, _unpaired_reader(reason)
                    continue
                _, side, stem = match
                halves["AB"[side]].setdefault(stem, []).append(name)
        for stem in sorted(set(halves["A"]) | set(halves["B"])):
            a, b = halves["A"].get(stem, []), halves["B"].get(stem, [])
            key = f"{prefix}{stem}"
            if len(a) != 1 or len(b) != 1:
                yield key, _unpaired(stem, a, b, self._layout)
                continue
            path_a, path_b = os.path.join(root, a[0]), os.path.join(root, b[0])
            read = lambda path_a=path_a, path_b=path_b: (_read(path_a), _read(path_b))  # noqa: E731
            read.files = (prefix + a[0], prefix + b[0])  # Named in channel errors.
            yield key, read


def _read(path: str) -> bytes:
    """The file's bytes; raises BadImageError for broken links and huge files."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        if os.path.islink(path):
            raise images.BadImageError(
                f"broken symbolic link (to {os.readlink(path)}, which does not exist)"
            ) from None
        raise
    images.check_size(size)  # Before reading: the file is read whole.
    with open(path, "rb") as file:
        return file.read(images.MAX_IMAGE_BYTES + 1)


def _unpaired_reader(reason: str):
    def read():
        raise images.BadImageError(reason)

    return read


def _unpaired(stem: str, a: list[str], b: list[str], layout: Layout):
    missing = "B" if a else "A"
    if a and b:
        return _unpaired_reader(f"ambiguous pair: {a} and {b} share a name")
    if layout.kind == SUFFIX:
        suffix = layout.suffixes[0 if missing == "A" else 1]
        return _unpaired_reader(f"pairs with nothing: no {stem}{suffix}.* file")
    return _unpaired_reader(f"no file with the same name in {missing}/")
