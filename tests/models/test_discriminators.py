"""Multi-scale discriminators, feature matching and the pix2pixHD presets."""

import numpy as np
import pytest
import tensorflow as tf

import train as train_cli
from pix2pix_tf import configs as config_lib
from pix2pix_tf import models
from pix2pix_tf.cli import flags
from pix2pix_tf.models import blocks, losses, multiscale
from pix2pix_tf.models import discriminator as patchgan
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.runs import resume
from pix2pix_tf.training import step as step_lib
from pix2pix_tf.training import trainer as training
from pix2pix_tf.training.checkpoints import make_checkpoint


def _tiny(**overrides):
    return config_lib.build_config(preset="tiny", **overrides)


def _pairs(config, batch=2, seed=0):
    height, width = config_lib.image_hw(config.data)
    shape = [batch, height, width, 3]
    inputs = tf.random.stateless_uniform(shape, seed=[seed, 1], minval=-1, maxval=1)
    targets = tf.random.stateless_uniform(shape, seed=[seed, 2], minval=-1, maxval=1)
    return inputs, targets


@pytest.mark.parametrize("image_size", [64, "64x128"])
@pytest.mark.parametrize("count", [1, 2, 3])
def test_each_scale_has_the_patchgan_shapes_of_its_size(image_size, count):
    config = _tiny(image_size=image_size, num_discriminators=count, norm="instance")
    discriminator = models.build_discriminator(**config_lib.discriminator_arguments(config))
    height, width = config_lib.image_hw(config.data)
    sizes = multiscale.scale_sizes(config.data.image_size, count)
    assert sizes == [(height // 2**k, width // 2**k) for k in range(count)]
    logits = discriminator(_pairs(config))
    logits = logits if count > 1 else [logits]
    layers = config.model.discriminator_layers  # 2: 16x16 -> 2x2 logits.
    assert [tuple(grid.shape) for grid in logits] == [
        (2, *patchgan.output_hw(size, layers), 1) for size in sizes
    ]
    # One PatchGAN per scale, each the size of the single one.
    single = models.build_discriminator(
        **config_lib.discriminator_arguments(config.replace(num_discriminators=1))
    )
    assert discriminator.count_params() == count * single.count_params()

    outputs = models.with_features(discriminator)(_pairs(config))
    assert len(outputs) == count
    for scale, (size, scale_outputs) in enumerate(zip(sizes, outputs, strict=True)):
        # Features: layers 1..n strided (halving), layer n + 1 stride 1, then the logits.
        expected = [(size[0] // 2**i, size[1] // 2**i) for i in range(1, layers + 1)]
        expected += [(size[0] // 2**layers - 1, size[1] // 2**layers - 1)]
        expected += [patchgan.output_hw(size, layers)]
        assert [tuple(t.shape[1:3]) for t in scale_outputs] == expected, scale
        np.testing.assert_array_equal(scale_outputs[-1], logits[scale])


def test_one_discriminator_is_the_patchgan_layer_for_layer():
    config = _tiny()
    arguments = config_lib.discriminator_arguments(config)
    discriminator = models.build_discriminator(**arguments)
    # The PatchGAN's own arguments: all but the step's (generator, stage) and the scales'.
    for name in ("generator", "stage", "num_discriminators"):
        del arguments[name]
    reference = patchgan.build_patchgan(**arguments)
    assert discriminator.name == "discriminator"
    assert [layer.name for layer in discriminator.layers] == [
        layer.name for layer in reference.layers
    ]
    assert discriminator.count_params() == reference.count_params()
    features = patchgan.feature_layers(discriminator)
    assert [layer.name for layer in features] == ["layer_1_lrelu", "layer_2_lrelu", "layer_3_lrelu"]


def test_downsample_is_pytorchs_average_pool_without_padding_in_the_count():
    images = np.arange(2 * 5 * 6 * 2, dtype=np.float32).reshape(2, 5, 6, 2) ** 1.5
    # nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), by hand: output
    # (i, j) averages the rows 2i-1..2i+1 and columns 2j-1..2j+1 that exist.
    expected = np.zeros((2, 3, 3, 2), np.float32)
    for i in range(3):
        for j in range(3):
            rows = slice(max(2 * i - 1, 0), 2 * i + 2)
            columns = slice(max(2 * j - 1, 0), 2 * j + 2)
            expected[:, i, j] = images[:, rows, columns].mean(axis=(1, 2))
    result = blocks.Downsample()(tf.constant(images))
    np.testing.assert_allclose(result, expected, rtol=1e-6)


def test_feature_matching_is_zero_for_identical_features_and_a_hand_computation_else():
    ones = tf.ones([2, 4, 4, 3])
    real = [[ones, 2 * ones], [3 * tf.ones([2, 2, 2, 5])]]
    assert np.all(losses.feature_matching_loss(real, real).numpy() == 0.0)

    # Example 0 differs by 1 in scale 1's first map; example 1 also by 0.5 in scale 2's
    # map. Weights: 4 / (2 maps) / (2 scales) = 1 for scale 1, 4 / 1 / 2 = 2 for scale 2.
    shift = tf.reshape(tf.constant([0.0, 0.5]), [2, 1, 1, 1])
    fake = [[ones + 1.0, 2 * ones], [3 * tf.ones([2, 2, 2, 5]) + shift]]
    np.testing.assert_allclose(losses.feature_matching_loss(real, fake), [1.0, 1.0 + 2 * 0.5])

    # Only the generated pair's features get gradients (the real ones are constants).
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(real[0][0])
        tape.watch(fake[0][0])
        loss = tf.reduce_sum(losses.feature_matching_loss(real, fake))
    assert tape.gradient(loss, real[0][0]) is None
    assert float(tf.reduce_sum(tf.abs(tape.gradient(loss, fake[0][0])))) > 0


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_feature_matching_gradient_is_that_of_the_mean_absolute_difference(dtype):
    # The loss's backward pass recomputes sign(fake - real) instead of keeping the
    # difference; its gradients are those of the plain expression, ties (0) included.
    generator = tf.random.Generator.from_seed(3)
    real = [
        [
            tf.cast(generator.normal([2, 8, 8, 4]), dtype),
            tf.cast(generator.normal([2, 4, 4, 6]), dtype),
        ],
        [tf.cast(generator.normal([2, 4, 4, 4]), dtype)],
    ]
    fake = [[tf.cast(generator.normal(x.shape), dtype) for x in scale] for scale in real]
    fake[0][0] = tf.concat([real[0][0][:1], fake[0][0][1:]], axis=0)  # Example 0: all ties.
    weights = tf.constant([0.25, 2.0])

    def plain(real, fake):
        total = 0.0
        for real_scale, fake_scale in zip(real, fake, strict=True):
            for r, f in zip(real_scale, fake_scale, strict=True):
                difference = tf.abs(tf.cast(f, tf.float32) - tf.cast(r, tf.float32))
                total += 4.0 / len(fake_scale) / len(fake) * tf.reduce_mean(difference, [1, 2, 3])
        return total

    flat = [x for scale in fake for x in scale]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(flat)
        ours = losses.feature_matching_loss(real, fake)
        expected = plain(real, fake)
        ours_total, expected_total = (tf.reduce_sum(weights * x) for x in (ours, expected))
    np.testing.assert_allclose(ours, expected, rtol=1e-6)
    for x in flat:
        got, want = tape.gradient(ours_total, x), tape.gradient(expected_total, x)
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(tf.cast(got, tf.float32), tf.cast(want, tf.float32))


def test_feature_matching_of_the_discriminators_features():
    config = _tiny(num_discriminators=2, norm="instance")
    discriminate = models.with_features(
        models.build_discriminator(**config_lib.discriminator_arguments(config))
    )
    inputs, targets = _pairs(config)
    real = discriminate([inputs, targets])
    assert np.all(losses.feature_matching_loss(real, real).numpy() == 0.0)
    fake = discriminate([inputs, -targets])
    values = losses.feature_matching_loss(
        [outputs[:-1] for outputs in real], [outputs[:-1] for outputs in fake]
    ).numpy()
    expected = sum(
        4 / 3 / 2 * np.abs(np.asarray(f) - np.asarray(r)).mean(axis=(1, 2, 3))
        for real_scale, fake_scale in zip(real, fake, strict=True)
        for r, f in zip(real_scale[:-1], fake_scale[:-1], strict=True)
    )
    assert np.all(values > 0)
    np.testing.assert_allclose(values, expected, rtol=1e-5)


def test_gan_losses_average_over_the_discriminators():
    a = tf.fill([2, 3, 3, 1], 0.5)
    b = tf.fill([2, 1, 1, 1], -2.0)
    kwargs = dict(gan_mode="lsgan", global_batch_size=2)
    single = [losses.discriminator_loss(x, x, halve=True, **kwargs) for x in (a, b)]
    both = losses.discriminator_loss([a, b], [a, b], halve=True, **kwargs)
    np.testing.assert_allclose(both, np.mean(single), rtol=1e-6)
    generated = tf.zeros([2, 4, 4, 3])
    gan = [
        losses.generator_loss(x, generated, generated, lambda_l1=1.0, **kwargs)["gen_gan"]
        for x in (a, b)
    ]
    values = losses.generator_loss([a, b], generated, generated, lambda_l1=1.0, **kwargs)
    np.testing.assert_allclose(values["gen_gan"], np.mean(gan), rtol=1e-6)
    assert "gen_fm" not in values


def test_one_discriminator_without_feature_matching_gives_todays_losses():
    # No dropout, so the step's forward pass can be repeated outside it.
    config = _tiny(dropout=0.0, batch_size=2)
    names = step_lib.loss_names(lambda_feature_matching=config.train.lambda_feature_matching)
    assert names == step_lib.LOSS_NAMES
    state = step_lib.build_train_state(config, total_steps=10)
    inputs, targets = _pairs(config)
    generated = state.generator(inputs, training=True)
    real_logits = state.discriminator([inputs, targets], training=True)
    fake_logits = state.discriminator([inputs, generated], training=True)
    kwargs = dict(lambda_l1=100.0, gan_mode="vanilla", global_batch_size=2)
    expected = losses.generator_loss(fake_logits, generated, targets, **kwargs)
    expected["disc"] = losses.discriminator_loss(
        real_logits, fake_logits, gan_mode="vanilla", halve=True, global_batch_size=2
    )
    values = step_lib.make_train_step(config, state)(inputs, targets)
    assert sorted(values) == sorted(step_lib.LOSS_NAMES)
    for name in step_lib.LOSS_NAMES:
        np.testing.assert_allclose(values[name], expected[name], rtol=1e-6, err_msg=name)


def test_train_step_adds_the_weighted_feature_matching_term():
    config = _tiny(num_discriminators=3, lambda_feature_matching=10.0, gan_mode="lsgan")
    state = step_lib.build_train_state(config, total_steps=10)
    values = step_lib.make_train_step(config, state)(*_pairs(config))
    assert sorted(values) == sorted(step_lib.ALL_LOSS_NAMES)
    assert float(values["gen_fm"]) > 0
    np.testing.assert_allclose(
        values["gen_total"],
        values["gen_gan"] + 100.0 * values["gen_l1"] + 10.0 * values["gen_fm"],
        rtol=1e-5,
    )


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from pix2pix_tf.data import prepare

    data_dir = str(tmp_path_factory.mktemp("tfrecords"))
    prepare.prepare(_tiny(data_dir=data_dir).data)
    return data_dir


def test_multiscale_feature_matching_run_logs_gen_fm_saves_and_resumes(tiny_data, tmp_path):
    from tensorboard.backend.event_processing import event_accumulator

    workdir = tmp_path / "run"
    settings = dict(
        data_dir=tiny_data,
        workdir=str(workdir),
        num_discriminators=3,
        lambda_feature_matching=10.0,
        gan_mode="lsgan",
        norm="instance",
    )
    result = training.train(_tiny(**settings))
    assert result["step"] == 2 and np.isfinite(result["gen_fm"]) and result["gen_fm"] > 0
    events = event_accumulator.EventAccumulator(
        str(workdir / "train"), size_guidance={event_accumulator.TENSORS: 0}
    )
    events.Reload()
    assert [event.step for event in events.Tensors("losses/gen_fm")] == [1, 2]

    # The checkpoint holds the three PatchGANs (restore checks every variable matched);
    # a longer run resumes from it.
    config = _tiny(**settings, steps=3)
    state = step_lib.build_train_state(config, total_steps=3)
    run_dir.restore(make_checkpoint(state), str(workdir / "ckpt-2"))
    assert int(state.step.numpy()) == 2
    assert training.train(config)["step"] == 3

    # The number of discriminators shapes the model: another value is refused.
    with pytest.raises(ValueError, match="--num_discriminators"):
        resume.check_resume(str(workdir), config.replace(num_discriminators=2))


def test_a_size_the_smallest_scale_cannot_take_is_one_clear_line(capsys):
    with pytest.raises(SystemExit) as exit:
        train_cli.main(["--preset", "tiny", "--num_discriminators", "4"])
    assert exit.value.code == flags.EXIT_USAGE
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1, errors
    assert "--num_discriminators 4" in errors[0] and "--image_size >= 128" in errors[0]
    # 64x128 with 3 discriminators of 2 strided layers: the 16x32 scale still fits.
    _tiny(image_size="64x128", num_discriminators=3)


@pytest.mark.parametrize(
    "preset, size, generator, ngf",
    [("hd512", "512x1024", "resnet", 64), ("hd1024", "1024x2048", "global_local", 32)],
)
def test_hd_presets_are_pix2pixhds_settings(preset, size, generator, ngf):
    config = config_lib.build_config(dataset="cityscapes", preset=preset)
    model, train = config.model, config.train
    assert (model.generator, model.ngf, model.dropout) == (generator, ngf, 0.0)
    assert config.data.image_size == size and not config.data.random_jitter
    assert (model.norm, model.num_discriminators, model.discriminator_layers) == (
        "instance",
        3,
        3,
    )
    assert (train.gan_mode, train.lambda_feature_matching, train.lambda_l1) == ("lsgan", 10, 0)
    assert (train.learning_rate, train.beta_1, train.lr_decay_fraction) == (2e-4, 0.5, 0.5)
    assert (train.batch_size, train.epochs, train.steps) == (1, 200, None)  # Cityscapes: 200.
    assert train.workdir == f"checkpoints/cityscapes-{preset}-{size}"
