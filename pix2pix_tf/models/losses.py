"""pix2pix losses (paper equations 1-4), averaged over the global batch.

Each loss is first reduced to one value per example, then summed and divided
by the global batch size with `tf.nn.compute_average_loss`, so that summing
the per-replica losses under a `tf.distribute` strategy gives the mean over
the whole batch. Losses are computed in float32 whatever the layer precision.
"""

from __future__ import annotations

import tensorflow as tf

from pix2pix_tf import choices


def _per_example_mean(values: tf.Tensor) -> tf.Tensor:
    """Averages everything but the batch axis: [batch, ...] -> [batch]."""
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def adversarial_loss(logits: tf.Tensor, is_real: bool, gan_mode: str) -> tf.Tensor:
    """Per-example loss pushing PatchGAN `logits` towards real (1) or fake (0).

    `vanilla` is the paper's sigmoid cross-entropy on logits; `lsgan` is the
    least-squares loss (Mao et al., 2017) on the raw outputs.
    """
    logits = tf.cast(logits, tf.float32)
    labels = tf.ones_like(logits) if is_real else tf.zeros_like(logits)
    if gan_mode == "vanilla":
        values = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    elif gan_mode == "lsgan":
        values = tf.square(logits - labels)
    else:
        choices.check_choice("gan_mode", gan_mode, choices.GAN_MODES)
    return _per_example_mean(values)


def l1_loss(generated: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Per-example mean absolute error between generated and target images."""
    difference = tf.cast(target, tf.float32) - tf.cast(generated, tf.float32)
    return _per_example_mean(tf.abs(difference))


def generator_loss(
    fake_logits: tf.Tensor,
    generated: tf.Tensor,
    target: tf.Tensor,
    *,
    lambda_l1: float,
    gan_mode: str,
    global_batch_size: int,
) -> dict[str, tf.Tensor]:
    """Returns gen_total = gen_gan + lambda_l1 * gen_l1, each a scalar."""
    gan = tf.nn.compute_average_loss(
        adversarial_loss(fake_logits, True, gan_mode), global_batch_size=global_batch_size
    )
    l1 = tf.nn.compute_average_loss(l1_loss(generated, target), global_batch_size=global_batch_size)
    return {"gen_total": gan + lambda_l1 * l1, "gen_gan": gan, "gen_l1": l1}


def discriminator_loss(
    real_logits: tf.Tensor,
    fake_logits: tf.Tensor,
    *,
    gan_mode: str,
    halve: bool,
    global_batch_size: int,
) -> tf.Tensor:
    """Real pairs towards 1, generated pairs towards 0.

    The paper halves the sum "to slow down the rate at which D learns relative
    to G" (section 3.3); the TensorFlow tutorial does not (`halve=False`).
    """
    per_example = adversarial_loss(real_logits, True, gan_mode) + adversarial_loss(
        fake_logits, False, gan_mode
    )
    if halve:
        per_example = 0.5 * per_example
    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
