"""Clients for a pix2pix model served by TF Serving: gRPC and REST.

    python -m pix2pix_tf.serving_client --grpc localhost:8500 --input a.png --output out/
    python -m pix2pix_tf.serving_client --rest http://localhost:8501 --input a.png --output out/

(`pix2pix-serving-client` after `pip install .`) sends the images through
pix2pix_tf/serving/client.py, imported once the flags are parsed, and writes the PNGs
it returns.
"""

from __future__ import annotations

import argparse
import os
import sys

from pix2pix_tf.cli import flags, startup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    server = parser.add_mutually_exclusive_group(required=True)
    server.add_argument("--grpc", help="host:port of TF Serving's gRPC API (8500).")
    server.add_argument("--rest", help="http://host:port of TF Serving's REST API (8501).")
    parser.add_argument("--model_name", default="pix2pix")
    parser.add_argument("--input", nargs="+", required=True, help="Encoded images to send.")
    parser.add_argument("--output", required=True, help="Directory for the returned PNGs.")
    flags.add_verbose_flag(parser)
    args = parser.parse_args(argv)
    startup.start_tensorflow(args.verbose)
    from pix2pix_tf.serving import client

    errors: tuple[type[BaseException], ...] = (OSError, ValueError)
    if args.grpc:
        import grpc

        errors += (grpc.RpcError,)
    try:
        _send(client, args)
    except KeyboardInterrupt:
        print("interrupted; the PNGs printed above are complete.", file=sys.stderr)
        return flags.EXIT_INTERRUPTED
    except errors as error:
        print(f"error: {flags.one_line(error)}", file=sys.stderr)
        return flags.EXIT_ERROR
    return flags.EXIT_OK


def _send(client, args: argparse.Namespace) -> None:
    images = []
    for path in args.input:
        with open(path, "rb") as file:
            images.append(file.read())
    if args.grpc:
        outputs = client.grpc_generate(args.grpc, images, args.model_name)
    else:
        outputs = client.rest_generate(args.rest, images, args.model_name)
    os.makedirs(args.output, exist_ok=True)
    for path, data in zip(args.input, outputs, strict=True):
        target = os.path.join(args.output, os.path.splitext(os.path.basename(path))[0] + ".png")
        with open(target, "wb") as file:
            file.write(data)
        print(target)
