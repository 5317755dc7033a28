"""Runs: the run directory under training, serving and evaluation.

Owns the run directory (`directory`: its layout, checking a --workdir, listing,
verifying, repairing and restoring checkpoints, restoring a run's generator), what may
change when a run resumes and whether its prepared data is the same (`resume`), the
sample grids, galleries and PNGs (`grids`) and the progress bar (`progress`). Training
writes runs; export, predict and evaluation read them through this package alone.
"""
