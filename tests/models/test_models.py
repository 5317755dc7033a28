"""Generator and discriminator: parameter counts, shapes, options, receptive fields."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf import models


def _generator(config, **kwargs):
    return models.build_generator(**config_lib.generator_arguments(config), **kwargs)


def _discriminator(config, **kwargs):
    return models.build_discriminator(**config_lib.discriminator_arguments(config), **kwargs)


def _count(weights) -> int:
    return sum(int(np.prod(weight.shape)) for weight in weights)


def _slopes(*networks) -> list[float]:
    layers = [layer for network in networks for layer in network.layers]
    return sorted({float(layer.negative_slope) for layer in layers if "lrelu" in layer.name})


@pytest.fixture(scope="module")
def tutorial_256():
    config = config_lib.build_config(dataset="cityscapes", arch="tutorial")
    return _generator(config), _discriminator(config)


@pytest.fixture(scope="module")
def paper_256():
    config = config_lib.build_config(dataset="cityscapes")
    return _generator(config), _discriminator(config)


def test_tutorial_architecture_matches_the_tensorflow_tutorial(tutorial_256):
    generator, discriminator = tutorial_256
    assert generator.count_params() == 54_425_859
    assert _count(generator.trainable_weights) == 54_414_979
    assert discriminator.count_params() == 2_770_433
    assert generator.output_shape == (None, 256, 256, 3)
    assert discriminator.output_shape == (None, 30, 30, 1)
    # The tutorial builds LeakyReLU() with Keras' default slope, 0.3 in Keras 3.
    assert _slopes(generator, discriminator) == [keras.layers.LeakyReLU().negative_slope] == [0.3]


def test_paper_architecture(paper_256):
    generator, discriminator = paper_256
    # The tutorial's counts minus the bottleneck's batch norm (4 x 512), plus biases
    # on the two unnormalised encoder convolutions (64 + 512) and on the
    # discriminator's first convolution (64).
    assert generator.count_params() == 54_424_387
    assert _count(generator.trainable_weights) == 54_414_531
    assert discriminator.count_params() == 2_770_497
    assert generator.output_shape == (None, 256, 256, 3)
    assert discriminator.output_shape == (None, 30, 30, 1)
    names = {layer.name for layer in generator.layers}
    assert "encoder_7_norm" in names and "encoder_8_norm" not in names
    assert "encoder_1_norm" not in names
    assert _slopes(generator, discriminator) == [0.2]
    dropouts = [layer.name for layer in generator.layers if layer.__class__.__name__ == "Dropout"]
    assert dropouts == ["decoder_1_dropout", "decoder_2_dropout", "decoder_3_dropout"]


@pytest.mark.parametrize(
    "arch, generator_params, discriminator_params",
    [("tutorial", 98_083, 11_713), ("paper", 97_899, 11_721)],
)
def test_tiny_preset(arch, generator_params, discriminator_params):
    config = config_lib.build_config(preset="tiny", arch=arch)
    generator = _generator(config)
    discriminator = _discriminator(config)
    assert generator.count_params() == generator_params
    assert discriminator.count_params() == discriminator_params
    images = tf.random.uniform([2, 64, 64, 3], -1.0, 1.0)
    generated = generator(images, training=False)
    assert generated.shape == (2, 64, 64, 3)
    # Freshly initialised (weights ~ N(0, 0.02)), the tanh output is far from
    # saturation, and it depends on the input image.
    assert float(tf.reduce_max(tf.abs(generated))) < 0.9
    assert float(tf.reduce_max(tf.abs(generated[0] - generated[1]))) > 1e-4
    logits = discriminator([images, generated], training=False)
    assert logits.shape == (2, 14, 14, 1)  # 64 / 2^2 - 2.


def test_inputs_are_named_for_export():
    config = config_lib.build_config(preset="tiny")
    generator = _generator(config)
    discriminator = _discriminator(config)
    assert [tensor.name for tensor in generator.inputs] == ["input_image"]
    assert [tensor.name for tensor in discriminator.inputs] == ["input_image", "target_image"]


@pytest.mark.parametrize("image_size, depth", [(256, 8), (128, 7), (64, 6)])
def test_unet_depth_follows_image_size(image_size, depth):
    config = config_lib.build_config(image_size=image_size, ngf=2, ndf=2)
    assert config_lib.generator_arguments(config)["depth"] == depth
    generator = _generator(config)
    encoders = [layer for layer in generator.layers if layer.name.endswith("_conv")]
    assert len(encoders) == depth
    assert generator.get_layer(f"encoder_{depth}_conv").output.shape[1:3] == (1, 1)


def test_filters_and_options():
    config = config_lib.build_config(preset="tiny", ngf=4, ndf=3, norm="instance", dropout=0.0)
    generator = _generator(config)
    discriminator = _discriminator(config)
    assert generator.get_layer("encoder_1_conv").filters == 4
    assert generator.get_layer("encoder_4_conv").filters == 32  # 4 * 2^3.
    assert discriminator.get_layer("layer_1_conv").filters == 3
    kinds = {layer.__class__.__name__ for layer in generator.layers + discriminator.layers}
    assert "InstanceNormalization" in kinds and "BatchNormalization" not in kinds
    assert "Dropout" not in kinds
    assert generator.get_layer("encoder_2_norm").groups == 8  # One group per channel (4 * 2).


def test_weights_are_drawn_from_normal_0_002():
    config = config_lib.build_config(dataset="cityscapes", ngf=16)
    kernel = _generator(config).get_layer("encoder_5_conv").kernel.numpy()
    assert abs(kernel.mean()) < 1e-3
    assert kernel.std() == pytest.approx(0.02, rel=0.05)


def test_mixed_precision_keeps_outputs_float32():
    config = config_lib.build_config(preset="tiny")
    generator = _generator(config, dtype_policy="mixed_bfloat16")
    discriminator = _discriminator(config, dtype_policy="mixed_bfloat16")
    assert generator.get_layer("encoder_2_conv").compute_dtype == "bfloat16"
    assert generator.get_layer("encoder_2_conv").kernel.dtype == "float32"
    images = tf.random.uniform([1, 64, 64, 3], -1.0, 1.0)
    generated = generator(images)
    assert generated.dtype == tf.float32
    assert discriminator([images, generated]).dtype == tf.float32


def test_builders_refuse_sizes_their_layers_do_not_fit():
    # Config validation refuses these first; the bridge to the builders' arguments and
    # the builders themselves check again (configs made without validation, e.g.
    # Config().replace(...), and direct calls), with the same rule and message as config
    # validation (configs/sizes.py, the one derivation).
    config = config_lib.Config().replace(image_size=64, unet_depth=7, discriminator_layers=5)
    bounds = "--unet_depth must be between 1 and 6 for --image_size 64"
    with pytest.raises(ValueError, match=bounds):
        config_lib.generator_arguments(config)
    channels = {"in_channels": 3, "out_channels": 3}
    with pytest.raises(ValueError, match=bounds):
        models.build_unet(image_hw=(64, 64), depth=7, **channels)
    patches = "--discriminator_layers 5 .* needs --image_size >= 128"
    with pytest.raises(ValueError, match=patches):
        _discriminator(config)
    with pytest.raises(ValueError, match=patches):
        models.build_patchgan(image_hw=(64, 64), layers=5, **channels)
    odd = config_lib.Config().replace(image_size=48, unet_depth=5, discriminator_layers=5)
    multiple = r"--image_size 48: each side must be a multiple of 2\^5"
    with pytest.raises(ValueError, match=multiple):
        _generator(odd)
    with pytest.raises(ValueError, match=multiple):
        models.build_unet(image_hw=(48, 48), depth=5, **channels)
    with pytest.raises(ValueError, match="--generator must be one of unet, resnet"):
        models.build_generator(generator="vgg")
    with pytest.raises(ValueError, match="--arch must be one of paper, tutorial"):
        models.build_unet(image_hw=(64, 64), depth=6, arch="pix2pix", **channels)


@pytest.mark.parametrize(
    "image_size, layers, patches", [("256x512", 3, (30, 62)), ("64x128", 2, (14, 30))]
)
def test_non_square_models_keep_the_square_weights(image_size, layers, patches):
    """HxW changes the maps, not the weights: a 2:1 run has the square run's variables."""
    kwargs = dict(ngf=4, ndf=4, discriminator_layers=layers, unet_depth=4)
    square = config_lib.build_config(image_size=int(image_size.split("x")[0]), **kwargs)
    wide = config_lib.build_config(image_size=image_size, **kwargs)
    height, width = config_lib.image_hw(wide.data)
    generator, discriminator = _generator(wide), _discriminator(wide)
    assert generator.output_shape == (None, height, width, 3)
    assert discriminator.output_shape == (None, *patches, 1)
    assert models.output_hw(image_size, layers) == patches
    reference = _generator(square), _discriminator(square)
    for network, other in zip((generator, discriminator), reference, strict=True):
        assert [v.path for v in network.weights] == [v.path for v in other.weights]
        assert [v.shape for v in network.weights] == [v.shape for v in other.weights]
    images = tf.random.uniform([1, height, width, 3], -1.0, 1.0)
    generated = generator(images, training=False)
    assert generated.shape == (1, height, width, 3)
    assert discriminator([images, generated]).shape == (1, *patches, 1)


def test_default_depth_follows_the_smaller_side():
    wide = config_lib.build_config(image_size="256x512", ngf=2, ndf=2)
    assert config_lib.generator_arguments(wide)["depth"] == 8
    generator = _generator(wide)
    assert generator.get_layer("encoder_8_lrelu").output.shape == (None, 1, 2, 16)
    tall = config_lib.Config().replace(image_size="128x64", unet_depth=7)
    with pytest.raises(ValueError, match="between 1 and 6 for --image_size 128x64"):
        _generator(tall)
    with pytest.raises(ValueError, match="--discriminator_layers 3 .* needs --image_size >= 32"):
        _discriminator(config_lib.Config().replace(image_size="16x64"))


def test_discriminator_needs_room_for_its_patches():
    config = config_lib.build_config(preset="tiny")
    with pytest.raises(ValueError, match="--discriminator_layers 5"):
        config.replace(discriminator_layers=5).validate()


@pytest.mark.parametrize(
    "layers, field, image_size",
    [(0, 1, 32), (1, 16, 64), (2, 34, 64), (3, 70, 128), (4, 142, 256), (5, 286, 512)],
)
def test_receptive_field_is_measured_by_gradients(layers, field, image_size):
    assert models.receptive_field(layers) == field
    config = config_lib.build_config(image_size=image_size, ndf=2, discriminator_layers=layers)
    discriminator = _discriminator(config)
    assert discriminator.output_shape[1] == models.output_size(image_size, layers)
    inputs = tf.random.uniform([1, image_size, image_size, 3], -1.0, 1.0)
    targets = tf.random.uniform([1, image_size, image_size, 3], -1.0, 1.0)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        logits = discriminator([inputs, targets], training=False)
        centre = logits.shape[1] // 2
        logit = logits[0, centre, centre, 0]
    gradient = tf.reduce_sum(tf.abs(tape.gradient(logit, inputs)[0]), axis=-1).numpy()
    rows = np.nonzero(gradient.sum(axis=1))[0]
    columns = np.nonzero(gradient.sum(axis=0))[0]
    assert rows[-1] - rows[0] + 1 == field
    assert columns[-1] - columns[0] + 1 == field
