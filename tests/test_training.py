"""Train step, schedule, precision and checkpoints on in-memory tensors."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from pix2pix_tf import checkpointing, precision, summaries, training
from pix2pix_tf import config as config_lib
from pix2pix_tf.models import build_generator


def _tiny(**overrides):
    return config_lib.build_config(preset="tiny", **overrides)


def _batch(config, seed=0):
    """A fixed batch of smooth images; the target is a pixelwise function of the input."""
    size, batch = config.data.image_size, config.train.batch_size
    coarse = tf.random.stateless_uniform([batch, 8, 8, 3], seed=[seed, 1], minval=-1, maxval=1)
    inputs = tf.image.resize(coarse, [size, size], method="bilinear")
    return inputs, tf.tanh(2.0 * inputs[..., ::-1])


def test_learning_rate_is_constant_then_decays_linearly_to_zero():
    schedule = training.LinearDecay(2e-4, total_steps=100, decay_steps=40)
    values = [float(schedule(step)) for step in (0, 59, 60, 80, 100, 120)]
    np.testing.assert_allclose(values, [2e-4, 2e-4, 2e-4, 1e-4, 0.0, 0.0], atol=1e-10)
    constant = training.LinearDecay(2e-4, total_steps=100, decay_steps=0)
    assert float(constant(100)) == pytest.approx(2e-4)
    restored = training.LinearDecay.from_config(schedule.get_config())
    assert float(restored(90)) == pytest.approx(float(schedule(90)))


def test_total_steps_from_epochs():
    config = _tiny(epochs=3, batch_size=4)
    assert training.total_steps(config, train_examples=18) == 12  # 3 x (18 // 4).
    assert training.total_steps(_tiny(steps=7), train_examples=18) == 7
    with pytest.raises(ValueError, match="--batch_size 4 is larger"):
        training.total_steps(config, train_examples=3)


def test_train_step_returns_the_four_losses_and_counts_steps():
    config = _tiny()
    state = training.build_train_state(config, total_steps=10)
    train_step = training.make_train_step(config, state)
    values = train_step(*_batch(config))
    assert sorted(values) == sorted(training.LOSS_NAMES)
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
    state = training.build_train_state(config, total_steps=1000)
    train_step = training.make_train_step(config, state)
    batch = _batch(config)
    l1 = [float(train_step(*batch)["gen_l1"]) for _ in range(40)]
    assert np.mean(l1[-5:]) < 0.6 * np.mean(l1[:3]), l1


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_train_step(policy):
    config = _tiny(precision=policy)
    state = training.build_train_state(config, total_steps=10)
    assert state.policy == policy
    is_scaled = isinstance(state.generator_optimizer, keras.optimizers.LossScaleOptimizer)
    assert is_scaled == (policy == "mixed_float16")
    assert state.generator.get_layer("encoder_2_conv").compute_dtype == policy.split("_")[1]
    train_step = training.make_train_step(config, state)
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
    state = training.build_train_state(config, total_steps=10)
    train_step = training.make_train_step(config, state)
    iterator = iter(tf.data.Dataset.from_tensors(_batch(config)).repeat())
    checkpoint = checkpointing.make_checkpoint(
        step=state.step,
        generator=state.generator,
        discriminator=state.discriminator,
        generator_optimizer=state.generator_optimizer,
        discriminator_optimizer=state.discriminator_optimizer,
        iterator=iterator,
    )
    for _ in range(steps):
        train_step(*next(iterator))
    manager = checkpointing.make_manager(checkpoint, str(workdir), 3)
    path = manager.save(checkpoint_number=steps)
    config.save(str(workdir))
    return config, state, path


def test_export_style_restore_gives_identical_outputs(tmp_path):
    config, state, path = _trained_run(tmp_path, _tiny())
    assert os.path.basename(path) == "ckpt-2"
    images = _batch(config, seed=5)[0]
    expected = state.generator(images, training=False)

    # Exactly what export does: rebuild from config.json, restore the generator only.
    rebuilt = build_generator(config_lib.Config.from_json(str(tmp_path / "config.json")))
    tf.train.Checkpoint(generator=rebuilt).restore(path).expect_partial()
    np.testing.assert_allclose(rebuilt(images, training=False), expected, rtol=1e-6, atol=1e-6)

    restored_config, generator = training.restore_generator(str(tmp_path))
    assert restored_config == config
    np.testing.assert_allclose(generator(images, training=False), expected, rtol=1e-6, atol=1e-6)
    _, generator = training.restore_generator(str(tmp_path), checkpoint_path=path)
    np.testing.assert_allclose(generator(images, training=False), expected, rtol=1e-6, atol=1e-6)


def test_restore_generator_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        training.restore_generator(str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        training.restore_generator(str(empty))
    _tiny().save(str(empty))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        training.restore_generator(str(empty))
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        training.restore_generator(str(empty), checkpoint_path=str(empty / "ckpt-9"))

    run = tmp_path / "run"
    _trained_run(run, _tiny())
    values = json.loads((run / "config.json").read_text())
    values["model"]["ngf"] = 16
    (run / "config.json").write_text(json.dumps(values))
    with pytest.raises(ValueError, match="does not hold the generator"):
        training.restore_generator(str(run))


def test_resume_check_names_the_incompatible_fields(tmp_path):
    config = _tiny(workdir=str(tmp_path))
    assert checkpointing.check_resume(str(tmp_path), config) is None
    config.save(str(tmp_path))
    changed_length = config.replace(steps=50, log_every=7, checkpoint_every=9)
    assert checkpointing.check_resume(str(tmp_path), changed_length) == config
    changed_model = config.replace(ngf=16, image_size=128, load_size=143, unet_depth=7)
    with pytest.raises(ValueError) as error:
        checkpointing.check_resume(str(tmp_path), changed_model)
    message = str(error.value)
    for field in ("--ngf (saved 8, now 16)", "--image_size", "--load_size", "--unet_depth"):
        assert field in message
    assert "--steps" not in message and "new --workdir" in message


def test_restoring_a_mismatched_training_checkpoint_is_a_clear_error(tmp_path):
    _, _, path = _trained_run(tmp_path, _tiny())
    other = _tiny(ndf=16)
    state = training.build_train_state(other, total_steps=10)
    checkpoint = checkpointing.make_checkpoint(
        step=state.step,
        generator=state.generator,
        discriminator=state.discriminator,
        generator_optimizer=state.generator_optimizer,
        discriminator_optimizer=state.discriminator_optimizer,
        iterator=iter(tf.data.Dataset.from_tensors(_batch(other)).repeat()),
    )
    with pytest.raises(ValueError, match="cannot resume from this checkpoint"):
        checkpointing.restore(checkpoint, path)


def test_dropout_seed_state_is_checkpointed():
    config = _tiny()
    generator = build_generator(config)
    states = checkpointing.seed_states(generator)
    assert len(states) == 3  # One per dropout layer.
    assert all("seed_generator_state" in state.path for state in states)


def test_sample_grid_layout():
    inputs = -np.ones([2, 8, 8, 3], np.float32)
    generated = np.zeros([2, 8, 8, 3], np.float32)
    targets = np.ones([2, 8, 8, 3], np.float32)
    grid = summaries.sample_grid(inputs, generated, targets)
    gap = summaries.GRID_GAP
    assert grid.shape == (2 * 8 + gap, 3 * 8 + 2 * gap, 3) and grid.dtype == np.uint8
    assert grid[0, 0, 0] == 0 and grid[0, 8 + gap, 0] == 128 and grid[0, -1, 0] == 255


def test_progress_bar_eta_counts_only_this_session():
    # A run resumed at step 900 that took 10 s for 10 steps runs at 1 s/step.
    bar = summaries.Progbar(1000, initial=900, verbose=0)
    bar._start = 100.0
    assert bar._estimate_step_duration(910, 110.0) == pytest.approx(1.0)
