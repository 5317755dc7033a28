"""Exports a trained generator as a versioned SavedModel for TF Serving.

    python export.py --workdir checkpoints/cityscapes --export_dir exported/pix2pix

writes exported/pix2pix/<version>/ (one above the highest version already there)
with the `serving_default` (PNG/JPEG bytes in, PNG bytes out) and `generate`
(float images in [-1, 1]) signatures, and a TF Serving warmup file. Channels and bit
depths (1 or 3, 8 or 16) are the run's; inputs are converted to them in the graph.

    python export.py --workdir checkpoints/cityscapes --format litert --quantize int8
    python export.py --workdir checkpoints/cityscapes --format onnx

write exported/pix2pix-litert/<version>/model.tflite (or -onnx/.../model.onnx) with
pix2pix_export.json: float images [N, H, W, C] in [-1, 1] in and out, any H and W
that are multiples of the generator's pad multiple (serving/deploy.py).

    python export.py --workdir checkpoints/cityscapes --format web --quantize float16

writes exported/pix2pix-web/<version>/: model.onnx with the demo's page and ONNX Runtime
Web's files, a static folder any web server serves (pix2pix_tf/demo/site.py).
"""

import argparse
import sys

# Flags are parsed before TensorFlow is imported: --help and flag errors answer at once.
from pix2pix_tf.cli import flags, startup
from pix2pix_tf.serving.options import ExportOptions, RunOptions, ServingOptions

DEFAULT_EXPORT_DIR = ExportOptions().export_dir


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    flags.add_option_flags(parser, RunOptions, ExportOptions, ServingOptions)
    flags.add_verbose_flag(parser)
    return parser.parse_args(argv)


def _export_deploy(
    run: RunOptions, export_options: ExportOptions, serving_options: ServingOptions
) -> str:
    from pix2pix_tf.serving import deploy

    export_dir = export_options.export_dir
    if export_dir == DEFAULT_EXPORT_DIR:
        # The default base path is TF Serving's; other formats get their own folder.
        export_dir = f"{export_dir}-{export_options.format}"
    arguments = dict(
        checkpoint=run.checkpoint,
        version=export_options.version,
        precision=export_options.precision,
        max_pixels=serving_options.max_pixels,
    )
    if export_options.format == "web":
        from pix2pix_tf.demo import site

        if export_options.float_layers:
            raise ValueError("--float_layers applies to --format litert --quantize int8 only.")

        return site.export(
            run.workdir,
            export_dir,
            export_options.quantize,
            representative_examples=export_options.representative_examples,
            **arguments,
        )
    return deploy.export(
        run.workdir,
        export_dir,
        export_options.format,
        export_options.quantize,
        representative_examples=export_options.representative_examples,
        float_layers=export_options.float_layer_names(),
        **arguments,
    )


# The serving graph's options a LiteRT/ONNX export (the float contract at any size,
# inference mode, no encoding) cannot carry; --max_pixels is recorded for predict.py.
SAVED_MODEL_ONLY = (
    "resize_method",
    "parallel_iterations",
    "test_time_mode",
    "seed",
    "serving_size",
)


def _saved_model_only_flag(export_options: ExportOptions, serving: ServingOptions) -> str | None:
    """The first SavedModel-only flag given a value with another --format, as an error."""
    if export_options.format == "saved_model":
        return None
    for name in SAVED_MODEL_ONLY:
        value = getattr(serving, name)
        if value != getattr(ServingOptions(), name):
            return (
                f"--{name} {value} applies to --format saved_model; {export_options.format} "
                "exports carry the float `generate` contract at any size, in inference mode."
            )
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = flags.options_from_args(RunOptions, args)
    export_options = flags.options_from_args(ExportOptions, args)
    serving_options = flags.options_from_args(ServingOptions, args)
    refused = _saved_model_only_flag(export_options, serving_options)
    if refused is not None:
        sys.stderr.write(f"export.py: error: {refused}\n")
        return flags.EXIT_USAGE
    try:
        startup.start_tensorflow(args.verbose)
        from pix2pix_tf.serving import export as export_lib

        try:
            if export_options.format != "saved_model":
                path = _export_deploy(run, export_options, serving_options)
            elif export_options.quantize != "none":
                raise ValueError(
                    f"--quantize {export_options.quantize} applies to --format litert."
                )
            elif export_options.float_layers:
                raise ValueError("--float_layers applies to --format litert --quantize int8.")
            else:
                path = export_lib.export(
                    run.workdir,
                    export_options.export_dir,
                    checkpoint=run.checkpoint,
                    version=export_options.version,
                    options=serving_options,
                    precision=export_options.precision,
                    warmup=export_options.warmup,
                    model_name=export_options.model_name,
                )
        except (export_lib.ExportError, ValueError, OSError) as error:
            sys.stderr.write(f"export.py: error: {flags.one_line(error)}\n")
            return flags.EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write(
            f"export.py: interrupted; nothing was exported to {export_options.export_dir} "
            "(the staging folder was removed).\n"
        )
        return flags.EXIT_INTERRUPTED
    print(f"Exported {path}")
    return flags.EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
