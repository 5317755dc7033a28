"""Benchmarks: `python -m pix2pix_tf.benchmark {input,train,serve,memory,deploy,tile,browser} ...`.

Each subcommand lives in its own module with a `main(argv) -> int` function and
reports ratios measured side by side in one run, never a bare absolute time.
"""

SUBCOMMANDS = {
    "input": "Training input pipeline throughput (image pairs/s), TFRecords vs per-file JPEGs.",
    "train": "Train step speed (images/s, ms/step, GFLOP/s, peak memory).",
    "memory": "Train step peak memory and ms/step with and without --remat; activation estimate.",
    "serve": "Exported SavedModel latency and throughput, bytes signature vs bare generator.",
    "deploy": "SavedModel vs LiteRT vs ONNX Runtime latency, images/s, file size; parity.",
    "tile": "predict.py --tile vs whole-image: peak memory, time, tiled-vs-whole PSNR.",
    "browser": "Demo generating in headless Chromium (ONNX Runtime Web) vs server-side.",
}
