"""Evaluates a generator over a whole split: L1, PSNR, SSIM, the FCN-score, FID and KID.

The FCN-score (the paper's section 4.2) applies a segmentation network trained on
real photos to the generated photos and scores its labels against the input label
maps. Scoring the real photos the same way gives the "ground truth" row, the
ceiling that the segmenter itself allows. FID and KID (fid.py) compare InceptionV3's
features of the generated images with those of the real target images of the split.
"""

from __future__ import annotations

import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf import files, models
from pix2pix_tf.configs.choices import check_choices
from pix2pix_tf.data import cityscapes_labels, prepare, registry
from pix2pix_tf.data import pipeline as input_pipeline
from pix2pix_tf.data.prepared import PreparedDataset
from pix2pix_tf.evaluation import fid, metrics, reports
from pix2pix_tf.evaluation import segmenter as segmentation
from pix2pix_tf.evaluation.options import EvalOptions
from pix2pix_tf.models import losses
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.runs import gallery as gallery_lib
from pix2pix_tf.runs import grids
from pix2pix_tf.runs.progress import Progbar
from pix2pix_tf.serving import sizes, tiling
from pix2pix_tf.serving.options import parse_tile

EVAL_DIR = "evaluation"
# EvalOptions lives in evaluation/options.py, so that evaluate.py builds its flags without
# TensorFlow.
DEFAULT_OPTIONS = EvalOptions()
# One row of the gallery: (key, input, generated, target), the images uint8 HxWx3.
GalleryRow = tuple[str, np.ndarray, np.ndarray, np.ndarray]


def fcn_applies(config: config_lib.Config) -> bool:
    """Colour label maps of the Cityscapes palette in, RGB photos out."""
    info = registry.dataset_info(config.data.dataset)
    rgb = config.data.input_channels == 3 and config.data.output_channels == 3
    return info.cityscapes_palette and config.data.direction == info.natural_direction and rgb


def fcn_segmenter(config: config_lib.Config, options: EvalOptions) -> keras.Model | None:
    """The run's FCN-score segmenter as options.fcn asks: None when off, when the score
    does not apply, or (with `auto`, after one printed line) when none is trained; with
    `on` those last two raise ValueError / FileNotFoundError."""

    check_choices(options)
    if options.fcn == "off":
        return None
    if not fcn_applies(config):
        if options.fcn == "on":
            raise ValueError(
                f"--fcn on: the FCN-score needs Cityscapes-palette label maps as input and RGB "
                f"photos as output ({', '.join(registry.palette_datasets())} in their natural "
                f"direction, 3 channels each); this run is {config.data.dataset} "
                f"{config.data.direction}, {config.data.input_channels} -> "
                f"{config.data.output_channels} channels."
            )
        return None
    try:
        return segmentation.load_segmenter(
            config.data.dataset, config.data.image_size, options.segmenter_root
        )
    except (FileNotFoundError, segmentation.DamagedSegmenterError) as error:
        if options.fcn == "on":
            raise
        print(f"FCN-score skipped: {error}")
        return None


def native_generator(config: config_lib.Config, generator: keras.Model) -> keras.Model:
    """The fully convolutional copy of `generator` (its weights, inputs of any size)."""
    copy = models.build_generator(
        **config_lib.generator_arguments(config),
        input_shape=(None, None, config.data.input_channels),
    )
    copy.set_weights(generator.get_weights())
    return copy


def generate_padded(generator: keras.Model, inputs: tf.Tensor, multiple: int) -> tf.Tensor:
    """[N, h, w, C_in] -> [N, h, w, C_out]: reflect-padded to multiples of `multiple`,
    cropped back."""

    size = tf.shape(inputs)[1:3]
    # reflect_pad pads the two leading axes: [N, h, w, C] -> [h, w, N, C] and back.
    padded = sizes.reflect_pad(tf.transpose(inputs, [1, 2, 0, 3]), multiple)
    generated = generator(tf.transpose(padded, [2, 0, 1, 3]), training=False)
    return tf.cast(generated[:, : size[0], : size[1]], tf.float32)


def cover_crop(images: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """[N, h, w, C] scaled (bilinear) to cover `size`, then its centre crop: [N, H, W, C].

    As the evaluation pipeline fits pairs to the training size; same aspect: a resize.
    """
    shape = tf.cast(tf.shape(images)[1:3], tf.float32)
    scale = tf.reduce_max(tf.constant(size, tf.float32) / shape)
    covered = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), size)
    images = tf.image.resize(images, covered, method="bilinear")
    top, left = ((covered[axis] - size[axis]) // 2 for axis in (0, 1))
    return images[:, top : top + size[0], left : left + size[1]]


def make_scorer(
    generator: keras.Model, segmenter: keras.Model | None = None, pad_multiple: int | None = None
):
    """Returns score(inputs, targets) -> (generated, per-example metrics, confusions).

    One tf.function per (generator, segmenter): the periodic evaluator builds it
    once, so evaluations after the first reuse its traced graph. With
    `pad_multiple`, `generator` is fully convolutional and runs at each batch's own
    size (generate_padded); the FCN-score resizes to the segmenter's size.
    """

    @tf.function(reduce_retracing=pad_multiple is not None)
    def score(inputs, targets):
        if pad_multiple is None:
            generated = tf.cast(generator(inputs, training=False), tf.float32)
        else:
            generated = generate_padded(generator, inputs, pad_multiple)
        return measure(inputs, targets, generated, segmenter, native=pad_multiple is not None)

    return score


def measure(inputs, targets, generated, segmenter: keras.Model | None, native: bool):
    """(generated, per-example metrics, FCN confusions) of generated images against their
    targets; at `native` size the FCN-score resizes to the segmenter's size."""
    values = {
        "l1": losses.l1_loss(generated, targets),
        "psnr": metrics.psnr(generated, targets),
        "ssim": metrics.ssim(generated, targets),
    }
    confusions = {}
    if segmenter is not None:
        label_maps, photos = inputs, {"generated": generated, "real": targets}
        if native:
            size = tuple(segmenter.inputs[0].shape[1:3])
            label_maps = cover_crop(inputs, size)
            photos = {name: cover_crop(image, size) for name, image in photos.items()}
        labels = cityscapes_labels.colors_to_labels(label_maps)
        for name, photo in photos.items():
            predictions = tf.argmax(segmenter(photo, training=False), axis=-1)
            confusions[name] = metrics.confusion_matrix(
                labels, predictions, cityscapes_labels.NUM_CLASSES
            )
    return generated, values, confusions


def make_tiled_scorer(
    generator: keras.Model,
    segmenter: keras.Model | None,
    pad_multiple: int,
    minimum_side: int,
    tile_hw: tuple[int, int],
    overlap: int,
    instance_norm: bool = False,
    tile_statistics: str = "auto",
):
    """make_scorer's score(inputs, targets) with each image generated tile by tile
    (serving/tiling.py) by the fully convolutional `generator`, then measured as at native
    size; with `instance_norm`, normalised as `tile_statistics` says
    (tiling.ImageStatistics). Raises ValueError (naming --tile / --overlap /
    --tile_statistics) for settings it cannot run."""
    forward = tf.function(
        lambda images: tf.cast(generator(images, training=False), tf.float32),
        reduce_retracing=True,
    )
    tiled = tiling.TiledModel(
        generate=lambda images: forward(tf.constant(images)).numpy(),
        input_channels=int(generator.inputs[0].shape[-1]),
        output_channels=int(generator.outputs[0].shape[-1]),
        pad_multiple=pad_multiple,
        min_side=minimum_side,
        per_image_statistics=instance_norm,
        network=generator,
    )
    tiling.check_tile(tile_hw, overlap, tiled)
    tiled = tiled.with_statistics(tile_statistics)
    measured = tf.function(
        lambda inputs, targets, generated: measure(
            inputs, targets, generated, segmenter, native=True
        ),
        reduce_retracing=True,
    )

    def score(inputs, targets):
        generated = np.stack(
            [tiling.generate_tiled(tiled, image, tile_hw, overlap) for image in inputs.numpy()]
        )
        return measured(inputs, targets, tf.constant(generated))

    return score


class _Totals:
    """What evaluate_generator accumulates over the batches: the metric sums, the FCN
    confusion matrices, FID/KID's features (with `distance`) and the first
    `gallery_size` (key, input, generated, target) rows, as display images."""

    def __init__(self, distance: fid.FeatureDistance | None, gallery_size: int):
        self.sums = {"l1": 0.0, "psnr": 0.0, "ssim": 0.0}
        self.confusions: dict[str, np.ndarray] = {}
        self.distance = distance
        self.gallery_size = gallery_size
        self.gallery: list[GalleryRow] = []
        self.count = 0
        self.started = time.perf_counter()

    def add(self, inputs, targets, keys, generated, values, confusions) -> None:
        """One batch: its scorer's outputs, and the pairs and keys it scored."""
        for name in self.sums:
            self.sums[name] += float(tf.reduce_sum(values[name]))
        for name, confusion in confusions.items():
            self.confusions[name] = self.confusions.get(name, 0) + confusion.numpy()
        if self.distance is not None:
            self.distance.update(generated, targets)
        if len(self.gallery) < self.gallery_size:
            room = self.gallery_size - len(self.gallery)
            for key, images in zip(
                keys.numpy()[:room],
                zip(*(grids.to_display(x) for x in (inputs, generated, targets)), strict=True),
                strict=False,
            ):
                self.gallery.append((key.decode(), *images))
        self.count += int(inputs.shape[0])

    def results(self, eval_size: str) -> dict[str, float]:
        """The means, FID/KID, the seconds since the totals started and the FCN-scores."""
        results: dict[str, float] = {name: value / self.count for name, value in self.sums.items()}
        results["examples"] = self.count
        results["eval_size"] = eval_size
        if self.distance is not None:
            results.update(self.distance.result())
        results["seconds"] = time.perf_counter() - self.started
        for name, confusion in self.confusions.items():
            scores = metrics.segmentation_scores(confusion)
            results[f"fcn_{name}_per_pixel_accuracy"] = scores.per_pixel_accuracy
            results[f"fcn_{name}_per_class_accuracy"] = scores.per_class_accuracy
            results[f"fcn_{name}_class_iou"] = scores.class_iou
        return results


def evaluate_generator(
    config: config_lib.Config,
    dataset: PreparedDataset,
    generator: keras.Model,
    options: EvalOptions = DEFAULT_OPTIONS,
    segmenter: keras.Model | None = None,
    score=None,
    features: fid.InceptionFeatures | None = None,
) -> tuple[dict[str, float], list[GalleryRow]]:
    """Scores `generator` over a split of the prepared `dataset`; returns (metrics, gallery).

    The gallery is the split's first options.gallery_size rows (none with 0).
    `score` is a make_scorer(generator, segmenter) function to reuse, if any; with
    `features`, FID and KID of the generated against the target images too.
    With options.eval_size "native", `generator` is the training-size generator and
    a fully convolutional copy of it scores the pairs at their own size.
    """

    check_choices(options)
    native = options.eval_size == "native"
    split = options.split or dataset.eval_split
    batches = input_pipeline.build_dataset(
        dataset,
        split,
        training=False,
        batch_size=options.batch_size,
        with_keys=True,
        native_size=native,
    )
    total = dataset.num_examples(split)
    if options.max_examples is not None:
        total = min(total, options.max_examples)
        batches = batches.unbatch().take(total)
        if native:
            batches = input_pipeline.batch_by_size(batches, options.batch_size)
        else:
            batches = batches.batch(options.batch_size)
    if score is None and native:
        multiple = models.pad_multiple(**config_lib.pad_multiple_arguments(config))
        if options.tile is not None:
            score = make_tiled_scorer(
                native_generator(config, generator),
                segmenter,
                multiple,
                tiling.min_side(config.model.generator, multiple),
                parse_tile(options.tile),
                options.overlap,
                instance_norm=config.model.norm == "instance",
                tile_statistics=options.tile_statistics,
            )
        else:
            score = make_scorer(native_generator(config, generator), segmenter, multiple)
    score = score or make_scorer(generator, segmenter)

    progress = Progbar(total, unit_name="image")
    totals = _Totals(features.distance() if features is not None else None, options.gallery_size)
    for inputs, targets, keys in batches:
        generated, values, confusions = score(inputs, targets)
        totals.add(inputs, targets, keys, generated, values, confusions)
        progress.update(totals.count)
    if totals.count == 0:
        raise ValueError(f"split {split!r} of {config.data.dataset} has no examples.")
    return totals.results(options.eval_size), totals.gallery


def write_scalars(writer, results: dict, split: str, step: int) -> None:
    """The float metrics as TensorBoard scalars `<split>/<name>`."""
    with writer.as_default(step=step):
        for name, value in results.items():
            if isinstance(value, float) and name != "seconds":
                tf.summary.scalar(f"{split}/{name}", value)
    writer.flush()


def _load_features(mode: str, weights: str | None, flag: str, feature_model):
    """InceptionFeatures of `feature_model` (a stand-in) or of InceptionV3; None if off/skipped."""
    if mode == "off":
        return None
    model = feature_model or fid.load_inception(mode, weights, flag)
    return fid.InceptionFeatures(model) if model is not None else None


def periodic_evaluator(
    config: config_lib.Config,
    generator: keras.Model,
    writer,
    *,
    dataset: PreparedDataset,
    feature_model=None,
):
    """Returns evaluate(step) for the training loop (--eval_every, --eval_examples, --eval_fid).

    `dataset` is the run's prepared data (the trainer's); `feature_model` stands in
    for InceptionV3 (tests); None: InceptionV3 per --eval_fid.
    """
    # At the training size: one traced graph for the whole run.
    # No gallery: the periodic evaluation writes scalars only.
    options = EvalOptions(
        max_examples=config.train.eval_examples, eval_size="training", gallery_size=0
    )
    split = dataset.eval_split
    segmenter = fcn_segmenter(config, options)
    score = make_scorer(generator, segmenter)
    features = _load_features(config.train.eval_fid, None, "--eval_fid", feature_model)
    keep_best = config.train.keep_best
    if keep_best == "fcn_per_pixel_accuracy" and segmenter is None:
        raise ValueError(
            f"--keep_best {keep_best}: the periodic evaluation has no FCN-score (it needs "
            "Cityscapes-palette label maps in and a trained segmenter: "
            "python -m pix2pix_tf.segmentation); keep the best by another metric."
        )
    if keep_best in ("fid", "kid") and features is None:
        raise ValueError(
            f"--keep_best {keep_best}: the periodic evaluation has no FID/KID (the "
            "InceptionV3 weights are not in the Keras cache; see docs/evaluation.md)."
        )

    def evaluate(step: int) -> dict[str, float]:
        results, _ = evaluate_generator(
            config, dataset, generator, options, segmenter, score=score, features=features
        )
        write_scalars(writer, results, split, step)
        print(f"eval at step {step}: " + format_report({**results, "split": split, "step": step}))
        return results

    return evaluate


def evaluate(
    workdir: str,
    options: EvalOptions = DEFAULT_OPTIONS,
    checkpoint_path: str | None = None,
    feature_model=None,
) -> tuple[dict[str, float], str]:
    """Evaluates a run's checkpoint; writes metrics.json, a gallery and TensorBoard scalars.

    `feature_model` stands in for InceptionV3 (tests). Returns (metrics, output directory).
    """

    config, generator, checkpoint_path = run_dir.restore_generator(workdir, checkpoint_path)
    step = run_dir.checkpoint_step(checkpoint_path)
    dataset = prepare.prepare(config.data)
    split = options.split or dataset.eval_split
    segmenter = fcn_segmenter(config, options)
    features = _load_features(options.fid, options.inception_weights, "--fid", feature_model)
    results, gallery = evaluate_generator(
        config, dataset, generator, options, segmenter, features=features
    )
    results.update(step=step, split=split, checkpoint=os.path.basename(checkpoint_path))
    if options.tile is not None:
        results.update(
            tile=options.tile, overlap=options.overlap, tile_statistics=options.tile_statistics
        )

    output_dir = os.path.join(workdir, EVAL_DIR, f"{split}_step{step:07d}")
    os.makedirs(output_dir, exist_ok=True)
    files.write_atomic(
        os.path.join(output_dir, "metrics.json"), json.dumps(results, indent=2, sort_keys=True)
    )
    title = f"{config.data.dataset} {split}, step {step}"
    gallery_lib.write_gallery(output_dir, gallery, title, summary=results)
    if gallery:
        # The first gallery rows (key dropped): input | generated | target; at native
        # size, those of the first row's size.
        grid = grids.tile_rows(
            [row[1:] for row in gallery if row[1].shape == gallery[0][1].shape][:8]
        )
        grids.save_png(grid, os.path.join(output_dir, "grid.png"))
    train_events = os.path.join(workdir, "train")
    if os.path.isdir(train_events):
        try:
            reports.plot_loss_curves(train_events, os.path.join(output_dir, "loss_curves.png"))
        except ValueError as error:
            print(f"Loss curves skipped: {error}")
    # Training-size metrics continue the periodic evaluation's `<split>/` series;
    # native-size ones (other pixels, other numbers) get their own `<split>_native/`.
    # Tiled ones (--tile) their own `<split>_tiled/`.
    tag = split if options.eval_size == "training" else f"{split}_native"
    tag = f"{split}_tiled" if options.tile is not None else tag
    write_scalars(tf.summary.create_file_writer(os.path.join(workdir, "eval")), results, tag, step)
    return results, output_dir


def format_report(results: dict) -> str:
    """The console table: image metrics, then the FCN-score rows."""
    lines = [
        f"{results.get('split', '')} ({results['examples']} examples, step {results.get('step')}, "
        f"{results.get('eval_size', 'training')} size):",
        f"  L1 {results['l1']:.4f}   PSNR {results['psnr']:.2f} dB   SSIM {results['ssim']:.4f}",
    ]
    if "fcn_generated_per_pixel_accuracy" in results:
        lines.append("  FCN-score          per-pixel acc.  per-class acc.  class IoU")
        for row, name in (("ground truth", "real"), ("this model", "generated")):
            lines.append(
                f"  {row:18s} {results[f'fcn_{name}_per_pixel_accuracy']:14.3f}  "
                f"{results[f'fcn_{name}_per_class_accuracy']:14.3f}  "
                f"{results[f'fcn_{name}_class_iou']:9.3f}"
            )
    if "fid" in results:
        lines.append(
            f"  FID {results['fid']:.2f}   KID {results['kid']:.4f} ± {results['kid_std']:.4f}"
            "   (InceptionV3: generated vs real targets)"
        )
    return "\n".join(lines)
