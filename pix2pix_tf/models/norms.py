"""Batch and instance normalisation whose training pass is one fused kernel.

Keras 3's BatchNormalization computes a training pass op by op: it casts a
bfloat16 input to float32 for `tf.nn.moments` (a mean, a squared difference
and another mean), casts the statistics back, and normalises with a few more
element-wise ops; its gradient is as many again. Over the large feature maps of
the U-Net and the PatchGAN that is a dozen passes over each activation, and on
CPU it was about a quarter of a batch-8 train step's time (a TensorFlow profile;
docs/benchmarks.md, "Where the distance was"). `tf.raw_ops.FusedBatchNormV3`
(oneDNN on CPU, cuDNN on GPU, XLA on TPU) does the statistics and the normalisation
in one kernel and its gradient in one more.

The layer is Keras' own (the same variables, names and checkpoints), and every
other call (inference, masks, renormalisation, `synchronized` statistics across
replicas, other axes) is Keras' code. The fused kernel returns the
Bessel-corrected batch variance; the moving variance is updated with the biased
one, as Keras does. The kernel keeps the statistics and the normalisation in
float32 where Keras rounds them to the compute dtype, so under mixed precision the
two agree to that dtype's rounding, and in float32 to float32's
(tests/models/test_norms.py).

Instance normalisation (Keras' GroupNormalization with one group per channel, as
the ResNet and global+local generators use it) is the same kernel over each image's
channels: [N, H, W, C] viewed as one image of N x C channels ([H, W, N, C] for N > 1).
It has no moving statistics, and outside training it is Keras' layer, so exports do
not change.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class _FusedSwitch:
    """The `fused` switch of a normalisation layer, kept in its config.

    `fused=False` keeps Keras' own computation everywhere (--no-fused_norm).
    """

    def __init__(self, *args, fused: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fused = fused

    def get_config(self):
        return {**super().get_config(), "fused": self.fused}


def _fused_training_pass(inputs, scale, offset, epsilon: float):
    """FusedBatchNormV3 in training mode over [N, H, W, C] `inputs`, statistics over
    N, H and W -> (outputs in the inputs' dtype, mean, Bessel-corrected variance)."""
    empty = tf.zeros([0], tf.float32)
    outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=inputs,
        scale=scale,
        offset=offset,
        mean=empty,
        variance=empty,
        epsilon=epsilon,
        exponential_avg_factor=1.0,
        data_format="NHWC",
        is_training=True,
    )
    return outputs, mean, variance


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class BatchNormalization(_FusedSwitch, keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization whose training pass is one FusedBatchNormV3."""

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and self._fused_applies(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        # gamma and beta as the layer's compute dtype gives them (Keras normalises with
        # them in that dtype), then float32, which the kernel takes.
        scale = tf.cast(tf.cast(self.gamma, inputs.dtype), tf.float32)
        offset = tf.cast(tf.cast(self.beta, inputs.dtype), tf.float32)
        outputs, mean, variance = _fused_training_pass(inputs, scale, offset, self.epsilon)
        # The kernel's variance is Bessel-corrected (count / (count - 1); 0 for one
        # value); Keras' moving variance averages the biased one.
        count = tf.cast(tf.size(inputs, out_type=tf.int64) // inputs.shape[-1], tf.float32)
        variance = variance * (tf.maximum(count - 1.0, 0.0) / count)
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum + variance * (1.0 - momentum))
        return outputs

    def _fused_applies(self, inputs, mask) -> bool:
        return (
            self.fused
            and mask is None
            and len(inputs.shape) == 4
            and inputs.shape[-1] is not None
            and self.axis in (-1, 3)
            and self.center
            and self.scale
            and not self.renorm
            and not self.synchronized
        )


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class InstanceNormalization(_FusedSwitch, keras.layers.GroupNormalization):
    """keras.layers.GroupNormalization(groups=-1); in training, one FusedBatchNormV3."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("groups", -1)
        super().__init__(*args, **kwargs)

    def call(self, inputs, training=None):
        if not (training and self._fused_applies(inputs)):
            return super().call(inputs)
        batch, height, width, channels = inputs.shape
        batch = batch if batch is not None else tf.shape(inputs)[0]
        height = height if height is not None else tf.shape(inputs)[1]
        width = width if width is not None else tf.shape(inputs)[2]
        # Each image's channels as channels of one image: a free reshape for one image.
        single = inputs.shape[0] == 1
        one_image = inputs if single else tf.transpose(inputs, [1, 2, 0, 3])
        one_image = tf.reshape(one_image, [1, height, width, batch * channels])
        gamma, beta = (tf.cast(weight, tf.float32) for weight in (self.gamma, self.beta))
        outputs, _, _ = _fused_training_pass(
            tf.cast(one_image, self.compute_dtype),
            tf.tile(gamma, [batch]),
            tf.tile(beta, [batch]),
            self.epsilon,
        )
        if single:
            return tf.reshape(outputs, [1, height, width, channels])
        return tf.transpose(tf.reshape(outputs, [height, width, batch, channels]), [2, 0, 1, 3])

    def _fused_applies(self, inputs) -> bool:
        return (
            self.fused
            and len(inputs.shape) == 4
            and inputs.shape[-1] is not None
            and self.groups == inputs.shape[-1]
            and self.axis in (-1, 3)
            and self.center
            and self.scale
        )


def set_fused(model: keras.Model, fused: bool) -> None:
    """Sets `fused` on every normalisation layer of `model` (nested layers included)."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, BatchNormalization | InstanceNormalization):
            layer.fused = fused
