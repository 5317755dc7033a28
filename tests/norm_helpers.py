"""Which variables an instance norm makes irrelevant, for tests that compare weights."""

import numpy as np
import tensorflow as tf


def normalised_away(model, inputs) -> set[str]:
    """The paths of the biases whose every shift leaves `model`'s output unchanged.

    A bias right before an instance norm is removed with the mean: its true gradient is
    zero, and what a step computes for it is rounding noise, which Adam turns into steps
    of either sign. Two computations of the same step (with and without --remat, fused
    or Keras' normalisation) therefore agree on every weight but these. Checked in
    inference, where instance norm computes what it computes in training.
    """
    reference = model(inputs, training=False)
    found = set()
    for variable in model.trainable_variables:
        if not variable.path.endswith("bias"):
            continue
        original = variable.numpy()
        variable.assign(original + 1.0)
        moved = float(tf.reduce_max(tf.abs(model(inputs, training=False) - reference)))
        variable.assign(original)
        if moved < 1e-4:
            found.add(variable.path)
    return found


def assert_weights_close(a, b, path, *, learning_rate, steps, noisy=0.0, atol=1e-5):
    """Weights equal to `atol`, but for a fraction `noisy` of the elements of each variable
    that may be up to Adam's whole travel apart (2 x learning_rate x steps).

    Where a gradient element is rounding noise (normalisation over 2x2 maps, the tiny
    global stage's), Adam's normalised step is the same size whatever the noise, so its
    sign can differ between two computations of one step. The losses, compared apart,
    show the models are the same.
    """
    a, b = np.asarray(a), np.asarray(b)
    apart = np.abs(a - b) > atol
    assert apart.sum() <= noisy * a.size, (path, int(apart.sum()), a.size)
    assert np.all(np.abs(a - b) <= 2 * learning_rate * steps + atol), path
