"""The tf.data input pipeline on small datasets the tests prepare themselves."""

import dataclasses
import os

import data_factory
import numpy as np
import pipeline_helpers
import pytest
import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf.data import pipeline as input_pipeline
from pix2pix_tf.data import prepare
from pix2pix_tf.data.datasets import synthetic

TRAIN, VAL = 8, 5


@pytest.fixture(scope="module")
def streets(tmp_path_factory):
    """A prepared tiny synthetic dataset at 32x32 (load size 36)."""
    config = config_lib.DataConfig(
        data_dir=str(tmp_path_factory.mktemp("tfrecords")),
        synthetic_train_examples=TRAIN,
        synthetic_val_examples=VAL,
        image_size=32,
        load_size=36,
        shuffle_buffer=16,
    )
    prepare.prepare(config)
    return config


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """Side-by-side pairs whose two halves are identical (40 wide, 30 high)."""
    root = tmp_path_factory.mktemp("twins")
    for split, count in (("train", 6), ("val", 2)):
        os.makedirs(root / "pairs" / split)
        for index in range(count):
            half = data_factory.random_pixels(index, 30, 40)
            data = data_factory.encode(np.concatenate([half, half], axis=1), "PNG")
            (root / "pairs" / split / f"{index}.png").write_bytes(data)
    config = config_lib.DataConfig(
        dataset="folder",
        source_dir=str(root / "pairs"),
        data_dir=str(root / "tfrecords"),
        image_size=16,
        load_size=24,
    )
    prepare.prepare(config)
    return config


def _batches(dataset, count=None):
    if count is not None:
        dataset = dataset.take(count)
    return [tuple(np.asarray(part) for part in batch) for batch in dataset]


def test_records_keep_the_original_bytes_and_keys(streets):
    files, side_by_side = pipeline_helpers.split_files(streets, "train")
    assert side_by_side and len(files) == 4
    keys = []
    for serialized in tf.data.TFRecordDataset(files):
        features = input_pipeline.parse(serialized, side_by_side=True)
        key = features["key"].numpy().decode()
        index = int(key.split("/")[1].split(".")[0])
        assert features["image"].numpy() == synthetic.encode_pair(0, "train", index)
        keys.append(key)
    assert sorted(keys) == [f"train/{index:06d}.jpg" for index in range(TRAIN)]
    assert pipeline_helpers.num_examples(streets, "train") == TRAIN


def test_preprocessing_eagerly_and_in_tf_data_agree(streets):
    files, _ = pipeline_helpers.split_files(streets, "train")
    records = [record.numpy() for record in tf.data.TFRecordDataset(files)]

    def train_fn(index, record):
        a, b = input_pipeline.decode_pair(input_pipeline.parse(record, True))
        key = input_pipeline.jitter_key(7, 0, index)
        return input_pipeline.preprocess_train(
            a, b, key, **pipeline_helpers.train_arguments(streets)
        )

    def eval_fn(record):
        a, b = input_pipeline.decode_pair(input_pipeline.parse(record, True))
        return input_pipeline.preprocess_eval(a, b, **pipeline_helpers.eval_arguments(streets))

    dataset = tf.data.Dataset.from_tensor_slices(records)
    in_graph = _batches(dataset.enumerate().map(train_fn, num_parallel_calls=4))
    in_graph_eval = _batches(dataset.map(eval_fn))
    for index, record in enumerate(records):
        eager = train_fn(tf.constant(index, tf.int64), tf.constant(record))
        np.testing.assert_allclose(eager[0], in_graph[index][0], atol=1e-6)
        np.testing.assert_allclose(eager[1], in_graph[index][1], atol=1e-6)
        eager_eval = eval_fn(tf.constant(record))
        np.testing.assert_allclose(eager_eval[0], in_graph_eval[index][0], atol=1e-6)


def test_jitter_crops_and_mirrors_both_halves_identically(twins):
    dataset = pipeline_helpers.build(twins, "train", training=True, batch_size=3, seed=3)
    batches = _batches(dataset, 6)
    for inputs, targets in batches:
        assert inputs.shape == (3, 16, 16, 3)
        np.testing.assert_array_equal(inputs, targets)
    # The jitter does vary: the same pair comes out differently across epochs.
    evaluated = _batches(pipeline_helpers.build(twins, "train", training=False, batch_size=6))
    outputs = np.concatenate([inputs for inputs, _ in batches])
    assert not any(np.allclose(out, ref) for out in outputs for ref in evaluated[0][0])


def test_jitter_matches_resize_then_crop_then_mirror(streets):
    """--resize_mode squash: each half resized to 36x36 whatever its aspect (the paper's)."""
    a = tf.constant(data_factory.random_pixels(1, 30, 30))
    b = tf.constant(data_factory.random_pixels(2, 20, 24))
    key = input_pipeline.jitter_key(0, 0, tf.constant(5, tf.int64))
    squash = dataclasses.replace(streets, resize_mode="squash")
    out_a, out_b = input_pipeline.preprocess_train(
        a, b, key, **pipeline_helpers.train_arguments(squash)
    )
    random = tf.random.stateless_uniform([3], seed=key).numpy()
    top, left = (np.minimum(random[:2] * 5, 4)).astype(int)
    for image, out in ((a, out_a), (b, out_b)):
        if random[2] < 0.5:
            image = image[:, ::-1]
        expected = tf.image.resize(image, [36, 36])[top : top + 32, left : left + 32] / 127.5 - 1
        np.testing.assert_allclose(out, expected, atol=1e-5)
    # A square half comes out the same in the default cover mode.
    cover_a, _ = input_pipeline.preprocess_train(
        a, b, key, **pipeline_helpers.train_arguments(streets)
    )
    np.testing.assert_array_equal(cover_a, out_a)


def _ramps(height: int, width: int) -> tf.Tensor:
    """uint8 [height, width, 3]: red = column, green = row, blue 0."""
    rows, columns = np.mgrid[0:height, 0:width]
    return tf.constant(np.stack([columns, rows, 0 * rows], axis=-1).astype(np.uint8))


def _slopes(image) -> tuple[float, float]:
    """Mean change per pixel of the column ramp along columns and the row ramp along rows."""
    image = np.asarray(image) * 127.5 + 127.5
    return np.diff(image[..., 0], axis=1).mean(), np.diff(image[..., 1], axis=0).mean()


@pytest.mark.parametrize("image_size, load_size", [(32, 36), ("16x32", "18x36")])
def test_cover_keeps_the_aspect_of_pairs_that_differ_from_the_size(streets, image_size, load_size):
    """A 2:1 pair trained at 32x32 (or a square pair at 16x32) is cropped, never squashed."""
    shape = (40, 80) if image_size == 32 else (64, 64)
    config = dataclasses.replace(streets, image_size=image_size, load_size=load_size)
    height, width = config_lib.image_hw(config)
    pair = _ramps(*shape)
    for index in range(4):
        key = input_pipeline.jitter_key(0, 0, tf.constant(index, tf.int64))
        for mode, kept in (("cover", True), ("squash", False)):
            moded = dataclasses.replace(config, resize_mode=mode, random_mirror=False)
            train, _ = input_pipeline.preprocess_train(
                pair, pair, key, **pipeline_helpers.train_arguments(moded)
            )
            evaluated, _ = input_pipeline.preprocess_eval(
                pair, pair, **pipeline_helpers.eval_arguments(moded)
            )
            for out in (train, evaluated):
                assert out.shape == (height, width, 3)
                along_columns, along_rows = _slopes(out)
                assert np.isclose(along_columns, along_rows, rtol=0.05) == kept, mode
    # Evaluation takes the centre: a 40x80 pair at 32x32 keeps columns 20..59 scaled by 0.8.
    if image_size == 32:
        evaluated, _ = input_pipeline.preprocess_eval(
            pair, pair, **pipeline_helpers.eval_arguments(config)
        )
        centre = np.asarray(evaluated)[..., 0] * 127.5 + 127.5
        assert abs(centre[:, 0].mean() - 20.6) < 1 and abs(centre[:, -1].mean() - 58.4) < 1


def test_no_jitter_no_mirror_is_plain_resize(streets):
    plain = dataclasses.replace(streets, random_jitter=False, random_mirror=False)
    train = _batches(pipeline_helpers.build(plain, "val", training=True, batch_size=VAL), 1)
    evaluated = _batches(pipeline_helpers.build(plain, "val", training=False, batch_size=VAL))
    # Same examples (different order): each training output is an eval output.
    for image in train[0][0]:
        assert any(np.allclose(image, ref, atol=1e-6) for ref in evaluated[0][0])


def test_directions_swap_input_and_target(streets):
    def first_batch(direction):
        config = dataclasses.replace(streets, direction=direction)
        return _batches(pipeline_helpers.build(config, "val", training=False, batch_size=2))[0]

    a_to_b, b_to_a = first_batch("AtoB"), first_batch("BtoA")
    np.testing.assert_array_equal(a_to_b[0], b_to_a[1])
    np.testing.assert_array_equal(a_to_b[1], b_to_a[0])
    # The synthetic streets' natural direction is BtoA: the label map is the input.
    assert streets.direction is None and prepare.prepare(streets).direction == "BtoA"
    with pytest.raises(ValueError, match="--direction"):
        input_pipeline.select_direction(a_to_b[0], a_to_b[1], "sideways")


def test_evaluation_is_one_fixed_pass_keeping_the_last_batch(streets):
    dataset = pipeline_helpers.build(streets, "val", training=False, batch_size=2, with_keys=True)
    first, second = _batches(dataset), _batches(dataset)
    assert [len(batch[0]) for batch in first] == [2, 2, 1]
    for one, two in zip(first, second, strict=True):
        np.testing.assert_array_equal(one[0], two[0])
        np.testing.assert_array_equal(one[2], two[2])
    keys = np.concatenate([batch[2] for batch in first])
    assert sorted(keys.tolist()) == [f"val/{index:06d}.jpg".encode() for index in range(VAL)]
    for inputs, _, _ in first:
        assert inputs.dtype == np.float32 and inputs.shape[1:] == (32, 32, 3)
        assert inputs.min() >= -1.0 and inputs.max() <= 1.0


def test_training_is_endless_shuffled_and_equal_sized(streets):
    dataset = pipeline_helpers.build(streets, "train", training=True, batch_size=3)
    assert dataset.element_spec[0].shape == (3, 32, 32, 3)
    batches = _batches(dataset, 3 * TRAIN)  # Nine epochs' worth.
    assert len(batches) == 3 * TRAIN
    values = np.concatenate([inputs for inputs, _ in batches])
    assert values.min() >= -1.0 and values.max() <= 1.0


def test_same_seed_same_batches_other_seed_other_batches(streets):
    def run(seed):
        dataset = pipeline_helpers.build(streets, "train", training=True, batch_size=2, seed=seed)
        return np.concatenate([inputs for inputs, _ in _batches(dataset, 10)])

    first = run(1)
    np.testing.assert_array_equal(first, run(1))
    assert not np.array_equal(first, run(2))


def _train_batches(config, count, *, start_step=0, context=None, batch_size=3, seed=4):
    dataset = pipeline_helpers.build(
        config,
        "train",
        training=True,
        batch_size=batch_size,
        seed=seed,
        start_step=start_step,
        input_context=context,
        with_keys=True,
    )
    return _batches(dataset, count)


def _assert_same_batches(got, want):
    assert len(got) == len(want)
    for got_batch, want_batch in zip(got, want, strict=True):
        for got_part, want_part in zip(got_batch, want_batch, strict=True):
            np.testing.assert_array_equal(got_part, want_part)


@pytest.mark.parametrize("cached", [False, True])
def test_a_stream_started_at_a_step_is_the_rest_of_the_stream(streets, cached):
    """Mid-epoch, at an epoch's end and epochs later: the same batches, jitter included."""
    config = _cached(streets) if cached else streets
    stream = _train_batches(config, 14)  # 42 examples: five epochs of 8 and more.
    for step in (1, 3, 8, 11):  # Examples 3, 9, 24 (whole epochs), 33.
        _assert_same_batches(_train_batches(config, 3, start_step=step), stream[step:][:3])
    keys = np.concatenate([batch[2] for batch in stream])
    epochs = [tuple(keys[index : index + TRAIN].tolist()) for index in range(0, 40, TRAIN)]
    assert all(sorted(epoch) == sorted(epochs[0]) for epoch in epochs)  # Whole epochs,
    assert len(set(epochs)) > 1  # each in its own order.


@pytest.mark.parametrize("pipelines", [2, 5])
def test_each_pipeline_started_at_a_step_continues_its_stream(streets, pipelines):
    """Per-replica batches: a step takes one batch from each replica a pipeline feeds."""
    replicas = 2 * pipelines  # Two replicas per input pipeline (per worker).
    for pipeline in range(pipelines):
        context = tf.distribute.InputContext(pipelines, pipeline, replicas)
        batch_size = replicas  # One example per replica and step.
        stream = _train_batches(streets, 8, context=context, batch_size=batch_size)
        resumed = _train_batches(streets, 4, start_step=2, context=context, batch_size=batch_size)
        _assert_same_batches(resumed, stream[4:])  # 2 steps x 2 replicas = 4 batches.


def test_a_moved_copy_of_the_data_continues_the_same_stream(streets, tmp_path):
    """Nothing of the stream depends on where the prepared data lives."""
    import shutil

    moved = tmp_path / "elsewhere"
    shutil.copytree(streets.data_dir, moved)
    stream = _train_batches(streets, 6)
    elsewhere = dataclasses.replace(streets, data_dir=str(moved))
    _assert_same_batches(_train_batches(elsewhere, 3, start_step=3), stream[3:])


def test_more_input_pipelines_than_examples_is_a_clear_error(streets):
    context = tf.distribute.InputContext(TRAIN + 1, TRAIN, TRAIN + 1)
    with pytest.raises(ValueError, match=r"input pipeline 8 of 9 gets none of the split's 8"):
        pipeline_helpers.build(
            streets, "train", training=True, batch_size=TRAIN + 1, input_context=context
        )


@pytest.mark.parametrize("pipelines", [2, 5])
def test_input_context_shards_without_overlap(streets, pipelines):
    # The train split has 4 shards: 2 pipelines shard by file, 5 by record.
    keys, sizes = [], set()
    for pipeline in range(pipelines):
        context = tf.distribute.InputContext(
            num_input_pipelines=pipelines,
            input_pipeline_id=pipeline,
            num_replicas_in_sync=pipelines,
        )
        dataset = pipeline_helpers.build(
            streets,
            "train",
            training=False,
            batch_size=pipelines * 2,
            input_context=context,
            with_keys=True,
        )
        for _, _, batch_keys in _batches(dataset):
            sizes.add(len(batch_keys))
            keys.extend(batch_keys.tolist())
    assert sorted(keys) == [f"train/{index:06d}.jpg".encode() for index in range(TRAIN)]
    assert max(sizes) == 2  # Per-replica batches.


def test_training_pipelines_use_different_randomness(streets):
    def first(pipeline):
        context = tf.distribute.InputContext(2, pipeline, 2)
        dataset = pipeline_helpers.build(
            streets, "train", training=True, batch_size=2, input_context=context
        )
        return _batches(dataset, 1)[0][0]

    assert not np.array_equal(first(0), first(1))


def test_odd_width_pairs_lose_the_middle_column():
    pixels = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)
    data = tf.io.encode_png(tf.constant(pixels))
    a, b = input_pipeline.decode_pair({"image": data})
    np.testing.assert_array_equal(a, pixels[:, :2])
    np.testing.assert_array_equal(b, pixels[:, 3:])


def test_unprepared_dataset_and_unknown_split_are_clear_errors(streets, tmp_path):
    missing = dataclasses.replace(streets, data_dir=str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="python -m pix2pix_tf.prepare"):
        prepare.load_prepared(missing)  # Reading never prepares.
    assert not os.path.exists(missing.data_dir)
    with pytest.raises(ValueError, match="no 'test' split"):
        pipeline_helpers.build(streets, "test", training=False, batch_size=1)


def _cached(config, **overrides):
    return dataclasses.replace(config, cache_decoded=True, **overrides)


def test_cached_training_matches_uncached_preprocessing(streets, twins):
    for inputs, targets in _batches(
        pipeline_helpers.build(_cached(twins), "train", training=True, batch_size=3), 4
    ):
        np.testing.assert_array_equal(inputs, targets)
    plain = dict(random_jitter=False, random_mirror=False)
    cached = pipeline_helpers.build(
        _cached(streets, **plain), "train", training=True, batch_size=TRAIN, with_keys=True
    )
    evaluated = pipeline_helpers.build(
        dataclasses.replace(streets, **plain),
        "train",
        training=False,
        batch_size=TRAIN,
        with_keys=True,
    )
    reference = {key: image for image, _, key in zip(*_batches(evaluated)[0], strict=True)}
    for epoch in _batches(cached, 2):
        assert sorted(epoch[2].tolist()) == sorted(reference)  # Whole epochs, shuffled.
        for image, key in zip(epoch[0], epoch[2], strict=True):
            np.testing.assert_allclose(image, reference[key], atol=1e-6)


def test_cached_training_is_seeded(streets):
    def make(seed):
        return pipeline_helpers.build(
            _cached(streets), "train", training=True, batch_size=2, seed=seed
        )

    first = np.concatenate([inputs for inputs, _ in _batches(make(5), 8)])
    np.testing.assert_array_equal(first, np.concatenate([x for x, _ in _batches(make(5), 8)]))
    assert not np.array_equal(first, np.concatenate([x for x, _ in _batches(make(6), 8)]))


def test_cached_training_shards_by_pipeline(streets):
    keys = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(2, pipeline, 2)
        dataset = pipeline_helpers.build(
            _cached(streets),
            "train",
            training=True,
            batch_size=2 * TRAIN // 2,
            input_context=context,
            with_keys=True,
        )
        keys.extend(_batches(dataset, 1)[0][2].tolist())
    assert sorted(keys) == [f"train/{index:06d}.jpg".encode() for index in range(TRAIN)]


def test_cache_refuses_when_memory_is_short(streets, monkeypatch):
    from pix2pix_tf.data import cache as input_cache

    monkeypatch.setattr(input_cache, "_available_bytes", lambda: 1000)
    with pytest.raises(ValueError, match="--cache_decoded"):
        pipeline_helpers.build(_cached(streets), "train", training=True, batch_size=2)


def _docs_block(start: str, end: str) -> str:
    """docs/datasets.md's lines from the one starting with `start` through the one with `end`."""
    page = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "docs", "datasets.md")
    with open(page) as file:
        lines = file.read().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(start))
    last = next(i for i in range(first, len(lines)) if lines[i].startswith(end))
    return "\n".join(lines[first : last + 1])


def test_full_cityscapes_recipe_on_a_fake_release(tmp_path):
    """docs/datasets.md's recipe for the full release, on a small copy of its folder tree."""
    import subprocess

    road = np.array([128, 64, 128, 255], np.uint8)  # Cityscapes' road colour, RGBA.
    release = tmp_path / "release"
    frames = {"train": [("aachen", 19), ("aachen", 20), ("bonn", 3)], "val": [("lindau", 7)]}
    for split, names in frames.items():
        for index, (city, frame) in enumerate(names):
            stem = f"{city}_000000_{frame:06d}"
            photos = release / "leftImg8bit" / split / city
            labels = release / "gtFine" / split / city
            photos.mkdir(parents=True, exist_ok=True)
            labels.mkdir(parents=True, exist_ok=True)
            photo = data_factory.random_pixels(index, 32, 64)
            (photos / f"{stem}_leftImg8bit.png").write_bytes(data_factory.encode(photo, "PNG"))
            label = np.broadcast_to(road, (32, 64, 4)).copy()
            (labels / f"{stem}_gtFine_color.png").write_bytes(data_factory.encode(label, "PNG"))
            # Other gtFine files of the release are not linked.
            (labels / f"{stem}_gtFine_labelIds.png").write_bytes(
                data_factory.encode(label[..., 0], "PNG")
            )
    script = _docs_block("CITYSCAPES=", "done").replace("/data/cityscapes", str(release), 1)
    subprocess.run(["bash", "-c", script], cwd=tmp_path, check=True)
    assert len(os.listdir(tmp_path / "cityscapes_pairs" / "train")) == 6
    command = _docs_block("python train.py --dataset folder --source_dir cityscapes", "  --")
    command = command.replace("\\", " ").split()
    flags = dict(zip(command[2::2], command[3::2], strict=True))
    assert flags["--folder_layout"] == "suffix" and flags["--image_size"] == "256x512"
    config = config_lib.DataConfig(
        dataset="folder",
        source_dir=str(tmp_path / flags["--source_dir"]),
        folder_layout=flags["--folder_layout"],
        pair_suffixes=flags["--pair_suffixes"],
        data_dir=str(tmp_path / "tfrecords"),
        image_size="16x32",  # The recipe's 256x512, scaled to the fake frames.
    )
    prepare.prepare(config)
    config = config
    assert pipeline_helpers.num_examples(config, "train") == 3
    (inputs, targets, keys), *_ = _batches(
        pipeline_helpers.build(config, "val", training=False, batch_size=4, with_keys=True)
    )
    # AtoB: the colour label map (stored as A) is the input, the photo the target.
    assert inputs.shape == targets.shape == (1, 16, 32, 3)
    expected = np.broadcast_to(road[:3] / 127.5 - 1, (16, 32, 3))
    np.testing.assert_allclose(inputs[0], expected, atol=1e-6)
    assert np.std(targets) > 0.05 and b"lindau_000000_000007" in keys[0]
