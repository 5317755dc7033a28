"""tf.distribute for training: the strategy, the chief, checkpoints and the input.

`--strategy`:

- `default`: one device (CPU or one GPU), TensorFlow's default strategy.
- `mirrored`: MirroredStrategy, one replica per local GPU (or per logical CPU).
- `multi_worker`: MultiWorkerMirroredStrategy over the machines in TF_CONFIG.
- `tpu`: TPUStrategy on the Cloud TPU named by `--tpu` (a name, `grpc://` address
  or `local`).
- `auto`: TPU when `--tpu` is given, Mirrored with several GPUs, else default.

Only the chief (TF_CONFIG's `chief`, else worker 0) writes summaries, sample
grids and config.json. Every worker takes part in each checkpoint save (the
variables are saved collectively); the chief writes into the run directory and
the others into a temporary directory that is deleted after each save. All
workers resume from the run directory's latest checkpoint.

Input position on resume: no iterator is saved. A run that resumes at step k
builds each worker's input pipeline at the position k implies (data/pipeline.py,
`start_step`), so under every strategy it sees exactly the batches an
uninterrupted run would, and the checkpoint names no file of the data: each host
may read the prepared data from its own path.
"""

from __future__ import annotations

import json
import os
import shutil

import tensorflow as tf

from pix2pix_tf.configs import choices
from pix2pix_tf.runs import directory as run_dir


def make_strategy(name: str, tpu: str | None = None) -> tf.distribute.Strategy:
    """The tf.distribute strategy for --strategy (and --tpu)."""
    choices.check_choice("strategy", name, choices.STRATEGIES)
    if name == "auto":
        if tpu:
            name = "tpu"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "--strategy multi_worker needs the TF_CONFIG environment variable (the "
                "cluster's workers and this worker's index); see docs/training.md."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if not tpu:
        raise ValueError("--strategy tpu needs --tpu NAME (a Cloud TPU name, grpc:// or local).")
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def task(strategy: tf.distribute.Strategy) -> tuple[str | None, int]:
    """(task type, task id) of this process; (None, 0) outside a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or isinstance(strategy, tf.distribute.TPUStrategy):
        return None, 0
    return resolver.task_type, resolver.task_id or 0


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes summaries, samples, config and checkpoints."""
    task_type, task_id = task(strategy)
    if task_type in (None, "chief"):
        return True
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


class WorkerCheckpointManager:
    """A CheckpointManager that every worker calls and only the chief keeps.

    The chief saves into `workdir`; other workers save the same checkpoint
    into `workdir/worker_tmp/<task>` and delete it at once (saving is a
    collective operation, so all workers must take part). `latest_checkpoint`
    is always the run directory's, which is what every worker restores.

    A save that fails part-way (a full disk, Ctrl-C) leaves no partial files and
    the state file naming the last complete checkpoint; an OSError or
    TensorFlow error becomes run_dir.SaveError naming that checkpoint.
    """

    def __init__(
        self,
        checkpoint: tf.train.Checkpoint,
        workdir: str,
        keep: int,
        strategy: tf.distribute.Strategy | None = None,
        checkpoint_name: str = run_dir.CHECKPOINT_NAME,
    ):
        self.workdir = workdir
        self.checkpoint_name = checkpoint_name
        # The checkpoint this process restored or saved last; a damaged newer
        # one that resuming skipped is not the latest good state.
        self.known_latest: str | None = None
        strategy = strategy or tf.distribute.get_strategy()
        self.chief = is_chief(strategy)
        directory = workdir
        if not self.chief:
            task_type, task_id = task(strategy)
            directory = os.path.join(workdir, "worker_tmp", f"{task_type}_{task_id}")
        self.directory = directory
        self.manager = tf.train.CheckpointManager(
            checkpoint, directory=directory, max_to_keep=keep, checkpoint_name=checkpoint_name
        )

    @property
    def latest_checkpoint(self) -> str | None:
        return self.known_latest or tf.train.latest_checkpoint(self.workdir)

    def save(self, checkpoint_number: int) -> str:
        try:
            path = self.manager.save(checkpoint_number=checkpoint_number)
        except BaseException as error:
            run_dir.remove_partial_save(self.directory, self.checkpoint_name, checkpoint_number)
            if not self.chief:
                shutil.rmtree(self.directory, ignore_errors=True)
            if isinstance(error, (OSError, tf.errors.OpError)):
                what = f"checkpoint {self.checkpoint_name}-{checkpoint_number}"
                raise run_dir.save_error(
                    self.workdir, what, error, self.latest_checkpoint
                ) from None
            raise
        if not self.chief:
            shutil.rmtree(self.directory, ignore_errors=True)
            path = os.path.join(self.workdir, os.path.basename(path))
        self.known_latest = path
        return path


def cluster_summary(strategy: tf.distribute.Strategy) -> str:
    """One line naming the strategy, replicas and this worker's role."""
    task_type, task_id = task(strategy)
    role = "" if task_type is None else f", this process is {task_type} {task_id}"
    if task_type is not None and is_chief(strategy):
        role += " (chief)"
    config = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    workers = sum(len(addresses) for addresses in config.values()) if config else 1
    return (
        f"{strategy_name(strategy)}: {strategy.num_replicas_in_sync} replica(s) "
        f"on {workers} worker(s){role}."
    )


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """The public class name of a strategy (some report a private subclass's)."""
    for kind, name in (
        (tf.distribute.TPUStrategy, "TPUStrategy"),
        (tf.distribute.MultiWorkerMirroredStrategy, "MultiWorkerMirroredStrategy"),
        (tf.distribute.MirroredStrategy, "MirroredStrategy"),
    ):
        if isinstance(strategy, kind):
            return name
    return "DefaultStrategy"
