"""--generator resnet|global_local: training, restoring, staged training, --remat and export."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from norm_helpers import normalised_away

from pix2pix_tf import configs as config_lib
from pix2pix_tf import models
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.serving import export as export_lib
from pix2pix_tf.serving import sizes
from pix2pix_tf.training import step as step_lib
from pix2pix_tf.training import trainer as training

# Small enough for CPU tests: 4 filters, one residual block in the global network.
SMALL = {"resnet": {"ngf": 4, "resnet_blocks": 2}, "global_local": {"ngf": 4, "resnet_blocks": 1}}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfrecords"))


def _config(generator, workdir, data_dir, **overrides):
    return config_lib.build_config(
        preset="tiny",
        generator=generator,
        workdir=str(workdir),
        data_dir=data_dir,
        **{**SMALL.get(generator, {}), **overrides},
    )


def _batch(seed=0):
    coarse = tf.random.stateless_uniform([1, 8, 8, 3], seed=[seed, 1], minval=-1, maxval=1)
    inputs = tf.image.resize(coarse, [64, 64], method="bilinear")
    return inputs, tf.tanh(2.0 * inputs[..., ::-1])


@pytest.mark.parametrize("discriminators", [1, 3])
@pytest.mark.parametrize("generator", ["unet", "resnet", "global_local"])
def test_generator_trains_two_steps_and_restores(generator, discriminators, tmp_path, data_dir):
    # Each generator with the single PatchGAN, and with pix2pixHD's three discriminators
    # and feature matching (64, 32 and 16 pixels for --discriminator_layers 2).
    hd = {"num_discriminators": 3, "lambda_feature_matching": 10.0, "gan_mode": "lsgan"}
    config = _config(generator, tmp_path, data_dir, **(hd if discriminators == 3 else {}))
    result = training.train(config)
    assert result["step"] == 2 and np.isfinite(result["gen_total"])
    # Rerun with one more step: generator, discriminators and optimizers restore.
    resumed = training.train(config.replace(steps=3))
    assert resumed["step"] == 3 and np.isfinite(resumed["gen_total"])
    restored_config, restored, _ = run_dir.restore_generator(str(tmp_path))
    assert restored_config.model.generator == generator
    rebuilt = models.build_generator(**config_lib.generator_arguments(config))
    tf.train.Checkpoint(generator=rebuilt).restore(resumed["checkpoint"]).expect_partial()
    images = _batch()[0]
    np.testing.assert_array_equal(restored(images).numpy(), rebuilt(images).numpy())
    assert result["checkpoint"].endswith("ckpt-2")
    assert resumed["checkpoint"].endswith("ckpt-3")


def test_generators_keep_their_size_and_shapes():
    for generator, multiple in (("unet", 16), ("resnet", 4), ("global_local", 32)):
        config = config_lib.build_config(
            preset="tiny", generator=generator, **SMALL.get(generator, {})
        )
        assert models.pad_multiple(**config_lib.pad_multiple_arguments(config)) == multiple
        model = models.build_generator(
            **config_lib.generator_arguments(config), input_shape=(None, None, 3)
        )
        assert model(tf.zeros([1, 64, 96, 3])).shape == (1, 64, 96, 3)
    resnet_config = config_lib.build_config(preset="tiny", generator="resnet")
    resnet = models.build_generator(**config_lib.generator_arguments(resnet_config))
    # c7s1-8, d16, d32, 9 residual blocks of 32, u16, u8, c7s1-3 (batch norm: no biases).
    assert resnet.get_layer("residual_9").output.shape == (None, 16, 16, 32)
    assert resnet.get_layer("up_2_deconv").output.shape == (None, 64, 64, 8)


@pytest.mark.parametrize(
    ("generator", "size", "match"),
    [
        ("resnet", "66", r"--image_size 66: --generator resnet needs each side a multiple of 4"),
        ("global_local", "48x64", r"multiple of 32 and at least 64; nearest valid sizes: 64"),
    ],
)
def test_wrong_sizes_give_one_clear_error(generator, size, match):
    with pytest.raises(ValueError, match=match):
        config_lib.build_config(preset="tiny", generator=generator, image_size=size)


def test_stage_needs_global_local():
    with pytest.raises(ValueError, match="--stage local needs --generator global_local"):
        config_lib.build_config(preset="tiny", stage="local")


def _global_and_local(generator):
    """Trainable weights by part (batch-norm statistics move in any training-mode call)."""
    weights = {}
    for layer in generator.layers:
        key = "global" if layer.name.startswith("global_") else "local"
        weights.setdefault(key, []).extend(w.numpy().copy() for w in layer.trainable_weights)
    return weights


def _same(before, after):
    return all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_staged_global_local_resumes_across_global_local_joint(tmp_path, data_dir):
    """pix2pixHD's three stages on one run directory, each resuming from the previous."""
    config = _config("global_local", tmp_path, data_dir, stage="global")
    assert training.train(config)["step"] == 2
    _, first, _ = run_dir.restore_generator(str(tmp_path))
    # The global stage's model shows the global network's image, upsampled.
    stage = config_lib.stage_arguments(config)
    global_image = models.generator_pass(first, *_batch(), training=False, **stage)[0]
    assert global_image.shape == (1, 32, 32, 3)
    upsampled = keras.layers.UpSampling2D(2, interpolation="bilinear")(global_image)
    np.testing.assert_allclose(first(_batch()[0]).numpy(), upsampled.numpy(), atol=1e-6)

    result = training.train(config.replace(stage="local", steps=4))
    assert result["step"] == 4
    _, second, _ = run_dir.restore_generator(str(tmp_path))
    before, after = _global_and_local(first), _global_and_local(second)
    assert _same(before["global"], after["global"])  # Frozen in the local stage.
    assert not _same(before["local"], after["local"])

    result = training.train(config.replace(stage="joint", steps=6))
    assert result["step"] == 6
    _, third, _ = run_dir.restore_generator(str(tmp_path))
    assert not _same(after["global"], _global_and_local(third)["global"])
    assert third(_batch()[0]).shape == (1, 64, 64, 3)


def test_local_stage_first_is_refused_and_writes_nothing(tmp_path, data_dir):
    """A new run's global network is untrained; freezing it for the local stage would
    waste the stage, so the error says which stage to run first."""
    config = _config("global_local", tmp_path / "run", data_dir, stage="local")
    with pytest.raises(ValueError, match="--stage local: .* has no checkpoint") as raised:
        training.train(config)
    assert "run --stage global first" in str(raised.value) and "\n" not in str(raised.value)
    assert not os.path.exists(tmp_path / "run" / "config.json")
    # The documented order still works from there.
    assert training.train(config.replace(stage="global"))["step"] == 2
    assert training.train(config.replace(stage="local", steps=4))["step"] == 4


def test_global_stage_trains_only_the_global_network():
    config = config_lib.build_config(
        preset="tiny", generator="global_local", stage="global", **SMALL["global_local"]
    )
    state = step_lib.build_train_state(config, total_steps=10)
    before = _global_and_local(state.generator)
    step_lib.make_train_step(config, state)(*_batch())
    after = _global_and_local(state.generator)
    assert _same(before["local"], after["local"]) and not _same(before["global"], after["global"])


@pytest.mark.parametrize(
    "overrides",
    [
        {"generator": "unet"},
        {"generator": "resnet", **SMALL["resnet"]},
        {"generator": "global_local", "norm": "instance", **SMALL["global_local"]},
    ],
)
def test_remat_gives_the_same_losses_and_weights(overrides):
    results = []
    for remat in (False, True):
        keras.utils.set_random_seed(0)
        config = config_lib.build_config(preset="tiny", remat=remat, **overrides)
        state = step_lib.build_train_state(config, total_steps=10)
        train_step = step_lib.make_train_step(config, state)
        losses = [train_step(*_batch(seed)) for seed in range(2)]
        weights = [weight.numpy() for weight in state.generator.weights]
        results.append(({name: float(value) for name, value in losses[-1].items()}, weights))
    (plain, plain_weights), (remat, remat_weights) = results
    assert plain == pytest.approx(remat, rel=1e-5)
    irrelevant = normalised_away(state.generator, _batch(9)[0])
    paths = [weight.path for weight in state.generator.weights]
    for path, a, b in zip(paths, plain_weights, remat_weights, strict=True):
        if path not in irrelevant:
            np.testing.assert_allclose(a, b, atol=1e-5, err_msg=path)


@pytest.mark.parametrize("generator", ["resnet", "global_local"])
def test_export_serves_an_odd_sized_image_at_its_own_size(generator, tmp_path, data_dir):
    config = _config(generator, tmp_path / "run", data_dir, steps=1)
    training.train(config)
    export_dir = export_lib.export(str(tmp_path / "run"), str(tmp_path / "export"), warmup=False)
    loaded = tf.saved_model.load(export_dir)
    height, width = 70, 101  # Odd, and not a multiple of either generator's.
    pixels = tf.random.stateless_uniform(
        [height, width, 3], seed=[3, 4], maxval=256, dtype=tf.int32
    )
    data = tf.io.encode_png(tf.cast(pixels, tf.uint8))
    served = loaded.signatures["serving_default"](image_bytes=tf.reshape(data, [1]))
    output = tf.io.decode_png(served["image_bytes"][0]).numpy().astype(np.float32)
    assert output.shape == (height, width, 3)
    multiple = models.pad_multiple(**config_lib.pad_multiple_arguments(config))
    padded = sizes.reflect_pad(tf.cast(pixels, tf.float32) / 127.5 - 1.0, multiple)
    generated = loaded.signatures["generate"](images=padded[None])["images"][0]
    expected = np.clip(np.round((generated.numpy()[:height, :width] + 1.0) * 127.5), 0, 255)
    assert np.abs(output - expected).max() <= 1.0
    _, restored, _ = run_dir.restore_generator(str(tmp_path / "run"))
    native = models.build_generator(
        **config_lib.generator_arguments(config), input_shape=(None, None, 3)
    )
    native.set_weights(restored.get_weights())
    np.testing.assert_allclose(generated.numpy(), native(padded[None]).numpy()[0], atol=1e-5)
    assert os.path.exists(os.path.join(export_dir, export_lib.METADATA_FILE))
