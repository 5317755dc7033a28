"""The progress bar of training, evaluation and predict."""

from __future__ import annotations

import sys

import keras

# Seconds between progress bar redraws when stdout is a file or pipe (a log):
# Keras redraws every 0.05 s, which in a log file adds a copy of the bar each time.
LOG_INTERVAL = 15.0


class Progbar(keras.utils.Progbar):
    """keras.utils.Progbar whose ETA counts only the steps run since `initial`.

    A resumed run shows its global step against the total, while the time per
    step is estimated from the steps this process has run. When stdout is not
    a terminal the bar is redrawn every LOG_INTERVAL seconds (and at the end).
    """

    def __init__(self, target: int, initial: int = 0, **kwargs):
        if "interval" not in kwargs and not sys.stdout.isatty():
            kwargs["interval"] = LOG_INTERVAL
        super().__init__(target, **kwargs)
        self._initial = initial
        self._seen_so_far = initial

    def _estimate_step_duration(self, current, now):
        return super()._estimate_step_duration(current - self._initial, now)
