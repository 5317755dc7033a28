"""--remat recomputes segments (models/remat.py): the same losses, weights, batch-norm
statistics, dropout masks and checkpoints as without it."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT
from norm_helpers import assert_weights_close, normalised_away

from pix2pix_tf import configs as config_lib
from pix2pix_tf import models
from pix2pix_tf.models import remat as remat_lib
from pix2pix_tf.training import step as step_lib

OLD_CHECKPOINT = os.path.join(REPO_ROOT, "tests", "fixtures", "run_e4fba66", "ckpt-2")


def _train(remat, steps=3, **overrides):
    keras.utils.set_random_seed(0)
    config = config_lib.build_config(preset="tiny", remat=remat, **overrides)
    state = step_lib.build_train_state(config, total_steps=10)
    train_step = step_lib.make_train_step(config, state)
    for seed in range(steps):
        inputs = tf.random.stateless_uniform([1, 64, 64, 3], [seed, 1], -1, 1)
        losses = train_step(inputs, tf.tanh(2.0 * inputs[..., ::-1]))
    return state, {name: float(value) for name, value in losses.items()}


CASES = [
    {"generator": "unet", "norm": "batch", "dropout": 0.5},
    {"generator": "unet", "norm": "instance", "dropout": 0.5},
    {"generator": "resnet", "norm": "batch", "dropout": 0.5, "ngf": 4, "resnet_blocks": 4},
    {"generator": "resnet", "norm": "instance", "dropout": 0.5, "ngf": 4, "resnet_blocks": 4},
    {"generator": "global_local", "norm": "batch", "ngf": 4, "resnet_blocks": 4},
    {"generator": "global_local", "norm": "instance", "ngf": 4, "resnet_blocks": 1},
    # pix2pixHD's objective: the discriminators' features are matched, and recomputed.
    {"generator": "unet", "norm": "batch", "num_discriminators": 2, "lambda_feature_matching": 10},
]


@pytest.mark.parametrize("overrides", CASES, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_segments_give_the_same_losses_weights_and_statistics(overrides):
    (plain_state, plain_losses), (remat_state, remat_losses) = (
        _train(r, **overrides) for r in (False, True)
    )
    plain, remat = plain_state.generator, remat_state.generator
    assert isinstance(remat, remat_lib.SegmentedModel)
    assert not isinstance(plain, remat_lib.SegmentedModel)
    assert plain_losses == pytest.approx(remat_losses, rel=1e-5)
    # Every variable with its path: weights, batch norm's moving statistics (updated
    # once per step, not again by the recomputation) and the dropout seed generators'
    # states (each mask drawn once, as without --remat).
    assert [w.path for w in plain.weights] == [w.path for w in remat.weights]
    # Biases an instance norm removes (and the unused global output layer) have no
    # gradient but rounding noise; the tiny global stage's 2x2 maps make some elements so.
    irrelevant = normalised_away(plain, tf.random.stateless_uniform([1, 64, 64, 3], [9, 1], -1, 1))
    tiny_global = overrides["generator"] == "global_local" and overrides["norm"] == "instance"
    noisy = 1e-4 if tiny_global else 0
    moving = 0
    for a, b in zip(plain.weights, remat.weights, strict=True):
        if a.path in irrelevant:
            continue
        assert_weights_close(a.numpy(), b.numpy(), a.path, learning_rate=2e-4, steps=3, noisy=noisy)
        if "moving_mean" in a.path:
            moving += 1
            assert not np.allclose(a.numpy(), 0.0), a.path  # The statistics did move.
    assert moving > 0 or overrides["norm"] == "instance"
    # The discriminators, recomputed per layer, too.
    plain, remat = plain_state.discriminator, remat_state.discriminator
    assert [w.path for w in plain.weights] == [w.path for w in remat.weights]
    for a, b in zip(plain.weights, remat.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=a.path)


@pytest.mark.parametrize("generator", ["unet", "resnet", "global_local"])
def test_segments_group_several_layers(generator):
    sizes = {"unet": {"depth": 6}, "resnet": {}, "global_local": {}}[generator]
    model = models.build_generator(
        generator=generator,
        remat=True,
        image_hw=(64, 64),
        in_channels=3,
        out_channels=3,
        ngf=4,
        **sizes,
    )
    segments = model.segments
    groups = {}
    for layer, segment in segments.items():
        groups.setdefault(segment, []).append(layer)
    assert len(groups) >= 6 and all(len(layers) >= 2 for layers in groups.values())
    if generator == "unet":
        # A decoder level recomputes the concatenation that feeds it.
        assert segments["decoder_1_skip"] == "decoder_2"
        assert segments["encoder_2_conv"] == segments["encoder_2_lrelu"] == "encoder_2"
    else:
        prefix = "global_" if generator == "global_local" else ""
        residual = [layer for layer in groups if "residual_group" in layer]
        assert segments[f"{prefix}residual_1"] == segments[f"{prefix}residual_3"]
        assert segments[f"{prefix}residual_4"] != segments[f"{prefix}residual_3"]
        assert len(residual) >= 3


def test_segments_keep_the_checkpoint_layout(tmp_path):
    """A checkpoint written without --remat restores into the segmented model, and the
    checkpoint each writes names the same variables."""
    config = config_lib.build_config(preset="tiny", ngf=4, ndf=4)
    arguments = config_lib.generator_arguments(config)
    arguments.pop("remat")
    plain = models.build_generator(**arguments, remat=False)
    remat = models.build_generator(**arguments, remat=True)
    status = tf.train.Checkpoint(generator=remat).restore(OLD_CHECKPOINT).expect_partial()
    status.assert_existing_objects_matched()
    tf.train.Checkpoint(generator=plain).restore(OLD_CHECKPOINT).expect_partial()
    images = tf.random.stateless_uniform([1, 64, 64, 3], [0, 1], -1, 1)
    np.testing.assert_array_equal(plain(images).numpy(), remat(images).numpy())
    written = []
    for model in (plain, remat):
        path = tf.train.Checkpoint(generator=model).write(str(tmp_path / model.name))
        written.append(sorted(name for name, _ in tf.train.list_variables(path)))
    assert written[0] == written[1]


def _waits_through_control_edges(tensor):
    """The types of the ops `tensor` waits for through a control dependency in its graph."""
    seen, stack, controls = set(), [tensor.op], []
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
        controls.extend(op.control_inputs)
    types, stack, seen = set(), list(controls), set()
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        types.add(op.type)
        stack.extend(t.op for t in op.inputs)
    return types


def test_recompute_grad_matches_tensorflows_and_finishes_a_segment_first():
    """remat_lib.recompute_grad gives tf.recompute_grad's gradients, recomputes in the
    backward pass, and the gradient it passes on waits for its variables' gradients
    through a control dependency (TensorFlow's returns all its gradients through one
    IdentityN, which did not hold that order in a profiled step: models/remat.py)."""
    kernel = tf.Variable(tf.random.stateless_normal([3, 3, 2, 4], [0, 1]))
    images = tf.random.stateless_normal([2, 8, 8, 2], [0, 2])
    calls = []

    def segment(x):
        calls.append(1)
        return tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME"))

    def gradients(function):
        with tf.GradientTape() as tape:
            tape.watch(images)
            loss = tf.reduce_sum(tf.square(function(images)))
        return tape.gradient(loss, [images, kernel])

    plain = gradients(segment)
    calls.clear()
    eager = gradients(remat_lib.recompute_grad(segment))
    assert len(calls) == 2  # Forward, then recomputed in the backward pass.
    graphs = {}
    for name, wrap in (("ours", remat_lib.recompute_grad), ("tensorflow", tf.recompute_grad)):
        function = tf.function(lambda wrap=wrap: gradients(wrap(segment)))
        graph = function.get_concrete_function().graph
        graphs[name] = _waits_through_control_edges(graph.outputs[0])
        for a, b in zip(plain, function(), strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)
    for a, b in zip(plain, eager, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)
    assert "Conv2DBackpropFilter" in graphs["ours"]
    assert "Conv2DBackpropFilter" not in graphs["tensorflow"]
