"""Numeric precision: float32, mixed bfloat16 or mixed float16.

Mixed precision keeps variables in float32 and computes hidden layers in 16
bits; the generator's tanh output, the discriminator's logits and all losses
stay float32. float16 needs loss scaling, bfloat16 does not.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from pix2pix_tf.configs import choices

# CPU flags (from /proc/cpuinfo) that give fast bfloat16 matrix multiplies.
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags Linux reports; empty where /proc/cpuinfo is absent."""
    try:
        with open(path) as file:
            for line in file:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve_precision(precision: str, strategy: tf.distribute.Strategy | None = None) -> str:
    """Returns a Keras dtype policy name for --precision.

    `auto` picks mixed_bfloat16 on TPUs and on CPUs with AMX or AVX512-BF16
    (when no GPU is visible), float32 otherwise.
    """
    choices.check_choice("precision", precision, choices.TRAINING_PRECISIONS)
    if precision != "auto":
        return precision
    if strategy is not None and isinstance(strategy, tf.distribute.TPUStrategy):
        return "mixed_bfloat16"
    if not tf.config.list_physical_devices("GPU") and cpu_flags() & set(BFLOAT16_CPU_FLAGS):
        return "mixed_bfloat16"
    return "float32"


def wrap_optimizer(optimizer: keras.optimizers.Optimizer, policy: str):
    """Adds dynamic loss scaling for float16; other precisions need none."""
    if policy == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def inner_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer whose state is checkpointed, so checkpoints do not depend on precision."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.inner_optimizer
    return optimizer
