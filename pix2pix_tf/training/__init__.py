"""Training: the train state and step, the outer loop, and the run directory.

Owns the `@tf.function` train step and the state it updates (`trainer`), the outer
loop with its periodic actions, signals and divergence stop (`loop`), checkpoints
and everything else in a run directory (`run_dir`), tf.distribute strategies
(`distribute`), the fused Adam update (`optimizers`), mixed precision
(`precision`) and TensorBoard summaries and sample grids (`summaries`).
"""
