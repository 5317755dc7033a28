"""Prepares a dataset as sharded TFRecords: `python -m pix2pix_tf.prepare --dataset NAME`.

    python -m pix2pix_tf.prepare                        # the embedded synthetic streets
    python -m pix2pix_tf.prepare --dataset cityscapes --manual_dir ../shared/datasets
    python -m pix2pix_tf.prepare --dataset folder --source_dir my_pairs

`prepare(data_config)` is idempotent: when the dataset is already complete it
returns at once (the training loop calls it before every run). TFDS writes into
an `incomplete.*` folder that is renamed into place only at the end, so an
interrupted prepare never leaves a dataset that looks complete: the next call
removes the leftovers and starts over. A lock file serialises concurrent calls.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import glob
import json
import os
import shutil
import sys
import time

from pix2pix_tf import config as config_lib
from pix2pix_tf import datasets
from pix2pix_tf.datasets import base


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
    # Split -> source files converted to RGB PNG (all others keep their bytes).
    converted: dict[str, list[str]]
    # True when the dataset was already complete and nothing was written.
    reused: bool
    seconds: float

    @property
    def num_skipped(self) -> int:
        return sum(len(files) for files in self.skipped.values())

    def summary(self, max_listed: int = 20) -> str:
        verb = "Reused" if self.reused else f"Prepared in {self.seconds:.1f} s:"
        lines = [f"{verb} {self.dataset} TFRecords in {self.directory}"]
        for split, count in self.examples.items():
            lines.append(f"  {split}: {count} examples in {self.shards[split]} shards")
        converted = sum(len(files) for files in self.converted.values())
        if converted:
            lines.append(f"  {converted} images converted to RGB PNG")
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


def read_report(directory: str, dataset: str, reused: bool, seconds: float) -> PrepareReport:
    """Builds the report from a prepared dataset's JSON files."""
    with open(os.path.join(directory, "dataset_info.json")) as file:
        info = json.load(file)
    metadata = {}
    metadata_path = os.path.join(directory, "metadata.json")
    if os.path.exists(metadata_path):
        with open(metadata_path) as file:
            metadata = json.load(file)
    splits = {split["name"]: split for split in info.get("splits", [])}
    return PrepareReport(
        dataset=dataset,
        directory=directory,
        examples={name: sum(int(n) for n in s["shardLengths"]) for name, s in splits.items()},
        shards={name: len(s["shardLengths"]) for name, s in splits.items()},
        skipped=metadata.get("skipped", {}),
        converted=metadata.get("converted", {}),
        reused=reused,
        seconds=seconds,
    )


@contextlib.contextmanager
def _lock(path: str):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def _is_stale(directory: str, data_config: config_lib.DataConfig) -> bool:
    """A folder dataset whose source files changed since it was prepared."""
    if data_config.dataset != config_lib.FOLDER_DATASET:
        return False
    from pix2pix_tf.datasets import folder

    if not os.path.isdir(data_config.source_dir):
        return False  # The source is gone: the prepared copy is all there is.
    with open(os.path.join(directory, "metadata.json")) as file:
        source = json.load(file).get("source", {})
    return source.get("fingerprint") != folder.fingerprint(data_config.source_dir)


def is_prepared(data_config: config_lib.DataConfig) -> bool:
    return os.path.exists(os.path.join(datasets.prepared_dir(data_config), "dataset_info.json"))


def prepare(data_config: config_lib.DataConfig) -> PrepareReport:
    """Prepares the dataset `data_config` selects under data_config.data_dir.

    Returns at once when it is already complete. Raises a PrepareError (or an
    archive.ArchiveError) whose message says what is wrong and what to do.
    """
    start = time.perf_counter()
    directory = datasets.prepared_dir(data_config)
    name = data_config.dataset
    if is_prepared(data_config) and not _is_stale(directory, data_config):
        return read_report(directory, name, reused=True, seconds=time.perf_counter() - start)
    builder_name, config_name = datasets.builder_location(data_config)
    data_dir = os.path.abspath(data_config.data_dir)
    with _lock(os.path.join(data_dir, ".locks", f"{builder_name}-{config_name}.lock")):
        # Another process may have finished it while we waited for the lock.
        if is_prepared(data_config):
            if not _is_stale(directory, data_config):
                return read_report(
                    directory, name, reused=True, seconds=time.perf_counter() - start
                )
            print(f"The files in {data_config.source_dir} changed; preparing them again.")
            shutil.rmtree(directory)
        # Leftovers of interrupted runs (we hold the lock, so none is running).
        for leftover in glob.glob(os.path.join(os.path.dirname(directory), "incomplete.*")):
            shutil.rmtree(leftover, ignore_errors=True)
        builder = datasets.get_builder(data_config)
        print(f"Preparing {name} into {directory}", flush=True)
        builder.download_and_prepare(
            download_dir=os.path.join(data_dir, "downloads"),
            download_config=base.DownloadConfig(manual_dir=datasets.manual_dir(data_config)),
        )
    return read_report(directory, name, reused=False, seconds=time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pix2pix_tf.prepare",
        description="Prepares a dataset as sharded TFRecords (reuses what exists).",
        epilog="datasets:\n" + config_lib.datasets_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config_lib.add_preset_flag(parser)
    config_lib.add_config_flags(parser, only=("data",))
    args = parser.parse_args(argv)
    try:
        config = config_lib.config_from_args(args)
        report = prepare(config.data)
    except ValueError as error:  # PrepareError, ArchiveError and bad flags...
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
