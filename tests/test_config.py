"""Config resolution, serialisation and flag errors."""

import argparse
import json

import pytest

from pix2pix_tf import config as config_lib


def _parse(argv):
    parser = argparse.ArgumentParser()
    config_lib.add_config_flags(parser)
    config_lib.add_preset_flag(parser)
    return config_lib.config_from_args(parser.parse_args(argv))


def test_paper_defaults_for_cityscapes():
    config = config_lib.build_config(dataset="cityscapes")
    assert config.data.direction == "BtoA"  # Label map (right) -> photo (left).
    assert config.data.load_size == 286 and config.data.image_size == 256
    assert config.model.unet_depth == 8
    assert config.train.batch_size == 1 and config.train.epochs == 200
    assert config.train.learning_rate == 2e-4 and config.train.beta_1 == 0.5
    assert config.train.lambda_l1 == 100.0
    assert config.train.workdir == "checkpoints/cityscapes"


def test_dataset_overrides_and_directions():
    shoes = config_lib.build_config(dataset="edges2shoes")
    assert shoes.data.direction == "AtoB"
    assert shoes.train.batch_size == 4 and shoes.train.epochs == 15
    assert not shoes.data.random_jitter and not shoes.data.random_mirror
    assert config_lib.build_config(dataset="maps", direction="BtoA").data.direction == "BtoA"


def test_layering_dataset_then_preset_then_flags():
    config = _parse(
        ["--dataset", "cityscapes", "--preset", "tiny", "--ngf", "4", "--no-random_mirror"]
    )
    assert config.data.image_size == 64  # From the preset.
    assert config.model.ngf == 4  # The flag beats the preset.
    assert config.train.epochs == 200  # From the dataset.
    assert config.data.random_mirror is False
    assert config.train.workdir == "checkpoints/cityscapes-tiny"


def test_image_size_derives_depth_and_load_size():
    config = config_lib.build_config(image_size=128)
    assert config.model.unet_depth == 7
    assert config.data.load_size == 143


def test_epochs_flag_clears_preset_steps():
    config = config_lib.build_config(preset="tiny", epochs=3)
    assert config.train.steps is None and config.train.epochs == 3


def test_json_round_trip(tmp_path):
    config = config_lib.build_config(dataset="facades", preset="tiny", seed=7)
    path = config.save(str(tmp_path))
    assert config_lib.Config.from_json(path) == config
    with open(path) as file:
        assert json.load(file)["train"]["seed"] == 7


def test_unknown_field_in_json_is_an_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model": {"filters": 3}}))
    with pytest.raises(ValueError, match="unknown model fields"):
        config_lib.Config.from_json(str(path))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"image_size": 100}, "--image_size"),
        ({"direction": "LtoR"}, "--direction"),
        ({"norm": "layer"}, "--norm"),
        ({"precision": "fp8"}, "--precision"),
        ({"image_size": 64, "unet_depth": 7}, "--unet_depth"),
        ({"load_size": 200}, "--load_size"),
        ({"steps": 0}, "--steps"),
        ({"dropout": 1.0}, "--dropout"),
    ],
)
def test_bad_values_name_the_flag(overrides, message):
    with pytest.raises(ValueError, match=message):
        config_lib.build_config(**overrides)


def test_unknown_dataset_lists_choices():
    with pytest.raises(ValueError, match="cityscapes"):
        config_lib.build_config(dataset="imagenet")


def test_folder_dataset_needs_source_dir():
    with pytest.raises(ValueError, match="--source_dir"):
        config_lib.build_config(dataset="folder")


def test_flag_help_comes_from_the_field_comments():
    parser = argparse.ArgumentParser()
    config_lib.add_config_flags(parser)
    actions = parser._option_string_actions
    assert actions["--lambda_l1"].help == (
        "Weight of the L1 term in the generator loss. (default: 100.0)"
    )
    # A comment block above a field, joined into one line.
    assert actions["--deterministic"].help == (
        "Deterministic ops (slower); makes resumed runs bit-identical. (default: False)"
    )
    assert actions["--seed"].help.startswith("Initial weights")
    assert "(default: 0)" in actions["--seed"].help
    parser.format_help()  # No stray % in any help text.
