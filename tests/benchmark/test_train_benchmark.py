"""The train benchmark runs end to end on the tiny preset (no timing assertions)."""

import json
import statistics

import keras
import pytest

from pix2pix_tf import configs as config_lib
from pix2pix_tf.benchmark import flops, train_benchmark
from pix2pix_tf.models import build_discriminator, build_generator, norms


def test_conv_flops_by_hand():
    inputs = keras.Input(shape=(8, 8, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)  # 4x4x4 outputs.
    x = keras.layers.Conv2DTranspose(2, 4, strides=2, padding="same")(x)  # 4x4x4 inputs.
    model = keras.Model(inputs, x)
    conv = 4 * 4 * 4 * 3 * 3 * 3
    transposed = 4 * 4 * 4 * 4 * 4 * 2
    assert flops.conv_forward_flops(model, batch_size=2) == 2 * 2 * (conv + transposed)


def test_tutorial_train_step_flops_at_256():
    config = config_lib.build_config(arch="tutorial", image_size=256)
    generator, discriminator = (
        build_generator(**config_lib.generator_arguments(config)),
        build_discriminator(**config_lib.discriminator_arguments(config)),
    )
    step = flops.train_step_flops(generator, discriminator, batch_size=1)
    # Forward multiply-adds by hand: generator encoder 2.017 G + decoder 4.031 G,
    # discriminator 3.197 G per pair; 2 FLOPs each.
    assert step / 1e9 == pytest.approx(3 * 2 * (2.017 + 4.031 + 2 * 3.197), rel=1e-3)
    assert flops.train_step_flops(generator, discriminator, batch_size=4) == 4 * step


def test_tutorial_baseline_uses_keras_layers_only():
    """The baseline is the tutorial as published: none of our layers or update kernels."""
    config = config_lib.build_config(preset="tiny", arch="tutorial")
    generator, discriminator, _ = train_benchmark._build_tutorial(config)
    layers = [layer for model in (generator, discriminator) for layer in model.layers]
    # Our normalisation layers with fused=False are Keras' classes running Keras' code.
    ours = [layer for layer in layers if isinstance(layer, norms.BatchNormalization)]
    assert ours and all(layer.fused is False for layer in ours)
    modules = {type(layer).__module__ for layer in layers if layer not in ours}
    assert all(module.startswith("keras.") for module in modules), modules


def test_benchmark_prints_one_json_object(capsys):
    argv = ["--preset", "tiny", "--rounds", "2", "--steps", "2", "--warmup", "2"]
    argv += ["--steps_per_execution", "2", "--json"]
    assert train_benchmark.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("images_per_s", "ms_per_step", "gflops_per_s", "peak_rss_mb", "speed_ratio"):
        assert summary[key] > 0, key
    assert summary["image_size"] == 64 and summary["batch_size"] == 1
    assert set(summary["variants"]) == {"tutorial", "ours"}
    tutorial, ours = summary["variants"]["tutorial"], summary["variants"]["ours"]
    assert tutorial["policy"] == "float32"
    assert len(ours["rounds_ms_per_step"]) == len(tutorial["rounds_ms_per_step"]) == 2
    # Every ratio is ours against the tutorial's step, measured in the same rounds.
    per_round = [
        base / own
        for base, own in zip(
            tutorial["rounds_ms_per_step"], ours["rounds_ms_per_step"], strict=True
        )
    ]
    assert summary["speed_ratio"] == pytest.approx(statistics.median(per_round))
    assert summary["memory_ratio"] == pytest.approx(ours["peak_rss_mb"] / tutorial["peak_rss_mb"])
    assert summary["gflops_per_s"] == pytest.approx(
        summary["gflops_per_step"] * 1000 / summary["ms_per_step"]
    )


def test_bad_flags_are_errors(capsys):
    with pytest.raises(SystemExit):
        train_benchmark.main(["--steps", "3", "--steps_per_execution", "2"])
    assert "(--steps_per_execution)" in capsys.readouterr().err


def test_sizes_mode_reports_each_size_side_by_side(capsys):
    argv = ["--preset", "tiny", "--sizes", "64x64", "64x128", "--rounds", "2", "--steps", "2"]
    assert train_benchmark.main([*argv, "--warmup", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    square, wide = summary["sizes"]["64x64"], summary["sizes"]["64x128"]
    assert square["height_width"] == [64, 64] and wide["height_width"] == [64, 128]
    assert square["pixels_ratio"] == 1 and wide["pixels_ratio"] == 2
    # Twice the pixels, about twice the convolution work (the counts are analytic; the
    # PatchGAN's valid 4x4 convolutions make it a little more: 14x30 vs 14x14 logits).
    assert 2 < wide["gflops_per_step"] / square["gflops_per_step"] < 2.05
    per_round = [
        own / base
        for base, own in zip(square["rounds_ms_per_step"], wide["rounds_ms_per_step"], strict=True)
    ]
    assert wide["time_ratio"] == pytest.approx(statistics.median(per_round))
    assert wide["memory_ratio"] == pytest.approx(wide["peak_rss_mb"] / square["peak_rss_mb"])
    assert wide["images_per_s"] == pytest.approx(1000 / wide["ms_per_step"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sizes", "256x250"], "nearest valid sizes: 256"),
        (["--image_size", "64by64"], "--image_size must be SIZE or HEIGHTxWIDTH"),
        (["--sizes", "64x64", "--levers"], "--sizes times our step alone"),
        (["--sizes", "64x64", "64x64"], "--sizes repeats a size"),
    ],
)
def test_bad_size_flags_are_errors(capsys, argv, message):
    with pytest.raises(SystemExit):
        train_benchmark.main(argv)
    assert message in capsys.readouterr().err


def test_breakdown_reports_each_piece_against_its_floor(capsys):
    argv = ["--preset", "tiny", "--breakdown", "--rounds", "2", "--steps", "2", "--json"]
    assert train_benchmark.main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    pieces = result["pieces"]
    assert list(pieces) == [
        "generator forward",
        "discriminator forward",
        "backward",
        "optimizer update",
    ]
    # The pieces are differences of nested timings: they add up to the step.
    assert sum(piece["ms"] for piece in pieces.values()) == pytest.approx(result["step_ms"])
    assert all(piece["floor_ms"] > 0 for piece in pieces.values())
    assert result["floor_ms"] == pytest.approx(sum(p["floor_ms"] for p in pieces.values()))
    assert result["step_over_floor"] == pytest.approx(result["step_ms"] / result["floor_ms"])
    peaks = result["peaks"]
    assert peaks["float32_gflops_per_s"] > 0 and peaks["gb_per_s"] > 0
    assert result["policy"] in ("float32", "mixed_bfloat16")


def test_breakdown_floors_follow_the_counts():
    """Compute floors are FLOPs over the dtype's peak; Adam's is 28 bytes per parameter."""
    import keras

    from pix2pix_tf.benchmark import flops, step_breakdown

    inputs = keras.Input((8, 8, 3))
    generator = keras.Model(inputs, keras.layers.Conv2D(4, 3, padding="same")(inputs))
    discriminator = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs))
    peaks = {"float32_flops_per_s": 1e9, "bfloat16_flops_per_s": 4e9, "bytes_per_s": 1e8}
    floor = step_breakdown.floors(generator, discriminator, 2, "float32", peaks)
    g_flops = flops.conv_forward_flops(generator, 2)
    d_flops = 2 * flops.conv_forward_flops(discriminator, 2)
    assert floor["generator forward"] == pytest.approx(g_flops / 1e9)
    assert floor["backward"] == pytest.approx(2 * (g_flops + d_flops) / 1e9)
    parameters = (3 * 3 * 3 * 4 + 4) + (3 + 1)
    assert floor["optimizer update"] == pytest.approx(28 * parameters / 1e8)
    mixed = step_breakdown.floors(generator, discriminator, 2, "mixed_bfloat16", peaks)
    assert mixed["generator forward"] == pytest.approx(g_flops / 4e9 + 6 * 112 / 1e8)


def test_layers_times_each_convolution_against_its_floor(capsys):
    argv = ["--preset", "tiny", "--layers", "--steps", "2", "--json"]
    assert train_benchmark.main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    config = config_lib.build_config(preset="tiny")
    generator = build_generator(**config_lib.generator_arguments(config))
    discriminator = build_discriminator(**config_lib.discriminator_arguments(config))
    convolutions = [
        layer.name
        for model in (generator, discriminator)
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Conv2DTranspose)
    ]
    assert [row["layer"] for row in result["layers"]] == convolutions
    assert result["skipped"] == 0
    for row in result["layers"]:
        assert row["ms"] > 0 and row["floor_ms"] > 0, row
        assert row["x_floor"] == pytest.approx(row["ms"] / row["floor_ms"])
        assert row["path"] in ("kernel", "matmul", "matmul float32"), row
    # The U-Net's small maps take the matmul path, the first layer oneDNN's kernel.
    paths = {row["layer"]: row["path"] for row in result["layers"]}
    assert paths["encoder_1_conv"] == "kernel"
    assert paths["encoder_3_conv"].startswith("matmul")


def test_matmul_limits_are_side_by_side_variants(capsys):
    args = train_benchmark.parse_args(["--preset", "tiny", "--matmul_limits", "default", "amx"])
    found = train_benchmark.variants(args)
    assert list(found) == ["tutorial", "ours", "ours, matmul limits amx"]
    assert found["ours"]["matmul_limits"] == "default"
    assert found["ours, matmul limits amx"]["matmul_limits"] == "amx"
    assert found["ours"]["config"] == found["ours, matmul limits amx"]["config"]
    default = train_benchmark.variants(train_benchmark.parse_args([]))
    assert default["ours"]["matmul_limits"] == "auto"
    with pytest.raises(SystemExit):
        train_benchmark.parse_args(["--matmul_limits", "avx"])
    assert "--matmul_limits" in capsys.readouterr().err
