"""`train(config)`: one training run, from start-up to the last checkpoint.

What `python train.py` runs. Start-up checks the run directory, prepares the
data, builds the train state (pix2pix_tf/training/step.py) under the strategy
and restores the newest intact checkpoint; then a controller
(pix2pix_tf/training/controller.py) runs the train step with the periodic
actions of pix2pix_tf/training/actions.py. Strategies, the chief and distributed
resume are in pix2pix_tf/training/distribute.py, the run directory in run_dir.py.
"""

from __future__ import annotations

import dataclasses
import os
import signal

import keras
import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf.data import pipeline as input_pipeline
from pix2pix_tf.data import prepare
from pix2pix_tf.data.prepared import PreparedDataset
from pix2pix_tf.runs import best, resume
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.training import actions, distribute, precision, summaries
from pix2pix_tf.training.checkpoints import make_checkpoint
from pix2pix_tf.training.controller import Controller, Interrupted, Progress, log
from pix2pix_tf.training.step import (
    TrainState,
    build_train_state,
    loss_names,
    make_train_loop,
    total_steps,
)


def _seed_everything(config: config_lib.Config) -> None:
    keras.utils.set_random_seed(config.train.seed)
    if config.train.deterministic:
        tf.config.experimental.enable_op_determinism()


def _distributed_dataset(strategy, dataset, config: config_lib.Config, start_step: int):
    """The train split's batches for `strategy`, from step `start_step` on."""

    def dataset_fn(input_context):
        return input_pipeline.build_dataset(
            dataset,
            "train",
            training=True,
            batch_size=config.train.batch_size,  # Global: build_dataset splits it per replica.
            seed=config.train.seed,
            start_step=start_step,
            input_context=input_context,
            **config.data.training_input(),
        )

    return strategy.distribute_datasets_from_function(dataset_fn)


def _sample_batch(dataset, count: int):
    """A fixed validation batch for the sample grid (the train split if no val)."""
    split = dataset.sample_split
    count = min(count, dataset.num_examples(split))
    batches = input_pipeline.build_dataset(dataset, split, training=False, batch_size=count)
    return next(iter(batches))


@dataclasses.dataclass
class _Run:
    """What start-up builds for the controller."""

    config: config_lib.Config
    state: TrainState
    train_steps: object
    iterator: object
    manager: distribute.WorkerCheckpointManager
    chief: bool
    # The prepared data, resolved once (data/prepared.py).
    dataset: PreparedDataset


def _start(config: config_lib.Config) -> _Run:
    """Prepares the data, builds the state and restores the newest intact checkpoint."""
    workdir = config.train.workdir
    saved = resume.check_resume(workdir, config)
    if config.train.stage == "local" and tf.train.latest_checkpoint(workdir) is None:
        raise ValueError(
            f"--stage local: {workdir} has no checkpoint, so the global network this stage "
            "keeps frozen is untrained; run --stage global first (pix2pixHD's order: "
            "global, local, joint), or --stage joint to train everything."
        )
    if saved is not None:
        changes = resume.schedule_changes(saved, config)
        if changes:
            log(changes)
    dataset = prepare.prepare(config.data)
    if not dataset.report.reused:
        log(dataset.report.summary())
    # Channels checked against the prepared images, bit depths taken from them.
    for note in dataset.notes:
        log(note)
    config = config.replace(
        input_bits=dataset.input_format.bits, output_bits=dataset.target_format.bits
    )
    prepared = dataset.identity("train")
    if saved is not None:
        resume.check_resume(workdir, config)  # Now with the bit depths.
        warning = resume.check_prepared_data(workdir, prepared, accept=config.train.accept_new_data)
        if warning:
            log(warning)
    steps = total_steps(config, prepared["train"]["examples"])  # Read with the identity.

    _seed_everything(config)
    strategy = distribute.make_strategy(config.train.strategy, config.train.tpu)
    chief = distribute.is_chief(strategy)
    if config.train.batch_size % strategy.num_replicas_in_sync:
        raise ValueError(
            f"--batch_size {config.train.batch_size} must be a multiple of the "
            f"{strategy.num_replicas_in_sync} replicas of --strategy {config.train.strategy}."
        )
    if strategy.num_replicas_in_sync > 1 or not chief:
        log(distribute.cluster_summary(strategy))
    policy = precision.resolve_precision(config.train.precision, strategy)
    config = config.replace(steps=steps, precision=policy)
    state = build_train_state(config, strategy, total_steps=steps, policy=policy)
    train_steps = make_train_loop(config, state)

    checkpoint = make_checkpoint(state)
    manager = distribute.WorkerCheckpointManager(
        checkpoint, workdir, config.train.keep_checkpoints, strategy
    )
    restored = run_dir.restore_newest_intact(checkpoint, workdir, log=log)
    step = int(state.step.numpy())
    if restored:
        manager.known_latest = restored
        log(f"Resuming {restored} at step {step}.")
    # The input continues at the step's position, rebuilt from the step alone.
    batches = _distributed_dataset(strategy, dataset, config, start_step=step)
    return _Run(config, state, train_steps, iter(batches), manager, chief, dataset)


def _loop(run: _Run, writers: dict, sample_batch, evaluate, keeper) -> dict:
    """Runs the controller with the four periodic actions; returns train()'s result."""
    config, state, manager = run.config, run.state, run.manager
    train = config.train
    workdir, steps = train.workdir, train.steps
    start = int(state.step.numpy())
    names = loss_names(lambda_feature_matching=train.lambda_feature_matching)
    progress = Progress(steps, start, stateful_metrics=[*names, "images/s"])
    checkpoint = actions.CheckpointAction(
        train.checkpoint_every,
        manager,
        start,
        # --keep_best: every evaluation step has a checkpoint the keeper can keep.
        evaluate_every=train.eval_every if train.keep_best else 0,
        keeper=keeper,
    )
    scalars = actions.ScalarsAction(
        train.log_every, writers["train"], state.schedule, train.batch_size, progress, names
    )
    samples = actions.SamplesAction(
        train.image_every,
        state.generator,
        sample_batch,
        writers["eval"],
        workdir,
        checkpoint,
        chief=run.chief,
    )
    controller = Controller(
        run.train_steps,
        run.iterator,
        start=start,
        total_steps=steps,
        steps_per_execution=train.steps_per_execution,
        actions=[
            scalars,
            samples,
            actions.EvaluationAction(train.eval_every, evaluate, progress, keeper, writers["eval"]),
        ],
        checkpoint=checkpoint,
        progress=progress,
    )
    summaries.write_config(writers["train"], config.to_json(), start)
    if start >= steps:
        log(f"{workdir} is already trained to step {start} of {steps}; raise --steps to go on.")
    step, interrupted = controller.run()
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
        **scalars.latest,
        "step": step,
        "total_steps": steps,
        "workdir": workdir,
        "checkpoint": manager.latest_checkpoint,
        "sample": samples.latest,
        "interrupted": interrupted,
    }


def train(config: config_lib.Config, periodic_evaluator=None) -> dict:
    """Trains (or resumes) the run in config.train.workdir; returns final metrics.

    `periodic_evaluator(config, generator, writer, dataset=) -> evaluate(step)` scores the
    generator every --eval_every steps (train.py passes evaluation's
    `periodic_evaluator`, so that training does not depend on evaluation); a config
    with --eval_every needs one.

    The returned dict holds the last logged losses (step.loss_names), `step`,
    `total_steps`, `workdir`, `checkpoint` (the latest), `sample` (the last
    sample grid, or None) and `interrupted` (the signal number that stopped the
    run early, else None). Raises controller.NonFiniteLossError when a loss
    stops being finite, ValueError for a --workdir that cannot hold the run (a
    file, read-only, only damaged checkpoints, another configuration),
    run_dir.SaveError when a checkpoint cannot be written (a full disk), and
    controller.Interrupted for a Ctrl-C that came before the loop could save.
    """
    workdir = config.train.workdir
    if workdir is None:
        raise ValueError("config.train.workdir is not set; build the config with build_config.")
    if config.train.eval_every and periodic_evaluator is None:
        raise ValueError(
            "--eval_every needs a periodic evaluator: pass "
            "periodic_evaluator=pix2pix_tf.evaluation.evaluator.periodic_evaluator to train()."
        )
    run_dir.check_workdir(workdir)
    writers = {}
    try:
        try:
            run = _start(config)
            config, state, chief = run.config, run.state, run.chief
            sample_batch = _sample_batch(run.dataset, config.train.num_sample_images)
            writers = {
                name: (
                    tf.summary.create_file_writer(os.path.join(workdir, name))
                    if chief
                    else tf.summary.create_noop_writer()
                )
                for name in ("train", "eval")
            }
            evaluate, keeper = None, None
            if chief and config.train.keep_best:
                keeper = best.BestKeeper(workdir, config.train.keep_best, log=log)
            if chief and config.train.eval_every:
                evaluate = periodic_evaluator(
                    config, state.generator, writers["eval"], dataset=run.dataset
                )
            if chief:
                config.save(workdir)
                resume.save_prepared_data(workdir, run.dataset.identity("train"))
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted by Ctrl-C during start-up, before the first training step; no "
                f"checkpoint was written in {workdir}. Rerun the same command to continue."
            ) from None
        try:
            return _loop(run, writers, sample_batch, evaluate, keeper)
        except KeyboardInterrupt:  # A second Ctrl-C: the loop stops at once, without saving.
            raise Interrupted(
                f"interrupted again at step {int(state.step.numpy())} without saving; the "
                f"latest complete checkpoint is {run.manager.latest_checkpoint or 'none yet'}. "
                f"Rerun the same command to resume from it."
            ) from None
    finally:
        for writer in writers.values():
            writer.close()
