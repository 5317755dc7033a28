"""pix2pix losses (paper equations 1-4) and pix2pixHD's feature matching, averaged over
the global batch.

Each loss is first reduced to one value per example, then summed and divided
by the global batch size with `tf.nn.compute_average_loss`, so that summing
the per-replica losses under a `tf.distribute` strategy gives the mean over
the whole batch. Losses are computed in float32 whatever the layer precision.
"""

from __future__ import annotations

import tensorflow as tf

from pix2pix_tf.configs import choices

# What a train step returns, and the TensorBoard tags (`losses/<name>`) a run writes
# them under: the generator's total, adversarial and L1 terms, and the discriminator's
# loss; runs with --lambda_feature_matching add FEATURE_MATCHING (see loss_names).
LOSS_NAMES = ("gen_total", "gen_gan", "gen_l1", "disc")
FEATURE_MATCHING = "gen_fm"
ALL_LOSS_NAMES = (*LOSS_NAMES, FEATURE_MATCHING)


def loss_names(*, lambda_feature_matching: float = 0.0) -> tuple[str, ...]:
    """The losses a run's train step returns: LOSS_NAMES, and gen_fm with feature matching
    (`lambda_feature_matching` > 0)."""
    if lambda_feature_matching:
        return ALL_LOSS_NAMES
    return LOSS_NAMES


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


def _scales(logits: tf.Tensor | list[tf.Tensor]) -> list[tf.Tensor]:
    """One discriminator's logits, or a list of them (--num_discriminators), as a list."""
    return list(logits) if isinstance(logits, (list, tuple)) else [logits]


def _mean_over_scales(logits, is_real: bool, gan_mode: str) -> tf.Tensor:
    """Per-example adversarial loss averaged over the discriminators: [batch]."""
    scales = _scales(logits)
    per_example = adversarial_loss(scales[0], is_real, gan_mode)
    for scale_logits in scales[1:]:
        per_example += adversarial_loss(scale_logits, is_real, gan_mode)
    return per_example / len(scales) if len(scales) > 1 else per_example


@tf.custom_gradient
def _mean_absolute_difference(fake: tf.Tensor, real: tf.Tensor):
    """Per-example mean of |fake - real| in float32, whose backward pass recomputes the
    sign from `fake` and `real` (kept anyway: they are the discriminators' features)
    instead of keeping the float32 difference; no gradient for `real`."""
    difference = tf.cast(fake, tf.float32) - tf.cast(real, tf.float32)
    count = tf.cast(tf.size(difference) // tf.shape(difference)[0], tf.float32)

    def gradient(upstream):
        sign = tf.sign(tf.cast(fake, tf.float32) - tf.cast(real, tf.float32))
        scale = tf.reshape(upstream / count, [-1] + [1] * (len(fake.shape) - 1))
        return tf.cast(sign * scale, fake.dtype), None

    return _per_example_mean(tf.abs(difference)), gradient


def feature_matching_loss(
    real_features: list[list[tf.Tensor]], fake_features: list[list[tf.Tensor]]
) -> tf.Tensor:
    """pix2pixHD's discriminator feature matching, per example: [batch].

    For each discriminator d of N and each of its k feature maps (every
    activation but the logits), the mean absolute difference between the maps of
    the real and of the generated pair, weighted 4 / k and 1 / N, as pix2pixHD's
    `feat_weights = 4 / (n_layers_D + 1)` and `D_weights = 1 / num_D` (k = n + 1 for
    n strided layers). The real features are constants: only the generator learns
    from this term.
    """
    if len(real_features) != len(fake_features):
        raise ValueError(
            f"feature matching needs the same discriminators on both pairs, got "
            f"{len(real_features)} and {len(fake_features)}."
        )
    total = None
    for real_scale, fake_scale in zip(real_features, fake_features, strict=True):
        weight = 4.0 / len(fake_scale) / len(fake_features)
        for real, fake in zip(real_scale, fake_scale, strict=True):
            term = weight * _mean_absolute_difference(fake, tf.stop_gradient(real))
            total = term if total is None else total + term
    return total


def generator_loss(
    fake_logits: tf.Tensor | list[tf.Tensor],
    generated: tf.Tensor,
    target: tf.Tensor,
    *,
    lambda_l1: float,
    gan_mode: str,
    global_batch_size: int,
    lambda_feature_matching: float = 0.0,
    real_features: list[list[tf.Tensor]] | None = None,
    fake_features: list[list[tf.Tensor]] | None = None,
) -> dict[str, tf.Tensor]:
    """Returns gen_total = gen_gan + lambda_l1 * gen_l1 [+ lambda_fm * gen_fm], each a scalar.

    `fake_logits` is one discriminator's logits or a list of them (averaged).
    With `lambda_feature_matching` > 0, `gen_fm` is feature_matching_loss of the
    discriminators' features (lists per discriminator, logits excluded).
    """
    gan = tf.nn.compute_average_loss(
        _mean_over_scales(fake_logits, True, gan_mode), global_batch_size=global_batch_size
    )
    l1 = tf.nn.compute_average_loss(l1_loss(generated, target), global_batch_size=global_batch_size)
    values = {"gen_total": gan + lambda_l1 * l1, "gen_gan": gan, "gen_l1": l1}
    if lambda_feature_matching:
        if real_features is None or fake_features is None:
            raise ValueError("lambda_feature_matching > 0 needs the discriminators' features.")
        matching = tf.nn.compute_average_loss(
            feature_matching_loss(real_features, fake_features),
            global_batch_size=global_batch_size,
        )
        values["gen_total"] += lambda_feature_matching * matching
        values["gen_fm"] = matching
    return values


def discriminator_loss(
    real_logits: tf.Tensor | list[tf.Tensor],
    fake_logits: tf.Tensor | list[tf.Tensor],
    *,
    gan_mode: str,
    halve: bool,
    global_batch_size: int,
) -> tf.Tensor:
    """Real pairs towards 1, generated pairs towards 0, averaged over the discriminators.

    The paper halves the sum "to slow down the rate at which D learns relative
    to G" (section 3.3), as pix2pixHD does; the TensorFlow tutorial does not
    (`halve=False`). pix2pixHD sums its discriminators' losses where this averages
    them (the same for one discriminator).
    """
    per_example = _mean_over_scales(real_logits, True, gan_mode) + _mean_over_scales(
        fake_logits, False, gan_mode
    )
    if halve:
        per_example = 0.5 * per_example
    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
