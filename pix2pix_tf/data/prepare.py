"""Prepares a dataset as sharded TFRecords: `python -m pix2pix_tf.prepare --dataset NAME`.

    python -m pix2pix_tf.prepare                        # the embedded synthetic streets
    python -m pix2pix_tf.prepare --dataset cityscapes --manual_dir ../shared/datasets
    python -m pix2pix_tf.prepare --dataset folder --source_dir my_pairs

`prepare(data_config)` is idempotent: when the dataset is already complete it
returns at once (the training loop calls it before every run). Either way it
returns the dataset resolved once (prepared.PreparedDataset), the value the input
pipeline, the trainer, evaluation and calibration take; `load_prepared` resolves
one that is already prepared without ever preparing it. TFDS writes into
an `incomplete.*` folder that is renamed into place only at the end, so an
interrupted prepare never leaves a dataset that looks complete: the next call
removes the leftovers and starts over. A lock file serialises concurrent calls.

A rebuild (a folder dataset whose files or layout options changed) is written
into a staging data_dir beside the prepared copy and swapped in only when it is
complete: a rebuild that fails (a bad file, a full disk) leaves the previous copy
in place and says so. Write errors end in one PrepareError naming --data_dir.
Its command (pix2pix_tf/cli/prepare.py) imports this module after the flags are
parsed, so `--help` answers without TensorFlow.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import fcntl
import glob
import json
import os
import shutil
import time

import tensorflow as tf
import tensorflow_datasets as tfds

from pix2pix_tf import configs as config_lib
from pix2pix_tf.configs import choices, sizes
from pix2pix_tf.data import datasets, formats, prepared, registry, streams
from pix2pix_tf.data.datasets import base, folder
from pix2pix_tf.data.records import SideFormat

# Where a rebuild is written before it replaces the prepared copy, under data_dir.
STAGING_DIR = ".staging"
# What the prepared copy is renamed to while the rebuild is swapped in.
_PREVIOUS_SUFFIX = ".previous"


@dataclasses.dataclass(frozen=True)
class PrepareReport:
    """What `prepare` produced, or found already prepared."""

    dataset: str
    # The folder with the TFRecord shards, dataset_info.json and metadata.json.
    directory: str
    examples: dict[str, int]
    shards: dict[str, int]
    # Split -> {source file: why it was skipped}.
    skipped: dict[str, dict[str, str]]
    # Split -> {source file: why it was converted to PNG} (all others keep
    # their bytes).
    converted: dict[str, dict[str, str]]
    # True when the dataset was already complete and nothing was written.
    reused: bool
    seconds: float
    # How the source files paired up (folder datasets), e.g. "A/ and B/ folders".
    layout: str | None = None
    # "train/val" -> {"count": N, "examples": [[train key, val key], ...]}:
    # examples whose source bytes are identical across two splits.
    duplicates: dict[str, dict] = dataclasses.field(default_factory=dict)
    # What the A and B images hold (data/formats.py), None for copies prepared
    # before it was recorded.
    image_kinds: dict | None = None

    @property
    def num_skipped(self) -> int:
        return sum(len(files) for files in self.skipped.values())

    def summary(self, max_listed: int = 20) -> str:
        verb = "Reused" if self.reused else f"Prepared in {self.seconds:.1f} s:"
        lines = [f"{verb} {self.dataset} TFRecords in {self.directory}"]
        if self.layout:
            lines.append(f"  layout: {self.layout}")
        for split, count in self.examples.items():
            lines.append(f"  {split}: {count} examples in {self.shards[split]} shards")
        reasons = collections.Counter(
            reason for files in self.converted.values() for reason in files.values()
        )
        if reasons:
            why = ", ".join(f"{count} {reason or 'other'}" for reason, count in reasons.items())
            lines.append(f"  {sum(reasons.values())} images converted to PNG ({why})")
        kinds = formats.describe(self.image_kinds)
        if kinds:
            lines.append(f"  images: {kinds}")
        for splits, found in self.duplicates.items():
            first, second = splits.split("/")
            example = " = ".join(found["examples"][0]) if found["examples"] else ""
            lines.append(
                f"  warning: {found['count']} {first} examples are byte-identical copies of "
                f"{second} examples (e.g. {example}; more in metadata.json)"
            )
        if self.num_skipped:
            lines.append(f"  {self.num_skipped} files skipped:")
            listed = [
                (s, name, why) for s, files in self.skipped.items() for name, why in files.items()
            ]
            for split, name, why in listed[:max_listed]:
                lines.append(f"    [{split}] {name}: {why}")
            if len(listed) > max_listed:
                lines.append(f"    ... and {len(listed) - max_listed} more (see metadata.json)")
        return "\n".join(lines)


def _read_metadata(directory: str) -> dict:
    """The prepared copy's metadata.json ({} for copies prepared before it existed)."""
    try:
        with open(os.path.join(directory, "metadata.json")) as file:
            return json.load(file)
    except FileNotFoundError:
        return {}


def _report(builder, metadata: dict, dataset: str, reused: bool, seconds: float) -> PrepareReport:
    """The report of a prepared copy, from its TFDS info and metadata.json."""
    splits = builder.info.splits
    return PrepareReport(
        dataset=dataset,
        directory=os.fspath(builder.data_path),
        examples={name: int(split.num_examples) for name, split in splits.items()},
        shards={name: len(split.shard_lengths) for name, split in splits.items()},
        skipped=metadata.get("skipped", {}),
        # Copies prepared before the reasons were recorded list the files only.
        converted={
            split: files if isinstance(files, dict) else dict.fromkeys(files, "")
            for split, files in metadata.get("converted", {}).items()
        },
        reused=reused,
        seconds=seconds,
        layout=metadata.get("source", {}).get("layout_description"),
        duplicates=metadata.get("duplicates", {}),
        image_kinds=metadata.get(formats.KINDS_KEY),
    )


def _open(
    data_config: config_lib.DataConfig,
    location: datasets.Location,
    metadata: dict,
    *,
    reused: bool,
    seconds: float,
) -> prepared.PreparedDataset:
    """Resolves the prepared copy at `location` for `data_config`: its splits, how
    each side is read (checked against the images, formats.resolve), the direction
    and the sizes."""
    builder = tfds.builder_from_directory(location.directory)
    report = _report(builder, metadata, data_config.dataset, reused, seconds)
    info = registry.dataset_info(data_config.dataset)
    direction = data_config.direction or info.natural_direction
    choices.check_choice("direction", direction, choices.DIRECTIONS)
    channels = (data_config.input_channels, data_config.output_channels)
    bits, notes = formats.resolve(
        report.image_kinds,
        direction=direction,
        channels=channels,
        bits=(data_config.input_bits, data_config.output_bits),
        dataset=data_config.dataset,
        data_dir=data_config.data_dir,
    )
    inputs, targets = (SideFormat(*side) for side in zip(channels, bits, strict=True))
    side_by_side = base.IMAGE in builder.info.features
    directory = os.fspath(builder.data_path)
    return prepared.PreparedDataset(
        name=data_config.dataset,
        builder=f"{builder.info.name} {builder.info.version}",
        directory=directory,
        splits={
            name: streams.Shards(
                directory=directory,
                names=tuple(split.filenames),
                lengths=tuple(int(length) for length in split.shard_lengths),
                side_by_side=side_by_side,
            )
            for name, split in builder.info.splits.items()
        },
        split_bytes={name: int(split.num_bytes) for name, split in builder.info.splits.items()},
        eval_split=info.eval_split,
        direction=direction,
        side_formats=(inputs, targets) if direction == "AtoB" else (targets, inputs),
        image_hw=sizes.image_hw(data_config),
        load_hw=sizes.load_hw(data_config),
        resize_mode=data_config.resize_mode,
        report=report,
        notes=tuple(notes),
    )


def load_prepared(data_config: config_lib.DataConfig) -> prepared.PreparedDataset:
    """The dataset `data_config` selects, resolved, if it is prepared (never prepares).

    Raises FileNotFoundError naming the command that prepares it.
    """
    location = datasets.locate(data_config)
    if not is_prepared(location):
        raise FileNotFoundError(
            f"{location.directory}: the {data_config.dataset} dataset is not prepared. Run "
            f"`python -m pix2pix_tf.prepare --dataset {data_config.dataset}` "
            "(train.py does it by itself)."
        )
    metadata = _read_metadata(location.directory)
    return _open(data_config, location, metadata, reused=True, seconds=0.0)


@contextlib.contextmanager
def _lock(path: str):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def _is_stale(metadata: dict, data_config: config_lib.DataConfig) -> bool:
    """A folder dataset whose source files or layout options changed since it was
    prepared, or that was prepared before gray and 16-bit images were kept."""
    if registry.dataset_info(data_config.dataset).builder != registry.FOLDER:
        return False

    source = metadata.get("source", {})
    if formats.KINDS_KEY not in metadata and os.path.isdir(data_config.source_dir):
        return True
    # Copies prepared before the options existed were prepared with the defaults.
    options = source.get("options", {"folder_layout": "auto", "pair_suffixes": None})
    if options != folder.layout_options(data_config):
        return True
    if not os.path.isdir(data_config.source_dir):
        return False  # The source is gone: the prepared copy is all there is.
    return source.get("fingerprint") != folder.fingerprint(data_config.source_dir)


def is_prepared(location: datasets.Location) -> bool:
    """Whether `location` holds a complete prepared copy (TFDS writes dataset_info.json
    last, into a folder renamed into place when it is complete)."""
    return os.path.exists(os.path.join(location.directory, "dataset_info.json"))


def prepare(data_config: config_lib.DataConfig) -> prepared.PreparedDataset:
    """Prepares the dataset `data_config` selects under data_config.data_dir.

    Returns it resolved (prepared.PreparedDataset; `.report` says what was done),
    at once when it is already complete. Raises a PrepareError (or an
    archive.ArchiveError) whose message says what is wrong and what to do, and
    ValueError naming the flag when the channel settings do not fit the images.
    """

    start = time.perf_counter()
    data_dir = os.path.abspath(data_config.data_dir)
    if os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise base.PrepareError(
            f"--data_dir {data_config.data_dir}: is a file, not a directory; pass a "
            "directory for the prepared datasets (it is created if missing)."
        )
    location = datasets.locate(data_config)
    directory = location.directory

    def reuse(metadata: dict) -> prepared.PreparedDataset:
        seconds = time.perf_counter() - start
        return _open(data_config, location, metadata, reused=True, seconds=seconds)

    if is_prepared(location):
        metadata = _read_metadata(directory)
        if not _is_stale(metadata, data_config):
            return reuse(metadata)
    try:
        with _lock(os.path.join(data_dir, ".locks", f"{location.name}.lock")):
            _restore_interrupted_swap(directory)
            # Another process may have finished it while we waited for the lock.
            if is_prepared(location):
                metadata = _read_metadata(directory)
                if not _is_stale(metadata, data_config):
                    return reuse(metadata)
                print(
                    f"The files in {data_config.source_dir}, the layout options or the record "
                    "format changed; preparing them again (the prepared copy is kept until this "
                    "succeeds)."
                )
                _rebuild(data_config, location)
            else:
                _build(data_config, data_config.data_dir, directory)
    except OSError as error:
        raise base.PrepareError(write_error(data_config.data_dir, error)) from None
    seconds = time.perf_counter() - start
    return _open(data_config, location, _read_metadata(directory), reused=False, seconds=seconds)


def _build(data_config: config_lib.DataConfig, build_data_dir: str, directory: str) -> str:
    """Builds the dataset into build_data_dir; returns the prepared directory there."""

    manual_dir = datasets.manual_dir(data_config)  # Resolved against the real data_dir.
    build_config = dataclasses.replace(data_config, data_dir=build_data_dir, manual_dir=manual_dir)
    location = datasets.locate(build_config)
    built = location.directory
    # Leftovers of interrupted runs (we hold the lock, so none is running).
    _remove_incomplete(built)
    builder = datasets.get_builder(build_config, location)
    print(f"Preparing {data_config.dataset} into {directory}", flush=True)
    try:
        builder.download_and_prepare(
            download_dir=os.path.join(os.path.abspath(data_config.data_dir), "downloads"),
            download_config=base.DownloadConfig(manual_dir=manual_dir),
        )
    except BaseException as error:
        _remove_incomplete(built)
        failure = _write_failure(error, tf.errors.OpError)
        if failure is not None:
            raise failure from None
        raise
    return built


def _rebuild(data_config: config_lib.DataConfig, location: datasets.Location) -> None:
    """Builds beside the prepared copy, then swaps the new copy in; keeps it on failure."""
    directory = location.directory
    staging = os.path.join(os.path.abspath(data_config.data_dir), STAGING_DIR, location.name)
    kept = f"The previously prepared copy in {directory} is unchanged and still used."
    shutil.rmtree(staging, ignore_errors=True)
    try:
        built = _build(data_config, staging, directory)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise base.PrepareError(f"{write_error(data_config.data_dir, error)} {kept}") from None
    except ValueError as error:  # PrepareError, ArchiveError: same type, one more sentence.
        shutil.rmtree(staging, ignore_errors=True)
        raise type(error)(f"{error} {kept}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = directory + _PREVIOUS_SUFFIX
    shutil.rmtree(previous, ignore_errors=True)
    os.rename(directory, previous)
    os.rename(built, directory)
    shutil.rmtree(previous, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def _restore_interrupted_swap(directory: str) -> None:
    """Puts back a prepared copy left aside by a swap that was interrupted."""
    previous = directory + _PREVIOUS_SUFFIX
    if os.path.isdir(previous):
        if os.path.isdir(directory):
            shutil.rmtree(previous, ignore_errors=True)
        else:
            os.rename(previous, directory)


def _remove_incomplete(directory: str) -> None:
    for leftover in glob.glob(os.path.join(os.path.dirname(directory), "incomplete.*")):
        shutil.rmtree(leftover, ignore_errors=True)


def _write_failure(error: BaseException, op_error: type) -> OSError | None:
    """The OSError behind `error`, if writing a file caused it.

    TensorFlow's file writes raise its own OpError (not OSError), and TFDS wraps
    errors of the split writers in a RuntimeError; the cause chain holds them.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError):
            return error
        if isinstance(error, op_error):
            message = str(error.message)
            for number in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT):
                if os.strerror(number) in message:
                    return OSError(number, os.strerror(number), message.split(";")[0])
            return OSError(errno.EIO, message)
        error = error.__cause__ or error.__context__
    return None


def write_error(data_dir: str, error: OSError) -> str:
    """One line naming --data_dir, what went wrong and what to do."""
    reason = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        hint = "free some space there or pass another --data_dir"
    elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = "pass a writable --data_dir"
    else:
        hint = "check that directory or pass another --data_dir"
    where = f" ({error.filename})" if error.filename else ""
    return (
        f"--data_dir {data_dir}: cannot write the prepared dataset: {reason}{where}; {hint}. "
        "Nothing incomplete was kept."
    )
