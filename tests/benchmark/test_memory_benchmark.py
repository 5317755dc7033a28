"""The memory benchmark runs both variants on a tiny config, and the analytic count is right
by hand (no timing assertions)."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from norm_helpers import normalised_away

from pix2pix_tf import configs as config_lib
from pix2pix_tf.benchmark import memory_benchmark, memory_estimate
from pix2pix_tf.models import resnet
from pix2pix_tf.training import step as step_lib


def test_memory_benchmark_prints_both_variants_and_the_estimate(capsys):
    # 128x128: the activations are tensors of 256 KiB and more, which the allocator counts.
    argv = ["--preset", "tiny", "--generator", "resnet", "--ngf", "8", "--resnet_blocks", "1"]
    argv += ["--image_size", "128"]
    argv += ["--rounds", "2", "--steps_per_round", "1", "--warmup_steps", "1", "--json"]
    assert memory_benchmark.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary["variants"]) == {"plain", "remat"}
    assert summary["generator"] == "resnet" and summary["image_size"] == 128
    for row in summary["variants"].values():
        assert row["peak_rss_mb"] > 0 and row["ms_per_step"] > 0
        assert len(row["rounds_ms_per_step"]) == 2  # Both variants ran every round.
    plain, remat = summary["variants"]["plain"], summary["variants"]["remat"]
    assert summary["memory_ratio"] == pytest.approx(remat["peak_rss_mb"] / plain["peak_rss_mb"])
    # Each peak split into its parts (TensorFlow's CPU allocator statistics), which add up.
    parts = ("runtime_mb", "built_tensor_mb", "step_tensor_mb", "untracked_mb")
    for row in (plain, remat):
        assert row["runtime_mb"] > 100  # The TensorFlow runtime is resident.
        assert row["built_tensor_mb"] >= 0 and row["step_tensor_mb"] > 0
        assert sum(row[part] for part in parts) == pytest.approx(row["peak_rss_mb"])
    assert summary["step_tensor_ratio"] == pytest.approx(
        remat["step_tensor_mb"] / plain["step_tensor_mb"]
    )
    estimate = summary["estimate"]
    assert estimate["generator"] == "resnet" and estimate["policy"] == plain["policy"]
    assert 0 < estimate["generator_activations_gib"] < estimate["total_gib"]


def test_composition_of_a_peak_by_hand():
    memory = {"peak_rss_mb": 3000.0, "built_rss_mb": 1500.0}
    memory.update(built_tensor_mb=900.0, peak_tensor_mb=1600.0)
    assert memory_benchmark.composition(memory) == {
        "runtime_mb": 600.0,
        "built_tensor_mb": 900.0,
        "step_tensor_mb": 700.0,
        "untracked_mb": 800.0,
    }
    # Without the allocator's statistics only the resident memory after building is known.
    assert memory_benchmark.composition({"peak_rss_mb": 3000.0, "built_rss_mb": 1500.0}) == {
        "built_rss_mb": 1500.0
    }


def test_refuses_the_flags_it_sets_itself():
    with pytest.raises(SystemExit) as error:
        memory_benchmark.parse_args(["--preset", "tiny", "--remat"])
    assert error.value.code == 2
    with pytest.raises(SystemExit):
        memory_benchmark.parse_args(["--generator", "resnet", "--image_size", "66"])


def test_activation_bytes_by_hand():
    inputs = keras.Input(shape=(8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", dtype="mixed_bfloat16")(inputs)  # 8x8x4 bf16
    x = resnet.ResidualBlock(4, "instance", dropout=0.5, dtype="mixed_bfloat16")(x)
    x = keras.layers.Activation("tanh", dtype="float32")(x)  # 8x8x4 float32
    model = keras.Model(inputs, x)
    block = 2 * 10 * 10 * 4 * 2 + 7 * 8 * 8 * 4 * 2  # Two padded inputs, seven tensors.
    assert memory_estimate.activation_bytes(model) == 8 * 8 * 4 * 2 + block + 8 * 8 * 4 * 4


def test_estimate_counts_the_global_stage_at_half_size():
    small = {"generator": "global_local", "ngf": 4, "resnet_blocks": 1}
    joint = config_lib.build_config(preset="tiny", **small)
    stage = config_lib.build_config(preset="tiny", stage="global", **small)
    full, half = (memory_estimate.estimate(c, "float32") for c in (joint, stage))
    assert full["parameters"] == half["parameters"]  # One checkpoint for every stage.
    assert half["generator_activations_gib"] < full["generator_activations_gib"]
    # The discriminator sees half-size pairs: a quarter of the pixels.
    ratio = half["discriminator_activations_gib"] / full["discriminator_activations_gib"]
    assert ratio == pytest.approx(0.25, rel=0.15)


def test_block_remat_of_residual_blocks_gives_the_same_losses_and_weights():
    """--remat with instance norm recomputes whole residual blocks, dropout mask drawn once."""
    results = []
    for remat in (False, True):
        keras.utils.set_random_seed(0)
        config = config_lib.build_config(
            preset="tiny",
            generator="resnet",
            norm="instance",
            dropout=0.5,
            ngf=4,
            resnet_blocks=2,
            remat=remat,
        )
        state = step_lib.build_train_state(config, total_steps=10)
        train_step = step_lib.make_train_step(config, state)
        for seed in range(2):
            inputs = tf.random.stateless_uniform([1, 64, 64, 3], [seed, 1], -1, 1)
            losses = train_step(inputs, tf.tanh(2.0 * inputs[..., ::-1]))
        weights = [weight.numpy() for weight in state.generator.weights]
        results.append(({name: float(value) for name, value in losses.items()}, weights))
    (plain, plain_weights), (remat, remat_weights) = results
    assert plain == pytest.approx(remat, rel=1e-5)
    # The biases an instance norm removes have rounding noise for a gradient.
    irrelevant = normalised_away(
        state.generator, tf.random.stateless_uniform([1, 64, 64, 3], [9, 1], -1, 1)
    )
    paths = [weight.path for weight in state.generator.weights]
    for path, a, b in zip(paths, plain_weights, remat_weights, strict=True):
        if path not in irrelevant:
            np.testing.assert_allclose(a, b, atol=1e-5, err_msg=path)
