"""The tile benchmark: its masks and picture, and a tiny run end to end (no timing
assertions)."""

import json
import os

import numpy as np
from export_fixtures import make_run

from pix2pix_tf.benchmark import __main__ as dispatcher
from pix2pix_tf.benchmark import tile_benchmark
from pix2pix_tf.serving import tiling


def _layout():
    model = tiling.TiledModel(lambda images: images, 3, 3, pad_multiple=8)
    return tiling.plan((100, 60), (32, 32), 8, model)


def test_masks_mosaic_and_picture():
    layout = _layout()
    overlaps, edges = tile_benchmark.coverage(layout), tile_benchmark.near_edges(layout, 4)
    assert overlaps.shape == edges.shape == (100, 60)
    # Row tiles start at 0, 24, 48, 72 (32 high): rows 24-31 are shared by two tiles.
    assert overlaps[24:32].all() and not overlaps[:24, :14].any()
    assert edges[20:28].all() and not edges[:20, :10].any()
    examples = [np.full((16, 16, 3), value, np.uint8) for value in (10, 200)]
    image = tile_benchmark.mosaic(examples, 50)
    assert image.shape == (50, 50, 3) and set(np.unique(image)) <= {10, 200}
    picture = tile_benchmark.grid_picture(np.zeros((100, 60, 3), np.uint8), image, layout, 40)
    assert picture.shape == (40, 3 * 40 + 2 * 8, 3)


def test_tile_benchmark_json(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    make_run(workdir, output_gain=20.0, data_dir=str(tmp_path / "tfrecords"))
    picture = str(tmp_path / "grid.png")
    arguments = ["tile", "--workdir", workdir, "--whole_size", "96", "--tile", "32"]
    arguments += ["--overlap", "8", "--skip_tiled_size", "--picture", picture, "--json"]
    arguments += ["--picture_crop", "64", "--examples", "2"]
    assert dispatcher.main(arguments) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["tiles_whole_size"] == 25 and results["effective_overlap"] == [16, 16]
    for run in ("whole", "tiled_whole_size"):
        assert results[run]["seconds"] > 0 and results[run]["peak_rss_mb"] > 0
    assert results["psnr_db"]["image"] > 30
    assert os.path.getsize(picture) > 0
