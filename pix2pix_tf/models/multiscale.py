"""Multi-scale discriminators (pix2pixHD, Wang et al. 2018, section 3.2).

`--num_discriminators N` builds N PatchGANs (models/discriminator.py), each with
the same --discriminator_layers, --ndf and --norm. Discriminator k sees the
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


def scale_sizes(
    image_size: int | str | tuple[int, int], num_discriminators: int
) -> list[tuple[int, int]]:
    """(H, W) each discriminator sees, full size first: 512x1024, 256x512, 128x256."""
    height, width = sizes.parse_size(image_size)
    scales = [(height, width)]
    for _ in range(num_discriminators - 1):
        height, width = (height + 1) // 2, (width + 1) // 2
        scales.append((height, width))
    return scales


def build_multiscale_discriminator(
    *,
    image_hw: tuple[int, int],
    in_channels: int,
    out_channels: int,
    ndf: int = 64,
    layers: int = 3,
    norm: str = "batch",
    arch: str = "paper",
    num_discriminators: int = 1,
    sync_batch_norm: bool = False,
    dtype_policy: str = "float32",
) -> keras.Model:
    """The PatchGAN (`num_discriminators` 1) or N of them at 1, 1/2, 1/4 ... scale.

    Inputs `input_image` and `target_image` at `image_hw`; for N > 1 the output is a
    list of N float32 logit grids, grid k of shape
    [batch, *output_hw(scale_sizes(image_hw, N)[k], layers), 1]. The other arguments
    are each PatchGAN's (models/discriminator.py's build_patchgan).
    """
    patchgan_arguments = dict(
        in_channels=in_channels,
        out_channels=out_channels,
        ndf=ndf,
        layers=layers,
        norm=norm,
        arch=arch,
        sync_batch_norm=sync_batch_norm,
        dtype_policy=dtype_policy,
    )
    if num_discriminators == 1:
        return patchgan.build_patchgan(image_hw=image_hw, **patchgan_arguments)
    scales = scale_sizes(image_hw, num_discriminators)
    input_image = keras.Input(shape=(*scales[0], in_channels), name="input_image")
    target_image = keras.Input(shape=(*scales[0], out_channels), name="target_image")
    images = [input_image, target_image]
    logits = []
    for index, size in enumerate(scales):
        if index:
            # (batch, H_k, W_k, C) -> (batch, ceil(H_k / 2), ceil(W_k / 2), C), each side.
            images = [
                blocks.Downsample(name=f"downsample_{index}_{side}", dtype=dtype_policy)(image)
                for side, image in zip(("input", "target"), images, strict=True)
            ]
        scale = patchgan.build_patchgan(
            image_hw=size, name=f"discriminator_{index + 1}", **patchgan_arguments
        )
        logits.append(scale(images))
    return keras.Model([input_image, target_image], logits, name="discriminator")


def patchgans(discriminator: keras.Model) -> list[keras.Model]:
    """The PatchGANs of a discriminator built by `build_multiscale_discriminator`, full
    size first."""
    scales = [layer for layer in discriminator.layers if isinstance(layer, keras.Model)]
    return scales or [discriminator]


def with_features(discriminator: keras.Model, *, remat: bool = False):
    """Returns discriminate(pair, training) -> per scale [feature_1, ..., feature_k, logits].

    `pair` is [input_image, target_image]; the answer is a list of N lists, full
    size first, whose last entries are the logits `discriminator` answers. It runs
    a functional model over the same layers (no new variables; the checkpoint
    holds `discriminator` as before). With `remat` (--remat) each PatchGAN's training
    call recomputes its layers in the backward pass (models/remat.py).
    """
    scales = patchgans(discriminator)
    if scales == [discriminator]:
        model = patchgan.with_features(discriminator, remat=remat)
    else:
        images = list(discriminator.inputs)
        outputs = []
        for index, scale in enumerate(scales):
            if index:
                images = [
                    discriminator.get_layer(f"downsample_{index}_{side}").output
                    for side in ("input", "target")
                ]
            outputs.append(patchgan.with_features(scale, remat=remat)(images))
        model = keras.Model(discriminator.inputs, outputs, name="discriminator_features")

    def discriminate(pair, training: bool = False) -> list[list]:
        outputs = model(pair, training=training)
        if len(scales) == 1:  # Keras answers a flat list for one scale.
            return [list(outputs)]
        return [list(scale_outputs) for scale_outputs in outputs]

    return discriminate
