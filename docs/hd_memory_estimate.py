"""Estimates the accelerator memory of one hd512/hd1024 train step (README, Presets).

    python docs/hd_memory_estimate.py

Counts, in float32 bytes at batch 1: the parameters of the built generator and
discriminators, times 4 (weights, gradients, Adam's two moments), plus the
activations the backward pass keeps: every layer's output of the generator once and
of the discriminators twice (real and generated pair). Convolution workspace,
framework overhead and fragmentation are not counted, so a real peak is higher.
"""

import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from pix2pix_tf import config as config_lib  # noqa: E402
from pix2pix_tf import models  # noqa: E402

GIB = 2**30


def activation_elements(model: keras.Model) -> int:
    """Elements of every layer output of `model` (and of its sub-models), per example."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += activation_elements(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            total += math.prod(layer.output.shape[1:])
    return total


def main():
    runs = [("hd512", {}), ("hd1024", {})]
    for preset, overrides in runs:
        config = config_lib.build_config(dataset="cityscapes", preset=preset, **overrides)
        generator = models.build_generator(config)
        discriminator = models.build_discriminator(config)
        params = generator.count_params() + discriminator.count_params()
        g_acts = activation_elements(generator)
        d_acts = 2 * activation_elements(discriminator)
        total = (4 * params + g_acts + d_acts) * 4 / GIB
        print(
            f"{preset} ({config.data.image_size}, --generator {config.model.generator} "
            f"--ngf {config.model.ngf}): {params / 1e6:.1f} M parameters -> "
            f"{4 * params * 4 / GIB:.2f} GiB with gradients and Adam; activations "
            f"generator {g_acts * 4 / GIB:.2f} GiB + discriminators (x2) "
            f"{d_acts * 4 / GIB:.2f} GiB; total {total:.1f} GiB"
        )


if __name__ == "__main__":
    main()
