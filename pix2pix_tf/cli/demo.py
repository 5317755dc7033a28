"""python -m pix2pix_tf.demo --model PATH [--port N] [--host H] | --serving_url URL

Starts the browser demo: a page to paint a label map on and see the generator's image.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys

# Flags are parsed before TensorFlow is imported: --help and flag errors answer at once.
from pix2pix_tf.cli import flags, startup
from pix2pix_tf.demo.options import DemoOptions

PROG = "python -m pix2pix_tf.demo"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[1].strip())
    flags.add_option_flags(parser, DemoOptions)
    flags.add_verbose_flag(parser)
    return parser.parse_args(argv)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = flags.options_from_args(DemoOptions, args)
    try:
        options.validate()
    except ValueError as error:
        sys.stderr.write(f"{PROG}: error: {flags.one_line(error)}\n")
        return flags.EXIT_USAGE
    server = None
    try:
        startup.start_tensorflow(args.verbose)
        from pix2pix_tf.demo import backend as backend_lib
        from pix2pix_tf.demo import server as server_lib

        try:
            model = backend_lib.load_backend(options)
            app = server_lib.DemoApp(options, model)
            server = server_lib.make_server(app, options.host, options.port)
        except (backend_lib.DemoError, OSError) as error:
            sys.stderr.write(f"{PROG}: error: {flags.one_line(error)}\n")
            return flags.EXIT_ERROR
        if not is_loopback(options.host):
            sys.stderr.write(
                f"{PROG}: warning: listening on {options.host}: anyone who can reach this "
                "machine can use the page and the model (no authentication).\n"
            )
        if app.examples_note:
            sys.stderr.write(f"{PROG}: {app.examples_note}\n")
        host, port = server.server_address[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"Serving the demo of {model.description} at http://{shown}:{port}/ (Ctrl-C stops)")
        sys.stdout.flush()
        server.serve_forever()
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: stopped.\n")
        return flags.EXIT_INTERRUPTED
    finally:
        if server is not None:
            server.server_close()
    return flags.EXIT_OK
