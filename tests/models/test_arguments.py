"""The models' keyword-argument builders and their one bridge from a Config
(pix2pix_tf/configs/arguments.py)."""

import ast
import glob
import inspect
import os

import pytest
from conftest import REPO_ROOT

from pix2pix_tf import configs as config_lib
from pix2pix_tf import models

BUILDERS = (
    models.build_unet,
    models.build_resnet,
    models.build_global_local,
    models.build_patchgan,
    models.build_multiscale_discriminator,
)
SMALL = {"resnet": {"ngf": 4, "resnet_blocks": 2}, "global_local": {"ngf": 4, "resnet_blocks": 1}}


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda builder: builder.__name__)
def test_builders_take_typed_keywords_only(builder):
    parameters = inspect.signature(builder).parameters.values()
    assert all(parameter.kind is inspect.Parameter.KEYWORD_ONLY for parameter in parameters)
    assert all(parameter.annotation is not inspect.Parameter.empty for parameter in parameters)
    # The size and the channels have no default; the rest are the paper's settings.
    required = {parameter.name for parameter in parameters if parameter.default is parameter.empty}
    assert {"image_hw", "in_channels", "out_channels"} <= required
    assert required - {"image_hw", "in_channels", "out_channels"} <= {"depth"}


def test_builder_defaults_are_the_configs_defaults():
    model, train = config_lib.ModelConfig(), config_lib.TrainConfig()
    expected = {
        "ngf": model.ngf,
        "ndf": model.ndf,
        "norm": model.norm,
        "dropout": model.dropout,
        "arch": model.arch,
        "residual_blocks": model.resnet_blocks,
        "layers": model.discriminator_layers,
        "num_discriminators": model.num_discriminators,
        "stage": train.stage,
        "sync_batch_norm": train.sync_batch_norm,
        "matmul_convs": train.matmul_convs,
        "remat": train.remat,
        "dtype_policy": "float32",
    }
    for builder in BUILDERS:
        for name, parameter in inspect.signature(builder).parameters.items():
            if name in expected:
                assert parameter.default == expected[name], (builder.__name__, name)


@pytest.mark.parametrize("generator", ["unet", "resnet", "global_local"])
def test_generator_arguments_are_exactly_the_builders(generator):
    config = config_lib.build_config(preset="tiny", generator=generator, **SMALL.get(generator, {}))
    arguments = config_lib.generator_arguments(config)
    assert arguments["generator"] == generator and arguments["image_hw"] == (64, 64)
    builder = {
        "unet": models.build_unet,
        "resnet": models.build_resnet,
        "global_local": models.build_global_local,
    }[generator]
    accepted = set(inspect.signature(builder).parameters) - {"dtype_policy", "input_shape"}
    # `generator` picks the builder; `remat` is the dispatch's (and the residual blocks').
    assert set(arguments) - {"generator"} == accepted | {"remat"}
    model = models.build_generator(**arguments)
    assert model.output_shape == (None, 64, 64, 3)


def test_discriminator_arguments_follow_the_stage():
    config = config_lib.build_config(
        preset="tiny", generator="global_local", stage="global", **SMALL["global_local"]
    )
    arguments = config_lib.discriminator_arguments(config)
    assert arguments["image_hw"] == (64, 64) and arguments["layers"] == 2
    assert models.discriminator_image_hw(
        image_hw=(64, 64), generator="global_local", stage="global"
    ) == (32, 32)
    discriminator = models.build_discriminator(**arguments)
    assert discriminator.input_shape == [(None, 32, 32, 3), (None, 32, 32, 3)]
    joint = models.build_discriminator(**{**arguments, "stage": "joint"})
    assert joint.input_shape == [(None, 64, 64, 3), (None, 64, 64, 3)]


def test_pad_multiple_takes_the_resolved_depth():
    # A config.json of an earlier version may hold unet_depth None: the bridge derives it.
    config = config_lib.Config().replace(image_size=128)
    assert config.model.unet_depth is None
    assert config_lib.pad_multiple_arguments(config) == {"generator": "unet", "unet_depth": 7}
    assert models.pad_multiple(**config_lib.pad_multiple_arguments(config)) == 128
    assert models.pad_multiple(generator="resnet") == 4
    assert models.pad_multiple(generator="global_local") == 32
    with pytest.raises(ValueError, match="--unet_depth"):
        models.pad_multiple(generator="unet")


def test_models_read_no_config():
    """No module of pix2pix_tf/models/ imports the Config or its sections, or takes a
    `config` argument; configs/ imports no models/ (nor TensorFlow)."""
    folder = os.path.join(REPO_ROOT, "pix2pix_tf", "models")
    for path in glob.glob(os.path.join(folder, "*.py")):
        with open(path) as file:
            tree = ast.parse(file.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported = {f"{node.module}.{alias.name}" for alias in node.names}
                if node.module.startswith("pix2pix_tf.configs"):
                    # Pure helpers only: the choice lists and the size rules.
                    allowed = ("pix2pix_tf.configs.choices", "pix2pix_tf.configs.sizes")
                    assert all(name.startswith(allowed) for name in imported), (path, imported)
            if isinstance(node, ast.arg):
                assert node.arg != "config", (path, node.lineno)
    configs = os.path.join(REPO_ROOT, "pix2pix_tf", "configs")
    for path in glob.glob(os.path.join(configs, "*.py")):
        with open(path) as file:
            tree = ast.parse(file.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for module in modules:
                assert not module.startswith(("pix2pix_tf.models", "tensorflow", "keras")), path
