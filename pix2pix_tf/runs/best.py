"""The best checkpoint of a run (`train.py --keep_best METRIC`), apart from the rolling ones.

With --keep_best, every periodic evaluation step also writes a regular checkpoint;
when the evaluation's METRIC beats the best so far, that checkpoint's files are
linked (or, where the file system has no hard links, copied) into
`<workdir>/best/step-<N>/` and `<workdir>/best.json` is rewritten to name it:

    {"metric": "psnr", "value": 21.7, "step": 3000, "checkpoint": "best/step-3000/ckpt-3000",
     "higher_is_better": true}

The files go into `best/.incomplete-<N>/` first and that folder is renamed into
place, and best.json is replaced atomically after it, so a run killed at any moment
leaves best.json naming a complete checkpoint (or no best.json yet); leftovers are
removed when the run resumes. The rolling `--keep_checkpoints` deletion never
touches the best one: a hard link keeps its data.

`--checkpoint best` (export.py, evaluate.py, predict.py with a run directory) names
the checkpoint best.json points to (`resolve_checkpoint`).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import shutil

from pix2pix_tf import files

BEST_FILE = "best.json"
BEST_DIR = "best"
# What --checkpoint takes to name the best checkpoint.
BEST = "best"


@dataclasses.dataclass(frozen=True)
class Metric:
    """A --keep_best choice: the periodic evaluation's result key and its direction."""

    name: str
    key: str
    higher_is_better: bool

    def better(self, value: float, than: float | None) -> bool:
        if than is None:
            return True
        return value > than if self.higher_is_better else value < than


# --keep_best METRIC -> the evaluation result it reads. FID and KID need the
# Inception weights (--eval_fid), the FCN-score a trained segmenter.
METRICS = {
    metric.name: metric
    for metric in (
        Metric("l1", "l1", higher_is_better=False),
        Metric("psnr", "psnr", higher_is_better=True),
        Metric("ssim", "ssim", higher_is_better=True),
        Metric("fcn_per_pixel_accuracy", "fcn_generated_per_pixel_accuracy", True),
        Metric("fid", "fid", higher_is_better=False),
        Metric("kid", "kid", higher_is_better=False),
    )
}


class BestCheckpointError(ValueError):
    """best.json is missing, damaged or names no complete checkpoint (one line)."""


def read(workdir: str) -> dict | None:
    """best.json of a run, or None when there is none yet."""
    path = os.path.join(workdir, BEST_FILE)
    try:
        with open(path) as file:
            record = json.load(file)
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as error:
        raise BestCheckpointError(f"{path}: cannot be read ({error}).") from None
    if not isinstance(record, dict) or not {"metric", "value", "step", "checkpoint"} <= set(record):
        raise BestCheckpointError(f"{path}: not a best-checkpoint record of pix2pix-tf.")
    return record


def resolve_checkpoint(workdir: str, checkpoint: str | None) -> str | None:
    """`checkpoint` itself, or for "best" the path of the run's best checkpoint."""
    if checkpoint != BEST:
        return checkpoint
    record = read(workdir)
    if record is None:
        raise BestCheckpointError(
            f"--checkpoint best: {workdir} has no {BEST_FILE}; train it with "
            "--keep_best METRIC (and --eval_every N) to keep one."
        )
    path = os.path.join(workdir, record["checkpoint"])
    if not os.path.exists(path + ".index"):
        raise BestCheckpointError(
            f"--checkpoint best: {os.path.join(workdir, BEST_FILE)} names {path}, which is "
            "missing; pass another --checkpoint."
        )
    return path


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # No hard links here (another file system, or none at all).
        shutil.copy2(source, target)


class BestKeeper:
    """Keeps the best checkpoint of a training run by `metric` (chief only)."""

    def __init__(self, workdir: str, metric: str, log=print):
        if metric not in METRICS:
            raise ValueError(f"--keep_best must be one of {', '.join(METRICS)}, got {metric!r}.")
        self.workdir = workdir
        self.metric = METRICS[metric]
        self.log = log
        self.record = self._resume()
        # (step, value) of an evaluation better than the best, until its checkpoint is kept.
        self.pending: tuple[int, float] | None = None

    @property
    def value(self) -> float | None:
        return None if self.record is None else float(self.record["value"])

    def _resume(self) -> dict | None:
        """best.json of an earlier run of this directory, its leftovers removed."""
        directory = os.path.join(self.workdir, BEST_DIR)
        try:
            record = read(self.workdir)
        except BestCheckpointError as error:
            self.log(f"warning: {error} Keeping a new best from here on.")
            record = None
        if record is not None and record["metric"] != self.metric.name:
            self.log(
                f"warning: {BEST_FILE} kept the best {record['metric']} (step "
                f"{record['step']}); this run keeps the best {self.metric.name}, so the next "
                "evaluation starts a new best."
            )
            record = None
        if record is not None and not os.path.exists(
            os.path.join(self.workdir, record["checkpoint"] + ".index")
        ):
            self.log(f"warning: {BEST_FILE} names a missing checkpoint; keeping a new best.")
            record = None
        if record is None and os.path.exists(os.path.join(self.workdir, BEST_FILE)):
            # Nothing it names is kept: no stale record for --checkpoint best to follow.
            os.remove(os.path.join(self.workdir, BEST_FILE))
        kept = None if record is None else os.path.dirname(record["checkpoint"])
        # Everything else in best/: an interrupted keep (.incomplete-N), an older best.
        names = os.listdir(directory) if os.path.isdir(directory) else []
        for name in names:
            if os.path.join(BEST_DIR, name) != kept:
                shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
        return record

    def offer(self, step: int, results: dict) -> float | None:
        """Notes the evaluation at `step`; returns the best value so far (with it)."""
        if self.metric.key not in results:
            raise ValueError(
                f"--keep_best {self.metric.name}: the evaluation at step {step} has no "
                f"{self.metric.key} (FID/KID need --eval_fid on and the Inception weights, "
                "the FCN-score a trained segmenter)."
            )
        value = float(results[self.metric.key])
        if math.isfinite(value) and self.metric.better(value, self.value):
            self.pending = (step, value)
            return value
        return self.value

    def keep(self, step: int, checkpoint_path: str) -> bool:
        """After the checkpoint of `step` is saved: keeps it if its evaluation was best."""
        if self.pending is None or self.pending[0] != step:
            return False
        value = self.pending[1]
        self.pending = None
        directory = os.path.join(self.workdir, BEST_DIR)
        final = os.path.join(directory, f"step-{step}")
        incomplete = os.path.join(directory, f".incomplete-{step}")
        shutil.rmtree(incomplete, ignore_errors=True)
        os.makedirs(incomplete)
        name = os.path.basename(checkpoint_path)
        for source in sorted(glob.glob(checkpoint_path + ".*")):
            _link_or_copy(source, os.path.join(incomplete, os.path.basename(source)))
        shutil.rmtree(final, ignore_errors=True)
        os.rename(incomplete, final)
        previous = self.record
        self.record = {
            "metric": self.metric.name,
            "value": value,
            "step": step,
            "checkpoint": os.path.join(BEST_DIR, f"step-{step}", name),
            "higher_is_better": self.metric.higher_is_better,
        }
        files.write_atomic(
            os.path.join(self.workdir, BEST_FILE), json.dumps(self.record, indent=2) + "\n"
        )
        if previous is not None and previous["step"] != step:
            shutil.rmtree(
                os.path.join(self.workdir, os.path.dirname(previous["checkpoint"])),
                ignore_errors=True,
            )
        return True
