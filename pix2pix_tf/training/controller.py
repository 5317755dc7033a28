"""The outer training loop: progress, summaries, checkpoints, signals, divergence.

`run` drives a built train step over the input iterator. Everything with side
effects lives here, none of it in the step: the progress bar, TensorBoard
scalars and sample grids, checkpoints every K steps and at the end, a clean
stop on SIGTERM / Ctrl-C, and a loud stop on a non-finite loss.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time

import tensorflow as tf

from pix2pix_tf.training import run_dir as checkpointing
from pix2pix_tf.training import summaries

LOSS_NAMES = ("gen_total", "gen_gan", "gen_l1", "disc")


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the run stopped without saving."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run where it could not save (start-up, or a second Ctrl-C).

    Its message says what was kept and how to go on; train.py prints it as one
    line and exits with status 130.
    """


class StopRequest:
    """Turns SIGTERM / SIGINT into a flag the loop checks after each step.

    The first signal asks the loop to save and exit; the handlers in place
    before are reinstated then, so a second Ctrl-C interrupts at once.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signal: int | None = None
        self._previous = {}

    def __enter__(self):
        try:
            for number in self.SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        except ValueError:  # Not the main thread: leave signals alone.
            self._restore()
        return self

    def _handle(self, number, frame):
        self.signal = number
        self._restore()

    def _restore(self):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def __exit__(self, *exc_info):
        self._restore()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class LossWindow:
    """Loss sums and throughput over the steps since the last log."""

    def __init__(self):
        self.sums = dict.fromkeys(LOSS_NAMES, 0.0)
        self.count = 0
        self.timed_steps = 0
        self.start = None

    def add(self, values: dict[str, float]) -> None:
        for name in LOSS_NAMES:
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
        self.sums = dict.fromkeys(LOSS_NAMES, 0.0)
        self.count, self.timed_steps = 0, 0
        self.start = time.perf_counter()
        return means, rate


def steps_until_boundary(step: int, train) -> int:
    """Steps the next call may run: at most --steps_per_execution, and never past
    a log, sample, checkpoint or final step, so each of those happens exactly on
    its step whatever --steps_per_execution is."""
    count = min(train.steps_per_execution, train.steps - step)
    for every in (train.log_every, train.image_every, train.checkpoint_every, train.eval_every):
        if every:
            count = min(count, every - step % every)
    return count


def run(
    config,
    state,
    train_steps,
    iterator,
    manager,
    writers,
    sample_batch,
    *,
    chief=True,
    evaluate=None,
) -> dict:
    """Trains from state.step to config.train.steps; see training.train for the result.

    `train_steps(iterator, count)` is training.make_train_loop's function: it
    runs `count` steps in one call and returns each step's losses. Only the
    `chief` writes sample grids (its writers are the only real ones).

    `sample_batch` is the fixed (inputs, targets) validation batch of the sample
    grids; the generator runs on it in inference mode (batch-norm moving
    statistics, no dropout), as an exported model does by default.

    `evaluate(step)`, when given, scores the generator on the evaluation split
    every --eval_every steps (and at the end) and writes its own summaries.
    """
    train = config.train
    workdir, steps = train.workdir, train.steps
    start = int(state.step.numpy())
    summaries.write_config(writers["train"], config.to_json(), start)
    generate = tf.function(lambda images: state.generator(images, training=False))

    def write_samples(step: int) -> str:
        inputs, targets = sample_batch
        generated = generate(inputs)
        l1 = float(tf.reduce_mean(tf.abs(tf.cast(targets, tf.float32) - generated)))
        grid = summaries.sample_grid(inputs, generated, targets)
        summaries.write_samples(writers["eval"], grid, l1, step)
        path = summaries.sample_path(workdir, step)
        try:
            return summaries.save_png(grid, path)
        except OSError as error:  # A full disk: no partial grid is left behind.
            if os.path.exists(path + ".tmp"):
                os.remove(path + ".tmp")
            raise checkpointing.save_error(
                workdir, f"sample grid {path}", error, manager.latest_checkpoint
            ) from None

    step, saved_step = start, (start if manager.latest_checkpoint else None)
    latest: dict[str, float] = {}
    sample = None
    window = LossWindow()
    progbar = summaries.Progbar(steps, initial=start, stateful_metrics=[*LOSS_NAMES, "images/s"])
    if start >= steps:
        log(f"{workdir} is already trained to step {start} of {steps}; raise --steps to go on.")
    with StopRequest() as stop:
        while step < steps and stop.signal is None:
            count = steps_until_boundary(step, train)
            executed = {name: value.numpy() for name, value in train_steps(iterator, count).items()}
            for offset in range(count):
                values = {name: float(executed[name][offset]) for name in LOSS_NAMES}
                bad = [name for name, value in values.items() if not math.isfinite(value)]
                if bad:
                    progbar.update(step + offset + 1, finalize=True)  # Ends the bar's line.
                    listed = ", ".join(f"{name}={values[name]}" for name in bad)
                    raise NonFiniteLossError(
                        f"non-finite loss at step {step + offset + 1} ({listed}); "
                        f"stopped without saving. The latest checkpoint "
                        f"({manager.latest_checkpoint or 'none yet'}) is the last good state: "
                        f"lower --learning_rate or check the data, then rerun to resume from it."
                    )
                window.add(values)
            window.ran(count)
            step += count
            if step % train.log_every == 0 or step == steps:
                latest, rate = window.flush(train.batch_size)
                scalars = {f"losses/{name}": value for name, value in latest.items()}
                # The rate this step used: the optimizer had taken step - 1 steps.
                scalars["learning_rate"] = float(state.schedule(step - 1))
                bar_values = list(latest.items())
                if rate is not None:
                    scalars["images_per_second"] = rate
                    bar_values.append(("images/s", rate))
                summaries.write_scalars(writers["train"], scalars, step)
                progbar.update(step, values=bar_values)
            else:
                progbar.update(step)
            if chief and (step % train.image_every == 0 or step == steps):
                sample = write_samples(step)
            if evaluate is not None and (step % train.eval_every == 0 or step == steps):
                progbar.update(step, finalize=True)  # Ends the bar's line before the report.
                evaluate(step)
            if step % train.checkpoint_every == 0 or step == steps:
                manager.save(checkpoint_number=step)
                saved_step = step
        if step != saved_step:
            manager.save(checkpoint_number=step)
        interrupted = stop.signal
    if interrupted is not None and step > start:
        progbar.update(step, finalize=True)  # Ends the bar's line.
    for writer in writers.values():
        writer.flush()
    if interrupted is not None:
        log(
            f"Stopped by {signal.Signals(interrupted).name} at step {step} of {steps}; saved "
            f"{manager.latest_checkpoint}. Rerun the same command to resume."
        )
    else:
        log(f"Trained to step {step}; latest checkpoint {manager.latest_checkpoint}.")
    return {
        **latest,
        "step": step,
        "total_steps": steps,
        "workdir": workdir,
        "checkpoint": manager.latest_checkpoint,
        "sample": sample,
        "interrupted": interrupted,
    }
