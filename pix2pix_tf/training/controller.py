"""The outer training loop: a controller that runs the train step and its periodic actions.

`Controller.run` calls the train step (several steps per call with
--steps_per_execution) until the last step, and after each call asks each
action whether it is due: TensorBoard scalars, sample grids, evaluation and
checkpoints (pix2pix_tf/training/actions.py) each have their own interval and
also run at the last step. Each call ends on the next step an action is due, so
every action runs exactly on its steps whatever --steps_per_execution is. The
controller also owns what stops a run: a clean stop with a final checkpoint on
SIGTERM / Ctrl-C, and a loud stop on a non-finite loss. This is orbit's
Controller with train actions, without its evaluator and summary manager.
"""

from __future__ import annotations

import math
import signal
import sys

from pix2pix_tf.runs import progress


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the run stopped without saving."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run where it could not save (start-up, or a second Ctrl-C).

    Its message says what was kept and how to go on; train.py prints it as one
    line and exits with status 130.
    """


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class StopRequest:
    """Turns SIGTERM / SIGINT into a flag the loop checks after each call.

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


class Progress:
    """The progress bar: drawn once per call of the train step, and ended before reports.

    `stateful_metrics` names the values shown as they are given (the losses are
    already averaged over the steps since the last log).
    """

    def __init__(self, total_steps: int, start: int, stateful_metrics: list[str]):
        self.bar = progress.Progbar(total_steps, initial=start, stateful_metrics=stateful_metrics)
        self.drawn = start

    def show(self, step: int, values: list[tuple[str, float]] | None = None) -> None:
        """Draws the bar at `step`, with (name, value) pairs if given; once per step."""
        if step > self.drawn:
            self.bar.update(step, values=values)
            self.drawn = step

    def end_line(self, step: int) -> None:
        """Draws the bar at `step` and ends its line, before other output."""
        self.bar.update(step, finalize=True)
        self.drawn = step


class Action:
    """Something the loop does every `interval` steps and at the last step (0: never).

    `record` sees the losses of every step; `__call__(step)` runs when due.
    """

    interval: int = 0

    def steps_until_due(self, step: int) -> int | None:
        """Steps from `step` to the next multiple of the interval, or None."""
        if not self.interval:
            return None
        return self.interval - step % self.interval

    def is_due(self, step: int, last_step: int) -> bool:
        return bool(self.interval) and (step % self.interval == 0 or step == last_step)

    def record(self, losses: list[dict[str, float]]) -> None:
        """Sees the losses of each step of the call that just ran (all finite)."""

    def __call__(self, step: int) -> None:
        raise NotImplementedError


class Controller:
    """Runs `train_steps(iterator, count)` from `start` to `total_steps` with periodic actions.

    `actions` run in their order when due, then `checkpoint` (an
    actions.CheckpointAction), which also saves the step a stop request ended
    on. `train_steps` is step.make_train_loop's function: it runs `count` steps
    in one call and returns each step's losses.
    """

    def __init__(
        self,
        train_steps,
        iterator,
        *,
        start: int,
        total_steps: int,
        steps_per_execution: int,
        actions: list[Action],
        checkpoint,
        progress: Progress,
    ):
        self.train_steps = train_steps
        self.iterator = iterator
        self.start = start
        self.total_steps = total_steps
        self.steps_per_execution = steps_per_execution
        self.actions = [*actions, checkpoint]
        self.checkpoint = checkpoint
        self.progress = progress

    def steps_until_boundary(self, step: int) -> int:
        """Steps the next call may run: at most --steps_per_execution, and never past
        the last step or a step on which an action is due."""
        count = min(self.steps_per_execution, self.total_steps - step)
        for action in self.actions:
            due_in = action.steps_until_due(step)
            if due_in is not None:
                count = min(count, due_in)
        return count

    def run(self) -> tuple[int, int | None]:
        """Trains to the last step or a stop request; returns (step, signal number or None).

        Raises NonFiniteLossError, without saving, at the first non-finite loss.
        """
        step = self.start
        with StopRequest() as stop:
            while step < self.total_steps and stop.signal is None:
                count = self.steps_until_boundary(step)
                executed = self.train_steps(self.iterator, count)
                losses = self._finite_losses(step, count, executed)
                step += count
                for action in self.actions:
                    action.record(losses)
                for action in self.actions:
                    if action.is_due(step, self.total_steps):
                        action(step)
                self.progress.show(step)
            if step != self.checkpoint.saved_step:
                self.checkpoint(step)
            interrupted = stop.signal
        if interrupted is not None and step > self.start:
            self.progress.end_line(step)
        return step, interrupted

    def _finite_losses(self, step: int, count: int, executed: dict) -> list[dict[str, float]]:
        """Each step's losses as floats; raises NonFiniteLossError at the first bad one."""
        arrays = {name: value.numpy() for name, value in executed.items()}
        losses = []
        for offset in range(count):
            values = {name: float(array[offset]) for name, array in arrays.items()}
            bad = [name for name, value in values.items() if not math.isfinite(value)]
            if bad:
                self.progress.end_line(step + offset + 1)
                listed = ", ".join(f"{name}={values[name]}" for name in bad)
                raise NonFiniteLossError(
                    f"non-finite loss at step {step + offset + 1} ({listed}); "
                    f"stopped without saving. The latest checkpoint "
                    f"({self.checkpoint.latest or 'none yet'}) is the last good state: "
                    f"lower --learning_rate or check the data, then rerun to resume from it."
                )
            losses.append(values)
        return losses
