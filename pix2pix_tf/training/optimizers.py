"""Adam with TensorFlow's fused update kernel.

Keras 3's Adam updates each variable with a dozen separate element-wise ops
(each a full pass over the weights and the two moments); `ResourceApplyAdam`
does the same arithmetic in one pass. The variables, their names, the
learning-rate schedule and the checkpoints are Keras Adam's own, so a run can
switch between the two.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam whose dense update is one `ResourceApplyAdam` op.

    Keras' update is m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
    w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps), which is the
    kernel's definition. amsgrad and sparse gradients use Keras' own update.
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        local_step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        momentum = self._momentums[index]
        velocity = self._velocities[index]
        return tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(momentum),
            v=_handle(velocity),
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), local_step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), local_step),
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )


def _handle(variable):
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle
