"""The command line: every command's flags, exit codes and `main()`.

`flags` generates the flags of every command from the config fields and option
dataclasses (help text in their metadata) and holds the exit codes; `startup` imports
TensorFlow without its CPU-only banners. One module per command holds its `main()`:
`train`, `export`, `predict`, `evaluate` (also the top-level scripts of the same name),
`prepare`, `segmentation`, `serving_client`, `demo` (also `python -m pix2pix_tf.<name>`),
and `pip install .` makes them `pix2pix-train`, `pix2pix-export`, ... (pyproject.toml).
The library never imports this package. The commands import the library inside `main()`,
after the flags are parsed, so that `--help` and flag errors answer without TensorFlow.
"""
