"""`benchmark deploy --sensitivity`: what keeping each convolution in float buys int8.

The run's generator is equalised and calibrated once (serving/quantization.py, as
`export.py --format litert --quantize int8` does), then quantized once per
convolution with that layer alone in float32 (`--float_layers LAYER`). Each variant
runs over the --parity inputs; the sweep reports its PSNR against the float network's
outputs, its gain over the all-int8 model and its p50 latency beside the all-int8
model's, measured in the same rounds. Layers are ranked by gain: the first rows are
the candidates for `export.py --float_layers`.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np


def _psnr(outputs, references) -> float:
    squared = np.mean([np.mean((o - r) ** 2) for o, r in zip(outputs, references, strict=True)])
    return float("inf") if squared == 0 else float(10.0 * np.log10(4.0 / squared))


def sweep(
    workdir: str,
    inputs: list[np.ndarray],
    threads: int,
    representative_examples: int = 100,
    rounds: int = 10,
) -> dict:
    """{"int8": {...}, "layers": [{"layer", "psnr_db", "gain_db", "latency_ms_p50"}, ...]}
    ranked by gain, for the run at `workdir` over `inputs` (float32 [1, H, W, C])."""
    import tensorflow as tf

    from pix2pix_tf.runs import directory as run_dir
    from pix2pix_tf.serving import deploy, deploy_runtimes, litert, quantization, subpixel

    config, generator, _ = run_dir.restore_generator(workdir)
    network = deploy.deploy_network(config, generator)
    references = [network(images, training=False).numpy() for images in inputs]
    representative = deploy.representative_inputs(config, representative_examples)
    quantization.equalize_skip_ranges(network, representative)
    network = subpixel.rewrite(network)
    spec = tf.TensorSpec([None, None, None, config.data.input_channels], tf.float32)
    calibration = quantization.calibrate(network, spec, representative)
    # The runtime checks the contract of what it loads; every variant carries it.
    record = {
        "contract": deploy.contract(config),
        "format": "litert",
        "quantize": "int8",
        "input_channels": config.data.input_channels,
        "output_channels": config.data.output_channels,
    }

    def measure(float_layers: tuple[str, ...], directory: str) -> dict:
        path = os.path.join(directory, "model.tflite")
        with open(path, "wb") as file:
            file.write(litert.embed_metadata(calibration.quantize(float_layers), record))
        model = deploy_runtimes.load(path, threads)
        psnr = _psnr([model(images) for images in inputs], references)
        model(inputs[0])
        latencies = []
        for _ in range(rounds):
            start = time.perf_counter()
            model(inputs[0])
            latencies.append((time.perf_counter() - start) * 1000.0)
        return {"psnr_db": round(psnr, 2), "latency_ms_p50": round(float(np.median(latencies)), 3)}

    with tempfile.TemporaryDirectory() as directory:
        base = measure((), directory)
        layers = []
        for layer in calibration.layers:
            values = measure((layer,), directory)
            values["gain_db"] = round(values["psnr_db"] - base["psnr_db"], 2)
            layers.append({"layer": layer, **values})
    layers.sort(key=lambda row: -row["gain_db"])
    return {"int8": base, "layers": layers, "examples": len(inputs)}


def print_table(result: dict) -> None:
    base = result["int8"]
    print(
        f"int8 sensitivity over {result['examples']} inputs (PSNR vs the float network; "
        f"all int8: {base['psnr_db']} dB, p50 {base['latency_ms_p50']} ms):"
    )
    print(f"  {'kept in float32':22s} {'PSNR dB':>8s} {'gain dB':>8s} {'p50 ms':>8s}")
    for row in result["layers"]:
        print(
            f"  {row['layer']:22s} {row['psnr_db']:8.2f} {row['gain_db']:+8.2f} "
            f"{row['latency_ms_p50']:8.2f}"
        )
