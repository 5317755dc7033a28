"""Train step, schedule, precision and checkpoints on in-memory tensors."""

import json
import os
import signal
import time

import keras
import numpy as np
import pipeline_helpers
import pytest
import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf.data import pipeline as input_pipeline
from pix2pix_tf.evaluation import evaluator
from pix2pix_tf.models import build_generator
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.runs import grids, progress, resume
from pix2pix_tf.training import controller, distribute, precision, summaries
from pix2pix_tf.training import step as step_lib
from pix2pix_tf.training import trainer as training
from pix2pix_tf.training.checkpoints import make_checkpoint, seed_states
from pix2pix_tf.training.step import LOSS_NAMES


def _tiny(**overrides):
    return config_lib.build_config(preset="tiny", **overrides)


def _batch(config, seed=0):
    """A fixed batch of smooth images; the target is a pixelwise function of the input."""
    size, batch = config.data.image_size, config.train.batch_size
    coarse = tf.random.stateless_uniform([batch, 8, 8, 3], seed=[seed, 1], minval=-1, maxval=1)
    inputs = tf.image.resize(coarse, [size, size], method="bilinear")
    return inputs, tf.tanh(2.0 * inputs[..., ::-1])


def test_learning_rate_is_constant_then_decays_linearly_to_zero():
    schedule = step_lib.LinearDecay(2e-4, total_steps=100, decay_steps=40)
    values = [float(schedule(step)) for step in (0, 59, 60, 80, 100, 120)]
    np.testing.assert_allclose(values, [2e-4, 2e-4, 2e-4, 1e-4, 0.0, 0.0], atol=1e-10)
    constant = step_lib.LinearDecay(2e-4, total_steps=100, decay_steps=0)
    assert float(constant(100)) == pytest.approx(2e-4)
    restored = step_lib.LinearDecay.from_config(schedule.get_config())
    assert float(restored(90)) == pytest.approx(float(schedule(90)))


def test_total_steps_from_epochs():
    config = _tiny(epochs=3, batch_size=4)
    assert step_lib.total_steps(config, train_examples=18) == 12  # 3 x (18 // 4).
    assert step_lib.total_steps(_tiny(steps=7), train_examples=18) == 7
    with pytest.raises(ValueError, match="--batch_size 4 is larger"):
        step_lib.total_steps(config, train_examples=3)


def test_train_step_returns_the_four_losses_and_counts_steps():
    config = _tiny()
    state = step_lib.build_train_state(config, total_steps=10)
    train_step = step_lib.make_train_step(config, state)
    values = train_step(*_batch(config))
    assert sorted(values) == sorted(LOSS_NAMES)
    for value in values.values():
        assert value.shape == () and value.dtype == tf.float32
        assert np.isfinite(value.numpy())
    np.testing.assert_allclose(
        values["gen_total"], values["gen_gan"] + 100.0 * values["gen_l1"], rtol=1e-5
    )
    assert int(state.step.numpy()) == 1
    assert int(state.generator_optimizer.iterations.numpy()) == 1
    assert int(state.discriminator_optimizer.iterations.numpy()) == 1


def test_train_step_lowers_the_l1_loss_on_a_fixed_batch():
    # A higher learning rate than the paper's makes the drop clear within 40 steps.
    config = _tiny(batch_size=2, seed=1, learning_rate=1e-3)
    keras.utils.set_random_seed(1)
    state = step_lib.build_train_state(config, total_steps=1000)
    train_step = step_lib.make_train_step(config, state)
    batch = _batch(config)
    l1 = [float(train_step(*batch)["gen_l1"]) for _ in range(40)]
    assert np.mean(l1[-5:]) < 0.6 * np.mean(l1[:3]), l1


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_train_step(policy):
    config = _tiny(precision=policy)
    state = step_lib.build_train_state(config, total_steps=10)
    assert state.policy == policy
    is_scaled = isinstance(state.generator_optimizer, keras.optimizers.LossScaleOptimizer)
    assert is_scaled == (policy == "mixed_float16")
    assert state.generator.get_layer("encoder_2_conv").compute_dtype == policy.split("_")[1]
    train_step = step_lib.make_train_step(config, state)
    for _ in range(12):
        values = train_step(*_batch(config))
    assert all(np.isfinite(value.numpy()) for value in values.values())
    # Loss scaling skips the updates whose float16 gradients overflow while it
    # lowers its scale from 2^15; the others reach the float32 inner optimizer,
    # which is what checkpoints hold.
    inner = precision.inner_optimizer(state.generator_optimizer)
    assert inner.iterations.numpy() >= 1 and int(state.step.numpy()) == 12
    if is_scaled:
        assert float(state.generator_optimizer.dynamic_scale.numpy()) < 2.0**15


def test_auto_precision_reads_the_cpu_flags(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor : 0\nflags : fpu sse avx512f avx512_bf16 amx_tile\n")
    assert "avx512_bf16" in precision.cpu_flags(str(cpuinfo))
    assert precision.cpu_flags(str(tmp_path / "missing")) == set()
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512f", "amx_bf16"})
    assert precision.resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    assert precision.resolve_precision("auto") == "float32"
    assert precision.resolve_precision("mixed_float16") == "mixed_float16"
    with pytest.raises(ValueError, match="--precision"):
        precision.resolve_precision("int8")


def _trained_run(workdir, config, steps=2):
    """A run directory as train() leaves it, from in-memory batches."""
    config = config.replace(workdir=str(workdir))
    state = step_lib.build_train_state(config, total_steps=10)
    train_step = step_lib.make_train_step(config, state)
    iterator = iter(tf.data.Dataset.from_tensors(_batch(config)).repeat())
    checkpoint = make_checkpoint(state)
    for _ in range(steps):
        train_step(*next(iterator))
    manager = distribute.WorkerCheckpointManager(checkpoint, str(workdir), 3)
    path = manager.save(checkpoint_number=steps)
    config.save(str(workdir))
    return config, state, path


def test_export_style_restore_gives_identical_outputs(tmp_path):
    config, state, path = _trained_run(tmp_path, _tiny())
    assert os.path.basename(path) == "ckpt-2"
    images = _batch(config, seed=5)[0]
    expected = state.generator(images, training=False)

    # Exactly what export does: rebuild from config.json, restore the generator only.
    saved = config_lib.Config.from_json(str(tmp_path / "config.json"))
    rebuilt = build_generator(**config_lib.generator_arguments(saved))
    tf.train.Checkpoint(generator=rebuilt).restore(path).expect_partial()
    np.testing.assert_allclose(rebuilt(images, training=False), expected, rtol=1e-6, atol=1e-6)

    restored_config, generator, restored = run_dir.restore_generator(str(tmp_path))
    assert restored_config == config and restored == path
    assert run_dir.checkpoint_step(restored) == 2
    np.testing.assert_allclose(generator(images, training=False), expected, rtol=1e-6, atol=1e-6)
    _, generator, _ = run_dir.restore_generator(str(tmp_path), checkpoint=path)
    np.testing.assert_allclose(generator(images, training=False), expected, rtol=1e-6, atol=1e-6)


def test_restore_generator_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        run_dir.restore_generator(str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        run_dir.restore_generator(str(empty))
    _tiny().save(str(empty))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run_dir.restore_generator(str(empty))
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        run_dir.restore_generator(str(empty), checkpoint=str(empty / "ckpt-9"))

    run = tmp_path / "run"
    _trained_run(run, _tiny())
    values = json.loads((run / "config.json").read_text())
    values["model"]["ngf"] = 16
    (run / "config.json").write_text(json.dumps(values))
    with pytest.raises(ValueError, match="does not hold the generator"):
        run_dir.restore_generator(str(run))


def test_resume_check_names_the_incompatible_fields(tmp_path):
    config = _tiny(workdir=str(tmp_path))
    assert resume.check_resume(str(tmp_path), config) is None
    config.save(str(tmp_path))
    changed_model = config.replace(ngf=16, image_size=128, load_size=143, unet_depth=7)
    # Without a checkpoint there is nothing to continue: any config may start over.
    assert resume.check_resume(str(tmp_path), changed_model) is None

    config, _, _ = _trained_run(tmp_path, config)
    changed_length = config.replace(steps=50, log_every=7, checkpoint_every=9)
    assert resume.check_resume(str(tmp_path), changed_length) == config
    with pytest.raises(ValueError) as error:
        resume.check_resume(str(tmp_path), changed_model)
    message = str(error.value)
    for field in ("--ngf (saved 8, now 16)", "--image_size", "--load_size", "--unet_depth"):
        assert field in message
    assert "--steps" not in message and "new --workdir" in message


def test_restoring_a_mismatched_training_checkpoint_is_a_clear_error(tmp_path):
    _, _, path = _trained_run(tmp_path, _tiny())
    other = _tiny(ndf=16)
    state = step_lib.build_train_state(other, total_steps=10)
    checkpoint = make_checkpoint(state)
    with pytest.raises(ValueError, match="cannot resume from this checkpoint"):
        run_dir.restore(checkpoint, path)


def test_dropout_seed_state_is_checkpointed():
    config = _tiny()
    generator = build_generator(**config_lib.generator_arguments(config))
    states = seed_states(generator)
    assert len(states) == 3  # One per dropout layer.
    assert all("seed_generator_state" in state.path for state in states)


def test_sample_grid_layout():
    inputs = -np.ones([2, 8, 8, 3], np.float32)
    generated = np.zeros([2, 8, 8, 3], np.float32)
    targets = np.ones([2, 8, 8, 3], np.float32)
    grid = grids.sample_grid(inputs, generated, targets)
    gap = grids.GRID_GAP
    assert grid.shape == (2 * 8 + gap, 3 * 8 + 2 * gap, 3) and grid.dtype == np.uint8
    assert grid[0, 0, 0] == 0 and grid[0, 8 + gap, 0] == 128 and grid[0, -1, 0] == 255


def test_progress_bar_eta_counts_only_this_session():
    # A run resumed at step 900 that took 10 s for 10 steps runs at 1 s/step.
    bar = progress.Progbar(1000, initial=900, verbose=0)
    bar._start = 100.0
    assert bar._estimate_step_duration(910, 110.0) == pytest.approx(1.0)


# ---------------------------------------------------------------------------
# End to end through prepare + the input pipeline on the tiny synthetic dataset.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from pix2pix_tf.data import prepare

    data_dir = str(tmp_path_factory.mktemp("tfrecords"))
    prepare.prepare(_tiny(data_dir=data_dir).data)
    return data_dir


def _events(directory):
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(
        directory, size_guidance={event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    return accumulator


def test_two_step_run_writes_checkpoints_config_and_events(tiny_data, tmp_path):
    workdir = tmp_path / "run"
    config = _tiny(data_dir=tiny_data, workdir=str(workdir))
    result = training.train(config)

    assert result["step"] == result["total_steps"] == 2 and result["interrupted"] is None
    assert result["checkpoint"] == str(workdir / "ckpt-2")
    assert all(np.isfinite(result[name]) for name in LOSS_NAMES)
    for name in ("checkpoint", "ckpt-1.index", "ckpt-2.index", "config.json"):
        assert (workdir / name).exists(), name
    assert (workdir / "samples" / "step_000002.png").exists()
    saved = config_lib.Config.from_json(str(workdir / "config.json"))
    # The bit depths come from the prepared images (8-bit RGB photos and label maps).
    assert saved == config.replace(steps=2, precision="float32", input_bits=8, output_bits=8)

    train_events = _events(str(workdir / "train"))
    scalars = {f"losses/{name}" for name in LOSS_NAMES}
    scalars |= {"learning_rate", "images_per_second", "config"}
    assert scalars <= set(train_events.Tags()["tensors"])
    assert [event.step for event in train_events.Tensors("losses/gen_l1")] == [1, 2]
    learning_rate = tf.make_ndarray(train_events.Tensors("learning_rate")[-1].tensor_proto)
    # The rate step 2 used: 2 steps, the last 1 decaying, so still the full rate.
    assert float(learning_rate) == pytest.approx(2e-4)
    config_text = tf.make_ndarray(train_events.Tensors("config")[0].tensor_proto)
    assert b'"arch": "paper"' in config_text.item()
    assert train_events.SummaryMetadata("config").plugin_data.plugin_name == "text"

    eval_events = _events(str(workdir / "eval"))
    assert eval_events.SummaryMetadata("samples").plugin_data.plugin_name == "images"
    image = tf.make_ndarray(eval_events.Tensors("samples")[-1].tensor_proto)
    width, height = (int(value) for value in image[:2])
    decoded = tf.io.decode_png(image[2]).numpy()
    rows = 4  # The tiny preset's val split has 4 examples.
    gap = grids.GRID_GAP
    assert decoded.shape == (rows * 64 + (rows - 1) * gap, 3 * 64 + 2 * gap, 3)
    assert (width, height) == (decoded.shape[1], decoded.shape[0])
    assert "losses/gen_l1" in eval_events.Tags()["tensors"]


def test_non_square_tiny_run_trains_on_wide_scenes_and_writes_a_wide_grid(
    tmp_path, capsys, monkeypatch
):
    """`train.py --preset tiny --image_size 64x128`: 2:1 scenes, 2 steps, a 2:1 sample grid."""
    from pix2pix_tf.data import datasets

    # The default segmenter root (checkpoints/segmenter) is relative: none is found here.
    monkeypatch.chdir(tmp_path)

    workdir = tmp_path / "run"
    config = _tiny(
        data_dir=str(tmp_path / "tfrecords"),
        workdir=str(workdir),
        image_size="64x128",
        eval_every=2,
        eval_examples=2,
    )
    assert datasets.locate(config.data).directory.endswith("train16_val4_seed0_256x512/1.1.0")
    with pytest.raises(ValueError, match="--eval_every needs a periodic evaluator"):
        training.train(config)  # Training does not import evaluation: it is handed it.
    result = training.train(config, periodic_evaluator=evaluator.periodic_evaluator)
    assert result["step"] == 2 and all(np.isfinite(result[name]) for name in LOSS_NAMES)
    saved = config_lib.Config.from_json(str(workdir / "config.json"))
    assert saved.data.image_size == "64x128" and saved.data.load_size == "72x143"
    # The prepared pairs are 2:1 scenes (1024x256: two 512x256 halves).
    files, _ = pipeline_helpers.split_files(config.data, "train")
    record = next(iter(tf.data.TFRecordDataset(files)))
    pair = tf.io.decode_jpeg(input_pipeline.parse(record, side_by_side=True)["image"])
    assert pair.shape == (256, 1024, 3)
    grid = tf.io.decode_png(tf.io.read_file(str(workdir / "samples" / "step_000002.png")))
    rows, gap = 4, grids.GRID_GAP
    assert grid.shape == (rows * 64 + (rows - 1) * gap, 3 * 128 + 2 * gap, 3)
    eval_events = _events(str(workdir / "eval"))
    assert {"val/l1", "val/psnr", "val/ssim"} <= set(eval_events.Tags()["tensors"])
    # No 64x128 segmenter here: skipped, naming the command that trains one.
    assert "--image_size 64x128" in capsys.readouterr().out


def _variables(path):
    reader = tf.train.load_checkpoint(path)
    shapes = reader.get_variable_to_dtype_map()
    return {
        name: reader.get_tensor(name)
        for name, dtype in shapes.items()
        # save_counter counts saves, which an interrupted run makes more of.
        if (dtype.is_floating or dtype.is_integer) and not name.startswith("save_counter")
    }


@pytest.fixture
def op_determinism():
    """Lets a test turn op determinism on (process-wide) and turns it off after."""
    yield
    # TensorFlow exports only the switch on; the switch off is in its framework.
    from tensorflow.python.framework import config as framework_config

    framework_config.disable_op_determinism()


def test_resume_continues_exactly_like_an_uninterrupted_run(
    tiny_data, tmp_path, monkeypatch, op_determinism
):
    steps, stop_at = 4, 2
    config = _tiny(
        data_dir=tiny_data,
        deterministic=True,
        steps=steps,
        batch_size=2,
        image_every=100,
        checkpoint_every=100,
    )
    straight = training.train(config.replace(workdir=str(tmp_path / "straight")))

    # Interrupt the second run after step 2 with a real SIGTERM, then rerun it.
    write_scalars = summaries.write_scalars

    def interrupt(writer, scalars, step):
        write_scalars(writer, scalars, step)
        if step == stop_at:
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(summaries, "write_scalars", interrupt)
    resumed_dir = str(tmp_path / "resumed")
    first = training.train(config.replace(workdir=resumed_dir))
    assert first["interrupted"] == signal.SIGTERM and first["step"] == stop_at
    assert tf.train.latest_checkpoint(resumed_dir).endswith(f"ckpt-{stop_at}")
    monkeypatch.setattr(summaries, "write_scalars", write_scalars)
    resumed = training.train(config.replace(workdir=resumed_dir))
    assert resumed["step"] == steps and resumed["interrupted"] is None

    expected = _variables(straight["checkpoint"])
    actual = _variables(resumed["checkpoint"])
    assert sorted(actual) == sorted(expected)
    assert actual[run_dir.STEP_KEY] == steps
    iterations = [
        name for name in expected if name.endswith("_iterations/.ATTRIBUTES/VARIABLE_VALUE")
    ]
    assert iterations and all(actual[name] == steps for name in iterations)
    for name, value in expected.items():
        np.testing.assert_allclose(actual[name], value, rtol=1e-6, atol=1e-7, err_msg=name)
    learning_rates = [
        tf.make_ndarray(event.tensor_proto)
        for event in _events(os.path.join(resumed_dir, "train")).Tensors("learning_rate")
    ]
    # Each step's rate was logged once; the decay covers the last 2 of 4 steps.
    schedule = step_lib.LinearDecay(2e-4, total_steps=steps, decay_steps=2)
    expected_rates = [float(schedule(step)) for step in range(steps)]
    np.testing.assert_allclose(learning_rates, expected_rates, rtol=1e-6)


def test_non_finite_loss_stops_without_saving(tiny_data, tmp_path, monkeypatch):
    from pix2pix_tf.data import pipeline as input_pipeline

    build_dataset = input_pipeline.build_dataset

    def poisoned(prepared, split, *, training, **kwargs):
        dataset = build_dataset(prepared, split, training=training, **kwargs)
        if not training:
            return dataset

        def poison(index, batch):
            inputs, targets = batch
            return tf.where(index == 2, np.nan, inputs), targets

        return dataset.enumerate().map(poison)

    monkeypatch.setattr(input_pipeline, "build_dataset", poisoned)
    workdir = tmp_path / "run"
    config = _tiny(data_dir=tiny_data, workdir=str(workdir), steps=5)
    with pytest.raises(controller.NonFiniteLossError, match="non-finite loss at step 3") as error:
        training.train(config)
    assert "ckpt-2" in str(error.value)
    assert tf.train.latest_checkpoint(str(workdir)) == str(workdir / "ckpt-2")
    assert not (workdir / "ckpt-3.index").exists()


def test_tutorial_arch_with_lsgan_and_instance_norm_trains():
    config = _tiny(arch="tutorial", gan_mode="lsgan", norm="instance", batch_size=2)
    state = step_lib.build_train_state(config, total_steps=10)
    train_step = step_lib.make_train_step(config, state)
    values = [train_step(*_batch(config)) for _ in range(3)][-1]
    assert all(np.isfinite(value.numpy()) for value in values.values())
    # Least squares on logits starting near 0: each term is near 1 (real) or 0 (fake).
    assert 0.0 < float(values["disc"]) < 3.0


# ---------------------------------------------------------------------------
# Several steps per call (--steps_per_execution) and XLA (--jit_compile).
# ---------------------------------------------------------------------------


class _Recorder(controller.Action):
    """An action that records the steps it ran at."""

    def __init__(self, interval, on_call=None):
        self.interval = interval
        self.steps = []
        self.recorded = 0
        self.on_call = on_call

    def record(self, losses):
        self.recorded += len(losses)

    def __call__(self, step):
        self.steps.append(step)
        if self.on_call is not None:
            self.on_call(step)


class _Checkpoints(_Recorder):
    saved_step = None
    latest = None

    def __call__(self, step):
        super().__call__(step)
        self.saved_step, self.latest = step, f"ckpt-{step}"


def _controller(actions, checkpoint, losses=None, total_steps=20, steps_per_execution=4):
    """A controller over a fake train step that returns `losses(step)` (zeros by default)."""
    calls, position = [], [0]

    def train_steps(iterator, count):
        calls.append(count)
        values = [losses(position[0] + offset + 1) if losses else 0.0 for offset in range(count)]
        position[0] += count
        return {name: tf.constant(values, tf.float32) for name in LOSS_NAMES}

    progress = controller.Progress(total_steps, 0, stateful_metrics=list(LOSS_NAMES))
    progress.bar.verbose = 0
    run = controller.Controller(
        train_steps,
        None,
        start=0,
        total_steps=total_steps,
        steps_per_execution=steps_per_execution,
        actions=actions,
        checkpoint=checkpoint,
        progress=progress,
    )
    return run, calls


def test_controller_runs_each_action_exactly_on_its_steps_and_the_last():
    scalars, samples, evaluation = _Recorder(5), _Recorder(6), _Recorder(0)
    checkpoints = _Checkpoints(10)
    run, calls = _controller([scalars, samples, evaluation], checkpoints, total_steps=21)
    assert run.run() == (21, None)
    assert scalars.steps == [5, 10, 15, 20, 21]
    assert samples.steps == [6, 12, 18, 21]
    assert evaluation.steps == []  # Interval 0: never, not even at the end.
    assert checkpoints.steps == [10, 20, 21]
    # No call runs past a due step, none runs more than --steps_per_execution.
    assert all(1 <= count <= 4 for count in calls) and sum(calls) == 21
    assert scalars.recorded == 21


def test_controller_saves_the_step_a_stop_request_ended_on():
    def stop(step):
        if step == 6:
            signal.raise_signal(signal.SIGTERM)

    scalars, checkpoints = _Recorder(3, on_call=stop), _Checkpoints(10)
    run, _ = _controller([scalars], checkpoints)
    assert run.run() == (6, signal.SIGTERM)
    assert scalars.steps == [3, 6] and checkpoints.steps == [6]


def test_controller_stops_at_the_first_non_finite_loss_without_saving():
    scalars, checkpoints = _Recorder(2), _Checkpoints(4)
    run, _ = _controller([scalars], checkpoints, losses=lambda step: np.nan if step == 7 else 1.0)
    with pytest.raises(controller.NonFiniteLossError, match="at step 7") as error:
        run.run()
    assert "gen_total=nan" in str(error.value) and "(ckpt-4)" in str(error.value)
    assert checkpoints.steps == [4] and scalars.steps == [2, 4, 6]


def test_train_loop_runs_several_steps_per_call_like_single_steps(op_determinism):
    tf.config.experimental.enable_op_determinism()
    config = _tiny(batch_size=2, dropout=0.0)
    batches = [_batch(config, seed=seed) for seed in range(5)]
    results = []
    for steps_per_execution in (1, 3):
        keras.utils.set_random_seed(3)
        run_config = config.replace(steps_per_execution=steps_per_execution)
        state = step_lib.build_train_state(run_config, total_steps=10)
        train_steps = step_lib.make_train_loop(run_config, state)
        iterator = iter(tf.data.Dataset.from_tensor_slices(_stack(batches)))
        losses = [train_steps(iterator, 3), train_steps(iterator, 2)]
        assert [value["gen_l1"].shape for value in losses] == [(3,), (2,)]
        assert int(state.step.numpy()) == 5
        assert int(state.generator_optimizer.iterations.numpy()) == 5
        weights = [w.numpy() for w in state.generator.weights + state.discriminator.weights]
        results.append((np.concatenate([v["gen_total"] for v in losses]), weights))
    (losses_1, weights_1), (losses_3, weights_3) = results
    np.testing.assert_allclose(losses_3, losses_1, rtol=1e-5)
    for actual, expected in zip(weights_3, weights_1, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def _stack(batches):
    inputs, targets = zip(*batches, strict=True)
    return tf.stack(inputs), tf.stack(targets)


def test_jit_compiled_train_step_matches_the_plain_one():
    config = _tiny(batch_size=2, dropout=0.0)
    values = []
    for jit_compile in (False, True):
        keras.utils.set_random_seed(4)
        run_config = config.replace(jit_compile=jit_compile)
        state = step_lib.build_train_state(run_config, total_steps=10)
        train_step = step_lib.make_train_step(run_config, state)
        values.append([float(train_step(*_batch(config))["gen_total"]) for _ in range(2)])
    np.testing.assert_allclose(values[1], values[0], rtol=1e-3)


def test_fused_adam_matches_keras_adam():
    from pix2pix_tf.training.optimizers import FusedAdam

    initial = np.random.default_rng(0).normal(size=[64]).astype(np.float32)
    variables = [keras.Variable(initial), keras.Variable(initial)]
    optimizers = [keras.optimizers.Adam(1e-2, beta_1=0.5), FusedAdam(1e-2, beta_1=0.5)]
    for step in range(5):
        gradient = tf.constant(np.random.default_rng(step).normal(size=[64]).astype(np.float32))
        for optimizer, variable in zip(optimizers, variables, strict=True):
            optimizer.apply_gradients([(gradient, variable)])
    np.testing.assert_allclose(variables[1].numpy(), variables[0].numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(variables[0].numpy(), initial)


def test_run_with_steps_per_execution_logs_and_checkpoints_on_every_boundary(
    tiny_data, tmp_path, op_determinism
):
    common = dict(
        data_dir=tiny_data,
        deterministic=True,
        steps=5,
        batch_size=2,
        log_every=2,
        image_every=100,
        checkpoint_every=2,
    )
    single = training.train(_tiny(**common, workdir=str(tmp_path / "single")))
    workdir = tmp_path / "multi"
    multi = training.train(_tiny(**common, steps_per_execution=4, workdir=str(workdir)))
    assert multi["step"] == 5
    assert sorted(
        os.path.basename(p)
        for p in tf.train.get_checkpoint_state(str(workdir)).all_model_checkpoint_paths
    ) == ["ckpt-2", "ckpt-4", "ckpt-5"]
    logged = [event.step for event in _events(str(workdir / "train")).Tensors("losses/gen_l1")]
    assert logged == [2, 4, 5]
    expected, actual = _variables(single["checkpoint"]), _variables(multi["checkpoint"])
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(actual[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_progress_bar_in_a_log_redraws_at_intervals_not_every_update(capsys):
    """stdout is captured (not a terminal): the bar is drawn at the end, not per update."""
    bar = progress.Progbar(50)
    assert bar.interval == progress.LOG_INTERVAL
    for step in range(50):
        time.sleep(0.004)  # 0.2 s in all: Keras' default 0.05 s interval would redraw.
        bar.update(step + 1)
    output = capsys.readouterr().out
    assert output.count("50/50") == 1
    assert output.count("/50") <= 2  # The first update, and the last.
