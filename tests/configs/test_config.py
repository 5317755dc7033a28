"""Config resolution, serialisation, generated flags, presets and the dataset table."""

import argparse
import dataclasses
import json

import pytest

from pix2pix_tf import configs as config_lib
from pix2pix_tf.cli import flags
from pix2pix_tf.configs import choices, presets, sizes
from pix2pix_tf.data import registry
from pix2pix_tf.evaluation import options as evaluation_options
from pix2pix_tf.serving import options as serving_options


def _parse(argv):
    parser = argparse.ArgumentParser()
    flags.add_config_flags(parser)
    flags.add_preset_flag(parser)
    return flags.config_from_args(parser.parse_args(argv))


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


def test_a_non_square_run_gets_its_own_default_workdir():
    # Otherwise the 2:1 run would refuse to start in the square run's directory.
    config = _parse(["--preset", "tiny", "--image_size", "64x128"])
    assert config.train.workdir == "checkpoints/synthetic-tiny-64x128"
    assert _parse(["--preset", "tiny", "--image_size", "64"]).train.workdir == (
        "checkpoints/synthetic-tiny"
    )


def test_image_size_derives_depth_and_load_size():
    config = config_lib.build_config(image_size=128)
    assert config.model.unet_depth == 7
    assert config.data.load_size == 143


# -- non-square sizes (issue #12) ------------------------------------------------------


def test_height_by_width_size_from_flags_is_stored_as_text_and_square_as_int(tmp_path):
    wide = _parse(["--image_size", "256x512"])
    assert wide.data.image_size == "256x512" and wide.data.load_size == "286x572"
    assert config_lib.image_hw(wide.data) == (256, 512)
    assert config_lib.load_hw(wide.data) == (286, 572)
    assert wide.model.unet_depth == 8  # From the smaller side: a 1x2 bottleneck.
    # A square HxW, or a plain number from a flag, is the int earlier runs saved.
    square = _parse(["--image_size", "128x128", "--load_size", "150"])
    assert (square.data.image_size, square.data.load_size) == (128, 150)
    assert _parse(["--image_size", "128"]).data.image_size == 128
    assert config_lib.image_hw(square.data) == (128, 128)
    path = wide.save(str(tmp_path))
    assert config_lib.Config.from_json(path) == wide
    with open(path) as file:
        assert json.load(file)["data"]["image_size"] == "256x512"


def test_preset_load_size_follows_an_explicit_image_size():
    wide = _parse(["--preset", "tiny", "--image_size", "64x128"])
    assert (wide.data.image_size, wide.data.load_size, wide.model.unet_depth) == (
        "64x128",
        "72x143",
        4,
    )
    assert _parse(["--preset", "tiny"]).data.load_size == 72
    larger = _parse(["--preset", "tiny", "--image_size", "128"])
    assert larger.data.load_size == 143
    given = _parse(["--preset", "tiny", "--image_size", "64x128", "--load_size", "80x160"])
    assert given.data.load_size == "80x160"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"image_size": "250x500"},
            r"--image_size 250x500: each side must be a multiple of 2\^7 = 128 for "
            r"--unet_depth 7 \(derived from the smaller side\); nearest valid sizes: 256x512,",
        ),
        (
            {"image_size": "64x96", "unet_depth": 6},
            r"--image_size 64x96: each side must be a multiple of 2\^6 = 64 .*64x128",
        ),
        ({"image_size": 100}, r"power of two .* Nearest valid sizes: 128, 64\."),
        ({"image_size": "64x8"}, "--image_size must be at least 16 on each side, got 64x8"),
        ({"image_size": "64by128"}, "--image_size must be SIZE or HEIGHTxWIDTH"),
        ({"image_size": "0x64"}, "--image_size must be SIZE or HEIGHTxWIDTH"),
        ({"image_size": "64x128", "load_size": "72x100"}, "--load_size .* on each side"),
        ({"load_size": "300x2x1"}, "--load_size must be SIZE or HEIGHTxWIDTH"),
        (
            {"image_size": "16x32", "discriminator_layers": 3},
            r"--discriminator_layers 3 needs --image_size >= 32 on each side.*"
            r"nearest valid sizes: 32, 32x48",
        ),
        (
            {"image_size": 48, "unet_depth": 3, "discriminator_layers": 4},
            "--discriminator_layers 4 needs --image_size >= 64",
        ),
        ({"resize_mode": "stretch"}, "--resize_mode must be one of cover, squash"),
    ],
)
def test_bad_sizes_name_the_flag_and_the_nearest_valid_sizes(overrides, message):
    with pytest.raises(ValueError, match=message):
        config_lib.build_config(**overrides)


def test_explicit_depth_allows_sizes_that_are_not_powers_of_two():
    config = config_lib.build_config(image_size="96x160", unet_depth=5)
    assert config_lib.image_hw(config.data) == (96, 160) and config.model.unet_depth == 5
    assert config.data.resize_mode == "cover"


def test_old_config_json_with_int_sizes_loads_unchanged(tmp_path):
    config = config_lib.build_config(preset="tiny")
    values = config.to_dict()
    del values["data"]["resize_mode"]  # Written before the field existed.
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    loaded = config_lib.Config.from_json(str(path))
    assert loaded == config and loaded.resolved() == config
    assert loaded.data.image_size == 64 and loaded.data.load_size == 72


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


# Every dataclass whose fields become flags.
SETTINGS_TYPES = [
    config_lib.DataConfig,
    config_lib.ModelConfig,
    config_lib.TrainConfig,
    serving_options.RunOptions,
    serving_options.ServingOptions,
    serving_options.ExportOptions,
    serving_options.PredictOptions,
    evaluation_options.EvalOptions,
    evaluation_options.SegmenterConfig,
    evaluation_options.SegmenterPaths,
]


@pytest.mark.parametrize("settings_type", SETTINGS_TYPES, ids=lambda cls: cls.__name__)
def test_every_field_has_help_in_its_metadata(settings_type):
    for field in dataclasses.fields(settings_type):
        assert field.metadata.get("help"), f"{settings_type.__name__}.{field.name} has no help"


def test_a_field_without_help_cannot_become_a_flag():
    @dataclasses.dataclass(frozen=True)
    class Undocumented:
        size: int = 3

    with pytest.raises(ValueError, match="'size' has no help"):
        flags.add_option_flags(argparse.ArgumentParser(), Undocumented)


def test_config_flag_help_comes_from_the_field_metadata():
    parser = argparse.ArgumentParser()
    flags.add_config_flags(parser)
    actions = parser._option_string_actions
    assert {name[2:] for name in actions} >= set(config_lib.FIELD_SECTION)
    assert actions["--lambda_l1"].help == (
        "Weight of the L1 term in the generator loss. (default: 100.0)"
    )
    assert actions["--deterministic"].help == (
        "Deterministic ops (slower); makes resumed runs bit-identical. (default: False)"
    )
    assert actions["--seed"].help.startswith("Initial weights")
    # Config flags default to None ("not given") and accept `none` for optional fields.
    assert actions["--steps"].default is None
    assert parser.parse_args(["--unet_depth", "none"]).unet_depth is None
    parser.format_help()  # No stray % in any help text.


def test_option_flags_keep_names_types_defaults_and_choices():
    parser = argparse.ArgumentParser()
    flags.add_option_flags(parser, serving_options.RunOptions, serving_options.ExportOptions)
    flags.add_option_flags(parser, serving_options.ServingOptions)
    actions = parser._option_string_actions
    assert actions["--workdir"].required
    assert actions["--precision"].choices == choices.EXPORT_PRECISIONS
    assert actions["--resize_method"].choices == choices.RESIZE_METHODS
    args = parser.parse_args(["--workdir", "run", "--version", "3", "--no-warmup"])
    assert flags.options_from_args(
        serving_options.ExportOptions, args
    ) == serving_options.ExportOptions(version=3, warmup=False)
    assert flags.options_from_args(serving_options.RunOptions, args) == serving_options.RunOptions(
        "run"
    )
    assert (
        flags.options_from_args(serving_options.ServingOptions, args)
        == serving_options.ServingOptions()
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--workdir", "run", "--precision", "auto"])  # Training only.


def test_predict_flags_take_several_inputs():
    parser = argparse.ArgumentParser()
    flags.add_option_flags(parser, serving_options.PredictOptions)
    args = parser.parse_args(["--model", "m", "--input", "a.png", "b/", "--output", "o"])
    predict_options = flags.options_from_args(serving_options.PredictOptions, args)
    assert predict_options.input == ("a.png", "b/")
    assert predict_options.batch_size == 8 and predict_options.direction is None


# -- presets ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_presets_are_functions_returning_a_config(name):
    config = presets.PRESETS[name](config_lib.Config())
    assert isinstance(config, config_lib.Config) and config.preset == name
    config.resolved()  # Valid on the defaults.
    assert (
        config_lib.build_config(preset=name)
        == presets.PRESETS[name](config_lib.Config())
        .replace(dataset="synthetic", epochs=20)
        .resolved()
    )


def test_preset_values():
    tiny = presets.tiny(config_lib.Config())
    assert (tiny.data.image_size, tiny.data.load_size, tiny.model.unet_depth) == (64, 72, 4)
    assert (tiny.model.ngf, tiny.model.discriminator_layers, tiny.train.steps) == (8, 2, 2)
    quick = presets.quick(config_lib.Config())
    assert (quick.model.ngf, quick.train.batch_size, quick.train.steps) == (16, 4, 2000)
    # cpu128 sets batch 1 on any dataset, e.g. over edges2shoes' batch 4.
    cpu128 = config_lib.build_config(dataset="edges2shoes", preset="cpu128")
    assert (cpu128.model.ngf, cpu128.train.batch_size, cpu128.train.steps) == (32, 1, 30000)


def test_preset_help_lists_what_each_preset_sets():
    lines = flags.preset_help().splitlines()
    assert [line.split(":")[0].strip() for line in lines] == list(presets.PRESETS)
    assert "unet_depth=4" in lines[0] and "steps=2," in lines[0]
    assert "batch_size=1" in lines[1]  # Differs from some dataset's batch size.


def test_unknown_preset_names_the_flag():
    with pytest.raises(ValueError, match="--preset: unknown preset 'huge'"):
        config_lib.build_config(preset="huge")


# -- the one home of every choice list and derived default ---------------------------


def test_choice_fields_validate_against_the_choice_lists():
    checked = {
        field.name: field.metadata["choices"]
        for section in config_lib.SECTION_TYPES.values()
        for field in dataclasses.fields(section)
        if "choices" in field.metadata
    }
    assert checked == {
        "folder_layout": choices.FOLDER_LAYOUTS,
        "direction": choices.DIRECTIONS,
        "resize_mode": choices.RESIZE_MODES,
        "input_channels": choices.CHANNELS,
        "output_channels": choices.CHANNELS,
        "input_bits": choices.BIT_DEPTHS,
        "output_bits": choices.BIT_DEPTHS,
        "arch": choices.ARCHS,
        "norm": choices.NORMS,
        "generator": choices.GENERATORS,
        "stage": choices.TRAINING_STAGES,
        "gan_mode": choices.GAN_MODES,
        "precision": choices.TRAINING_PRECISIONS,
        "strategy": choices.STRATEGIES,
        "eval_fid": choices.FID_CHOICES,
        "keep_best": choices.KEEP_BEST_METRICS,
    }
    for name, allowed in checked.items():
        listed = ", ".join(str(choice) for choice in allowed)
        with pytest.raises(ValueError, match=f"--{name} must be one of {listed}"):
            config_lib.build_config(**{name: "nope"})


@pytest.mark.parametrize(
    "image_size, load_size, depth", [(16, 18, 4), (128, 143, 7), (256, 286, 8)]
)
def test_derived_defaults(image_size, load_size, depth):
    assert sizes.default_load_size(image_size) == load_size
    assert sizes.unet_depth_for(image_size) == depth
    config = config_lib.build_config(image_size=image_size, discriminator_layers=1)
    assert (config.data.load_size, config.model.unet_depth) == (load_size, depth)


# -- the dataset table ----------------------------------------------------------------


def test_the_dataset_table_is_what_every_consumer_lists():
    from pix2pix_tf.data import datasets
    from pix2pix_tf.data.datasets import berkeley

    names = list(registry.DATASETS)
    assert [line.split(":")[0].strip() for line in flags.datasets_help().splitlines()] == names
    with pytest.raises(ValueError) as error:
        config_lib.build_config(dataset="imagenet")
    assert str(error.value).endswith(f"choose one of: {', '.join(names)}.")
    berkeley_names = [config.name for config in berkeley.Berkeley.BUILDER_CONFIGS]
    assert berkeley_names == list(registry.names(registry.BERKELEY))
    builder_names = {
        registry.BERKELEY: "berkeley",
        registry.SYNTHETIC: "synthetic_streets",
        registry.FOLDER: "folder",
    }
    for name, info in registry.DATASETS.items():
        data_config = config_lib.DataConfig(dataset=name, source_dir="pairs")
        assert datasets.locate(data_config).builder_class.name == builder_names[info.builder]
        assert info.natural_direction in choices.DIRECTIONS
        assert set(info.overrides) <= set(config_lib.FIELD_SECTION)
        assert info.eval_split in info.splits
        assert (info.url is not None) == (info.builder == registry.BERKELEY)
    assert registry.palette_datasets() == ("synthetic", "cityscapes")
    assert berkeley.Berkeley.MANUAL_DOWNLOAD_INSTRUCTIONS.count(registry.BERKELEY_INDEX_URL) == 1


def test_the_url_follows_the_environment(monkeypatch):
    monkeypatch.setenv(registry.URL_ENV, "http://mirror/{name}.tgz")
    assert registry.dataset_info("maps").url == "http://mirror/maps.tgz"
