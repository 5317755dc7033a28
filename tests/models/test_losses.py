"""pix2pix losses against reference formulas."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pix2pix_tf.models import losses


def _logits(seed, shape=(4, 6, 6, 1)):
    return tf.random.stateless_normal(shape, seed=[seed, 0]) * 3.0


def test_vanilla_is_keras_binary_cross_entropy_on_logits():
    logits = _logits(1)
    reference = keras.losses.BinaryCrossentropy(from_logits=True)
    real = tf.reduce_mean(losses.adversarial_loss(logits, True, "vanilla"))
    fake = tf.reduce_mean(losses.adversarial_loss(logits, False, "vanilla"))
    np.testing.assert_allclose(real, reference(tf.ones_like(logits), logits), rtol=1e-5)
    np.testing.assert_allclose(fake, reference(tf.zeros_like(logits), logits), rtol=1e-5)


def test_lsgan_is_mean_squared_error():
    logits = _logits(2)
    per_example = losses.adversarial_loss(logits, True, "lsgan")
    expected = np.mean((logits.numpy() - 1.0) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(per_example, expected, rtol=1e-5)
    assert per_example.shape == (4,)


def test_unknown_gan_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="--gan_mode"):
        losses.adversarial_loss(_logits(3), True, "wgan")


def test_generator_loss_is_gan_plus_lambda_l1():
    generated = tf.fill([2, 4, 4, 3], 0.5)
    target = tf.fill([2, 4, 4, 3], -0.5)
    values = losses.generator_loss(
        _logits(4, (2, 3, 3, 1)),
        generated,
        target,
        lambda_l1=100.0,
        gan_mode="vanilla",
        global_batch_size=2,
    )
    assert float(values["gen_l1"]) == pytest.approx(1.0)
    assert float(values["gen_total"]) == pytest.approx(float(values["gen_gan"]) + 100.0)


def test_discriminator_loss_halving():
    real, fake = _logits(5), _logits(6)
    full = losses.discriminator_loss(
        real, fake, gan_mode="vanilla", halve=False, global_batch_size=4
    )
    half = losses.discriminator_loss(
        real, fake, gan_mode="vanilla", halve=True, global_batch_size=4
    )
    expected = tf.reduce_mean(losses.adversarial_loss(real, True, "vanilla")) + tf.reduce_mean(
        losses.adversarial_loss(fake, False, "vanilla")
    )
    np.testing.assert_allclose(full, expected, rtol=1e-5)
    np.testing.assert_allclose(half, 0.5 * expected, rtol=1e-5)


def test_losses_average_over_the_global_batch():
    # Two replicas, each with half of a global batch of 4: the per-replica losses
    # sum to the loss of the whole batch.
    generated = tf.random.stateless_uniform([4, 8, 8, 3], seed=[7, 0], minval=-1, maxval=1)
    target = tf.random.stateless_uniform([4, 8, 8, 3], seed=[8, 0], minval=-1, maxval=1)
    logits = _logits(9, (4, 2, 2, 1))

    def loss(part):
        return losses.generator_loss(
            logits[part],
            generated[part],
            target[part],
            lambda_l1=100.0,
            gan_mode="vanilla",
            global_batch_size=4,
        )["gen_total"]

    whole = loss(slice(0, 4))
    np.testing.assert_allclose(loss(slice(0, 2)) + loss(slice(2, 4)), whole, rtol=1e-5)


def test_losses_are_float32_for_bfloat16_inputs():
    logits = tf.cast(_logits(10), tf.bfloat16)
    assert losses.adversarial_loss(logits, True, "vanilla").dtype == tf.float32
    images = tf.zeros([1, 4, 4, 3], tf.bfloat16)
    assert losses.l1_loss(images, images).dtype == tf.float32
