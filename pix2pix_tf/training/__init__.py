"""Training: the train state and step, the run, its controller, and the run directory.

Owns the train state and the `@tf.function` step (`step`), one run of
`train(config)` from start-up to the last checkpoint (`trainer`), the outer loop
as a controller that stops cleanly on signals and loudly on a non-finite loss
(`controller`) with its periodic actions: scalars, sample grids, evaluation and
checkpoints (`actions`), the run directory with its checkpoints, resume checks
and `restore_generator` (`run_dir`), tf.distribute strategies (`distribute`),
the fused Adam update (`optimizers`), mixed precision (`precision`) and
TensorBoard summaries and sample grids (`summaries`).
"""
