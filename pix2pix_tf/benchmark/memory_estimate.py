"""Analytic memory of one train step, counted from the built models without running them.

What is counted, per example (batch 1), in bytes:

- activations: every layer's output of the generator once and of the discriminator(s)
  twice (the real and the generated pair), at the dtype the layer outputs (its compute
  dtype: bfloat16 under mixed_bfloat16, float32 for the tanh output and the logits).
  These are the forward activations a backward pass keeps without --remat. Sub-models
  (the multi-scale discriminators) are counted layer by layer; a residual block
  (models/resnet.py) counts its inner tensors: two reflection-padded inputs, two
  convolution outputs, two normalised outputs, the ReLU (and dropout) output and the sum.
  The input images, the ops inside a layer (e.g. instance norm's centred input),
  convolution workspace and the activation gradients in flight are not counted.
  In a `global` stage run the generator is the global network alone (models.generator_pass).
- parameters: the generator's and discriminator's weights x 4 (weights, gradients, Adam's
  two moments), float32.

So a real peak is higher (framework, workspace); the count compares generators and
sizes. `python -m pix2pix_tf.benchmark memory` prints it beside the measured peaks.
"""

from __future__ import annotations

import math

import keras

GIB = 2**30
DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


def _bytes(tensor) -> int:
    return math.prod(tensor.shape[1:]) * DTYPE_BYTES[str(tensor.dtype)]


def _residual_block_bytes(layer) -> int:
    """A residual block's inner tensors, all of its output's shape (padded ones larger)."""
    output = layer.output
    _, height, width, channels = output.shape
    size = DTYPE_BYTES[str(output.dtype)]
    padded = (height + 2) * (width + 2) * channels * size
    same = height * width * channels * size
    inner = 6 + (1 if layer.dropout else 0)  # conv x2, norm x2, ReLU, sum (+ dropout).
    return 2 * padded + inner * same


def activation_bytes(model: keras.Model) -> int:
    """Bytes of every layer output of `model` per example (see the module docstring)."""
    from pix2pix_tf.models import resnet

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            total += activation_bytes(layer)
        elif isinstance(layer, resnet.ResidualBlock):
            total += _residual_block_bytes(layer)
        else:
            outputs = layer.output
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            total += sum(_bytes(output) for output in outputs)
    return total


def estimate(config, policy: str) -> dict:
    """The step's counted memory for `config` with the hidden layers in `policy`."""
    from pix2pix_tf import configs as config_lib
    from pix2pix_tf import models
    from pix2pix_tf.models import global_local

    generator = models.build_generator(
        **config_lib.generator_arguments(config), dtype_policy=policy
    )
    discriminator = models.build_discriminator(
        **config_lib.discriminator_arguments(config), dtype_policy=policy
    )
    parameters = generator.count_params() + discriminator.count_params()
    forward = generator
    if config.model.generator == "global_local" and config.train.stage == "global":
        forward = global_local.global_network(generator)
    generator_bytes = activation_bytes(forward)
    discriminator_bytes = 2 * activation_bytes(discriminator)
    parameter_bytes = 4 * 4 * parameters
    return {
        "policy": policy,
        "image_size": config.data.image_size,
        "generator": config.model.generator,
        "parameters": parameters,
        "parameters_gib": parameter_bytes / GIB,
        "generator_activations_gib": generator_bytes / GIB,
        "discriminator_activations_gib": discriminator_bytes / GIB,
        "total_gib": (parameter_bytes + generator_bytes + discriminator_bytes) / GIB,
    }


def _size(gib: float) -> str:
    return f"{gib:.2f} GiB" if gib >= 1 else f"{gib * 1024:.1f} MiB"


def describe(row: dict) -> str:
    return (
        f"estimate ({row['policy']}, batch 1): {row['parameters'] / 1e6:.2f} M parameters -> "
        f"{_size(row['parameters_gib'])} with gradients and Adam; activations generator "
        f"{_size(row['generator_activations_gib'])} + discriminators (x2) "
        f"{_size(row['discriminator_activations_gib'])}; total {_size(row['total_gib'])}"
    )
