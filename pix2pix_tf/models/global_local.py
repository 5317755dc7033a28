"""pix2pixHD's coarse-to-fine generator: a global network plus one local enhancer.

As NVIDIA/pix2pixHD models/networks.py (GlobalGenerator, LocalEnhancer), with ngf the
enhancer's filters (--ngf; pix2pixHD's 2048x1024 run uses 32) and 2 ngf the global
network's:

    input (batch, H, W, C_in) -- average pool 3x3, stride 2 (padding excluded) --> H/2
    global: c7s1-2ngf, 4 x d (4ngf .. 32ngf), --resnet_blocks residual blocks, 4 x u
            (back to 2ngf at H/2)  -> features (batch, H/2, W/2, 2 ngf)
            [+ its own head c7s1-C_out, tanh: the global stage's output]
    local:  c7s1-ngf, d(2 ngf) on the full-size input -> (batch, H/2, W/2, 2 ngf)
            + the global features, 3 residual blocks, u(ngf), c7s1-C_out, tanh -> (H, W)

Sides must be multiples of 2 * 2^4 = 32. The layers of the global network are named
`global_*`, those of the enhancer `local_*`. The global head, which pix2pixHD drops from
the enhancer's copy of the global network, is kept so that one checkpoint serves every
stage (--stage): a `global` run's model outputs the head's image (H/2) upsampled
bilinearly to H, the other stages the enhancer's image. Convolutions have biases and
residual blocks no dropout, as in pix2pixHD.
"""

from __future__ import annotations

import weakref

import keras
import tensorflow as tf

from pix2pix_tf.configs import choices
from pix2pix_tf.models import blocks, remat, resnet

# pix2pixHD's residual blocks of the local enhancer (n_blocks_local).
LOCAL_RESIDUAL_BLOCKS = 3


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class Upsample(keras.layers.Layer):
    """Bilinear 2x upsampling for any size (keras.layers.UpSampling2D needs static sizes
    in a graph)."""

    def call(self, inputs):
        return tf.image.resize(inputs, 2 * tf.shape(inputs)[1:3], method="bilinear")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        double = [None if side is None else 2 * side for side in (height, width)]
        return (batch, *double, channels)


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class StageOutput(keras.layers.Layer):
    """[local image, upsampled global image] -> the one the run's --stage shows."""

    def __init__(self, stage: str, **kwargs):
        super().__init__(**kwargs)
        self.stage = stage

    def call(self, inputs):
        local_image, global_image = inputs
        return global_image if self.stage == "global" else local_image

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "stage": self.stage}


def build_global_local(
    *,
    image_hw: tuple[int, int],
    in_channels: int,
    out_channels: int,
    ngf: int = 64,
    residual_blocks: int = 9,
    norm: str = "batch",
    stage: str = "joint",
    sync_batch_norm: bool = False,
    remat: bool = False,
    dtype_policy: str = "float32",
    input_shape: tuple | None = None,
) -> keras.Model:
    """`input_image` [batch, H, W, in_channels] -> [batch, H, W, out_channels] in [-1, 1]
    (see above).

    `ngf` is the local enhancer's filters (the global network's are 2 `ngf`),
    `residual_blocks` (--resnet_blocks) the global network's residual blocks. `stage`
    (global, local or joint) picks the image the model outputs: the global head's,
    upsampled, for `global`, else the enhancer's; the layers are the same for every
    stage. `remat` makes the residual blocks recompute themselves in the backward pass.
    `input_shape` (height, width, channels), where height and width may be None, builds
    the same layers for other sizes (multiples of 32); None means (*image_hw,
    in_channels).
    """
    choices.check_choice("stage", stage, choices.TRAINING_STAGES)
    make = resnet.Layers(
        norm=norm,
        dtype_policy=dtype_policy,
        use_bias=True,
        sync_batch_norm=sync_batch_norm,
        remat=remat,
    )
    if input_shape is None:
        input_shape = (*image_hw, in_channels)
    inputs = keras.Input(shape=tuple(input_shape), name="input_image")  # (batch, H, W, C_in)
    # (batch, H/2, W/2, C_in)
    half = blocks.Downsample(name="global_downsample", dtype=dtype_policy)(inputs)

    x = make.c7s1(half, 2 * ngf, "global_input")  # (batch, H/2, W/2, 2 ngf)
    for level in range(choices.GLOBAL_DOWNSAMPLINGS):  # -> (batch, H/32, W/32, 32 ngf)
        x = make.down(x, 2 * ngf * 2 ** (level + 1), f"global_down_{level + 1}")
    x = make.residual(x, residual_blocks, "global_residual")
    for level in reversed(range(choices.GLOBAL_DOWNSAMPLINGS)):  # -> (batch, H/2, W/2, 2 ngf)
        x = make.up(x, 2 * ngf * 2**level, f"global_up_{choices.GLOBAL_DOWNSAMPLINGS - level}")
    global_features = x
    global_image = make.c7s1(x, out_channels, "global_output", output=True)

    y = make.c7s1(inputs, ngf, "local_input")  # (batch, H, W, ngf)
    y = make.down(y, 2 * ngf, "local_down")  # (batch, H/2, W/2, 2 ngf)
    y = keras.layers.Add(name="local_merge", dtype=dtype_policy)([y, global_features])
    y = make.residual(y, LOCAL_RESIDUAL_BLOCKS, "local_residual")
    y = make.up(y, ngf, "local_up")  # (batch, H, W, ngf)
    local_image = make.c7s1(y, out_channels, "local_output", output=True)

    global_full = Upsample(name="global_upsample", dtype="float32")(global_image)
    outputs = StageOutput(stage, name="generated_image", dtype="float32")(
        [local_image, global_full]
    )
    return keras.Model(inputs, outputs, name="generator")


_GLOBAL_NETWORKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def global_network(generator: keras.Model) -> keras.Model:
    """The global network of a global_local generator on its own: full-size input ->
    its head's image at half size (same layers and weights)."""
    if generator not in _GLOBAL_NETWORKS:
        output = generator.get_layer("global_output_tanh").output
        if isinstance(generator, remat.SegmentedModel):
            # --remat: the global stage recomputes the same segments.
            network = remat.SegmentedModel(
                generator.inputs,
                output,
                segments=generator.segments,
                ordered=generator.ordered,
                name="global",
            )
        else:
            network = keras.Model(generator.inputs, output, name="global")
        _GLOBAL_NETWORKS[generator] = network
    return _GLOBAL_NETWORKS[generator]


def is_global_layer(layer: keras.layers.Layer) -> bool:
    return layer.name.startswith("global_")


def is_global_head(layer: keras.layers.Layer) -> bool:
    return layer.name.startswith("global_output_")
