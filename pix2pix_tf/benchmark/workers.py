"""Benchmark workers: one process per variant, timed in turn, each with its own peak RSS.

A worker runs `python -m pix2pix_tf.benchmark.train_benchmark --worker` with its spec in
the environment (train_benchmark.serve_variant: `run N` answers seconds per step, `quit`
the process's peak resident memory, ru_maxrss). The train and memory benchmarks time
their variants with `run_workers`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


class Worker:
    def __init__(self, name: str, spec: dict):
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pix2pix_tf.benchmark.train_benchmark", "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PIX2PIX_WORKER": json.dumps(spec)},
        )
        self.info = self._reply()
        self.seconds: list[float] = []
        self.memory: dict = {}

    def _reply(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise RuntimeError(f"the {self.name} benchmark worker exited with status {code}.")
        return json.loads(line)

    def run(self, steps: int) -> float:
        self.process.stdin.write(f"run {steps}\n")
        self.process.stdin.flush()
        seconds = self._reply()["seconds_per_step"]
        self.seconds.append(seconds)
        return seconds

    def finish(self) -> float:
        """Ends the worker; returns its peak RSS (MB) and keeps its memory reply as `memory`."""
        self.process.stdin.write("quit\n")
        self.process.stdin.flush()
        self.memory = self._reply()
        self.process.wait()
        return self.memory["peak_rss_mb"]


def run_workers(specs: dict[str, dict], rounds: int, steps: int, log) -> tuple[dict, dict]:
    """One worker per spec, timed in turn for `rounds` rounds of `steps` steps (the order
    alternating); returns (workers with their per-round seconds, peak RSS MB by name)."""
    workers = {}
    try:
        for name, spec in specs.items():
            log(f"building {name} ...")
            workers[name] = Worker(name, spec)
        order = list(workers)
        for round_index in range(rounds):
            for name in order if round_index % 2 == 0 else reversed(order):
                seconds = workers[name].run(steps)
                log(f"round {round_index + 1}/{rounds} {name}: {1000 * seconds:.0f} ms/step")
        peaks = {name: worker.finish() for name, worker in workers.items()}
    finally:
        for worker in workers.values():
            if worker.process.poll() is None:
                worker.process.kill()
    return workers, peaks
