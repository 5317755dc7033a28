"""Multi-scale discriminators (pix2pixHD, Wang et al. 2018, section 3.2).

`--num_discriminators N` builds N PatchGANs (models/discriminator.py), each with
the configured --discriminator_layers, --ndf and --norm. Discriminator k sees the
(input, target) pair downsampled k - 1 times by a 3x3 average pool of stride 2
(pix2pixHD's `nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)`), so
at 512x1024 with N = 3 the 70x70 patches cover 70, 140 and 280 pixels of the
full image. The losses average over the discriminators (models/losses.py).

N = 1 is the single PatchGAN itself, layer for layer, so runs and checkpoints of
earlier versions are unchanged. N > 1 is one functional model named
`discriminator` holding sub-models `discriminator_1` (full size) ... `discriminator_N`,
and answering a list of N logit grids.
"""

from __future__ import annotations

import keras

from pix2pix_tf.configs import sizes
from pix2pix_tf.models import blocks
from pix2pix_tf.models import discriminator as patchgan


def scale_sizes(image_size: int | str, num_discriminators: int) -> list[tuple[int, int]]:
    """(H, W) each discriminator sees, full size first: 512x1024, 256x512, 128x256."""
    height, width = sizes.parse_size(image_size)
    scales = [(height, width)]
    for _ in range(num_discriminators - 1):
        height, width = (height + 1) // 2, (width + 1) // 2
        scales.append((height, width))
    return scales


def build_discriminator(config, *, dtype_policy: str = "float32") -> keras.Model:
    """The discriminator of `config`: the PatchGAN (N = 1) or N of them at 1, 1/2, 1/4 ... scale.

    Inputs `input_image` and `target_image` at --image_size; for N > 1 the output is
    a list of N float32 logit grids, grid k of shape
    [batch, *output_hw(scale_sizes(...)[k], n), 1].
    """
    count = config.model.num_discriminators
    if count == 1:
        return patchgan.build_discriminator(config, dtype_policy=dtype_policy)
    sizes = scale_sizes(config.data.image_size, count)
    input_image = keras.Input(shape=(*sizes[0], config.data.input_channels), name="input_image")
    target_image = keras.Input(shape=(*sizes[0], config.data.output_channels), name="target_image")
    images = [input_image, target_image]
    logits = []
    for index, size in enumerate(sizes):
        if index:
            # (batch, H_k, W_k, C) -> (batch, ceil(H_k / 2), ceil(W_k / 2), C), each side.
            images = [
                blocks.Downsample(name=f"downsample_{index}_{side}", dtype=dtype_policy)(image)
                for side, image in zip(("input", "target"), images, strict=True)
            ]
        scale = patchgan.build_discriminator(
            config, dtype_policy=dtype_policy, image_hw=size, name=f"discriminator_{index + 1}"
        )
        logits.append(scale(images))
    return keras.Model([input_image, target_image], logits, name="discriminator")


def patchgans(discriminator: keras.Model) -> list[keras.Model]:
    """The PatchGANs of a discriminator built by `build_discriminator`, full size first."""
    scales = [layer for layer in discriminator.layers if isinstance(layer, keras.Model)]
    return scales or [discriminator]


def with_features(discriminator: keras.Model):
    """Returns discriminate(pair, training) -> per scale [feature_1, ..., feature_k, logits].

    `pair` is [input_image, target_image]; the answer is a list of N lists, full
    size first, whose last entries are the logits `discriminator` answers. It runs
    a functional model over the same layers (no new variables; the checkpoint
    holds `discriminator` as before).
    """
    scales = patchgans(discriminator)
    if scales == [discriminator]:
        model = patchgan.with_features(discriminator)
    else:
        images = list(discriminator.inputs)
        outputs = []
        for index, scale in enumerate(scales):
            if index:
                images = [
                    discriminator.get_layer(f"downsample_{index}_{side}").output
                    for side in ("input", "target")
                ]
            outputs.append(patchgan.with_features(scale)(images))
        model = keras.Model(discriminator.inputs, outputs, name="discriminator_features")

    def discriminate(pair, training: bool = False) -> list[list]:
        outputs = model(pair, training=training)
        if len(scales) == 1:  # Keras answers a flat list for one scale.
            return [list(outputs)]
        return [list(scale_outputs) for scale_outputs in outputs]

    return discriminate
