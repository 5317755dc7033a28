"""The periodic actions of a training run: scalars, sample grids, evaluation, checkpoints.

Each is a controller.Action with its own interval (--log_every, --image_every,
--eval_every, --checkpoint_every) that also runs at the last step. Every worker
builds the same actions, so that all of them end their calls of the train step on
the same steps; only the chief's writers and files are real (see distribute.py).
"""

from __future__ import annotations

import os
import time

import tensorflow as tf

from pix2pix_tf.models import losses
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.runs import grids
from pix2pix_tf.training import summaries
from pix2pix_tf.training.controller import Action, Progress, log
from pix2pix_tf.training.step import LOSS_NAMES


class LossWindow:
    """Loss sums and throughput over the steps since the last log."""

    def __init__(self, names: tuple[str, ...] = LOSS_NAMES):
        self.names = names
        self.sums = dict.fromkeys(names, 0.0)
        self.count = 0
        self.timed_steps = 0
        self.start = None

    def add(self, values: dict[str, float]) -> None:
        for name in self.names:
            self.sums[name] += values[name]
        self.count += 1

    def ran(self, steps: int) -> None:
        """Counts the steps of one train call for the throughput."""
        if self.start is None:
            # The first call of a process includes tracing; time from its end.
            self.start = time.perf_counter()
        else:
            self.timed_steps += steps

    def flush(self, batch_size: int) -> tuple[dict[str, float], float | None]:
        means = {name: total / self.count for name, total in self.sums.items()}
        rate = None
        if self.timed_steps:
            rate = self.timed_steps * batch_size / (time.perf_counter() - self.start)
        self.sums = dict.fromkeys(self.names, 0.0)
        self.count, self.timed_steps = 0, 0
        self.start = time.perf_counter()
        return means, rate


class ScalarsAction(Action):
    """Mean losses, learning rate and images/s to TensorBoard and the progress bar."""

    def __init__(
        self,
        interval: int,
        writer,
        schedule,
        batch_size: int,
        progress: Progress,
        names: tuple[str, ...] = LOSS_NAMES,
    ):
        self.interval = interval
        self.writer, self.schedule = writer, schedule
        self.batch_size = batch_size
        self.progress = progress
        self.window = LossWindow(names)
        # The mean losses of the last log, returned by train().
        self.latest: dict[str, float] = {}

    def record(self, losses: list[dict[str, float]]) -> None:
        for values in losses:
            self.window.add(values)
        self.window.ran(len(losses))

    def __call__(self, step: int) -> None:
        self.latest, rate = self.window.flush(self.batch_size)
        scalars = {f"losses/{name}": value for name, value in self.latest.items()}
        # The rate this step used: the optimizer had taken step - 1 steps.
        scalars["learning_rate"] = float(self.schedule(step - 1))
        bar_values = list(self.latest.items())
        if rate is not None:
            scalars["images_per_second"] = rate
            bar_values.append(("images/s", rate))
        summaries.write_scalars(self.writer, scalars, step)
        self.progress.show(step, bar_values)


class CheckpointAction(Action):
    """Saves a checkpoint through a distribute.WorkerCheckpointManager.

    With --keep_best it also saves on every evaluation step (`evaluate_every`; all
    workers, since saving is collective), and the chief's `keeper`
    (runs/best.BestKeeper) keeps the checkpoint whose evaluation was best.
    """

    def __init__(self, interval: int, manager, start: int, evaluate_every: int = 0, keeper=None):
        self.interval = interval
        self.evaluate_every = evaluate_every
        self.manager = manager
        self.keeper = keeper
        # The step of the checkpoint the run resumed from (at `start`) or saved last.
        self.saved_step = start if manager.latest_checkpoint else None

    @property
    def latest(self) -> str | None:
        """The latest complete checkpoint of the run directory."""
        return self.manager.latest_checkpoint

    def steps_until_due(self, step: int) -> int | None:
        due = [every - step % every for every in (self.interval, self.evaluate_every) if every]
        return min(due) if due else None

    def is_due(self, step: int, last_step: int) -> bool:
        every = [value for value in (self.interval, self.evaluate_every) if value]
        return bool(every) and (step == last_step or any(step % value == 0 for value in every))

    def __call__(self, step: int) -> None:
        path = self.manager.save(checkpoint_number=step)
        self.saved_step = step
        if self.keeper is not None and self.keeper.keep(step, path):
            record = self.keeper.record
            log(
                f"best {record['metric']} {record['value']:.4f} at step {step}: kept in "
                f"{os.path.join(self.manager.workdir, record['checkpoint'])}"
            )


class SamplesAction(Action):
    """A sample grid of a fixed validation batch, as a PNG and in TensorBoard (chief only).

    The generator runs on `sample_batch` (inputs, targets) in inference mode
    (batch-norm moving statistics, no dropout), as an exported model does by
    default.
    """

    def __init__(
        self, interval: int, generator, sample_batch, writer, workdir: str, checkpoint, chief: bool
    ):
        self.interval = interval
        self.generate = tf.function(lambda images: generator(images, training=False))
        self.sample_batch = sample_batch
        self.writer, self.workdir = writer, workdir
        self.checkpoint = checkpoint
        self.chief = chief
        # The path of the last grid written, returned by train().
        self.latest: str | None = None

    def __call__(self, step: int) -> None:
        if not self.chief:
            return
        inputs, targets = self.sample_batch
        generated = self.generate(inputs)
        l1 = float(tf.reduce_mean(losses.l1_loss(generated, targets)))
        grid = grids.sample_grid(inputs, generated, targets)
        summaries.write_samples(self.writer, grid, l1, step)
        path = grids.sample_path(self.workdir, step)
        try:
            self.latest = grids.save_png(grid, path)
        except OSError as error:  # A full disk: save_png leaves no partial grid behind.
            raise run_dir.save_error(
                self.workdir, f"sample grid {path}", error, self.checkpoint.latest
            ) from None


class EvaluationAction(Action):
    """Scores the generator on the evaluation split (chief only; see evaluation/evaluator.py).

    `evaluate(step)` is evaluator.periodic_evaluator's function, or None on the
    other workers, which still end their calls on its steps.
    """

    def __init__(self, interval: int, evaluate, progress: Progress, keeper=None, writer=None):
        self.interval = interval
        self.evaluate = evaluate
        self.progress = progress
        # --keep_best: the chief's runs/best.BestKeeper, and where the best value so far goes.
        self.keeper, self.writer = keeper, writer

    def __call__(self, step: int) -> None:
        if self.evaluate is None:
            return
        self.progress.end_line(step)  # Ends the bar's line before the report.
        results = self.evaluate(step)
        if self.keeper is not None:
            best = self.keeper.offer(step, results)
            summaries.write_scalars(self.writer, {f"best/{self.keeper.metric.name}": best}, step)
            self.writer.flush()
