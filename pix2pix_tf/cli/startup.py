"""Starting TensorFlow for a command without the banners that read as failures.

Importing TensorFlow 2.21 on a machine without a GPU writes, before its logging is
initialised (so TF_CPP_MIN_LOG_LEVEL cannot hide them), absl's "All log messages
before absl::InitializeLog()" notice, oneDNN's and the CUDA stub's banners, and at the
first device lookup `E0000 ... failed call to cuInit`, which looks like an error but
only says that there is no GPU. `start_tensorflow` imports TensorFlow and looks up
the devices with stderr (file descriptor 2) sent to a temporary file, then writes
back every line except those banners. Nothing else is dropped: any other line, and
everything when a GPU was found, an import failed, `--verbose` was passed or
TF_CPP_MIN_LOG_LEVEL was set by the user, is written back as it came.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

# What TensorFlow prints at start-up on a CPU-only machine, and nothing more: each
# pattern is matched against a whole line of the start-up output.
CPU_ONLY_BANNERS = tuple(
    re.compile(pattern)
    for pattern in (
        r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
        r"STDERR",
        r"I0000 \S+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\. .*",
        r"I0000 \S+ +\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, "
        r"GPU will not be used\.",
        r"E0000 \S+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit: .*",
        r"I0000 \S+ +\d+ cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized .*",
        r"To enable the following instructions: .* rebuild TensorFlow with the appropriate "
        r"compiler flags\.",
    )
)
# The default log level of the commands: TensorFlow's C++ info and warning lines
# after start-up are hidden, its errors shown.
DEFAULT_LOG_LEVEL = "2"


def filter_banners(text: str) -> str:
    """`text` without the lines that CPU_ONLY_BANNERS match in full."""
    lines = text.splitlines(keepends=True)
    kept = [
        line
        for line in lines
        if not any(pattern.fullmatch(line.rstrip("\r\n")) for pattern in CPU_ONLY_BANNERS)
    ]
    return "".join(kept)


def start_tensorflow(verbose: bool = False):
    """Imports TensorFlow and looks up its devices; returns the tensorflow module.

    With `verbose`, or when TF_CPP_MIN_LOG_LEVEL is set in the environment, or when
    TensorFlow is already imported, TensorFlow prints what it prints. Otherwise the
    log level is DEFAULT_LOG_LEVEL and, on a machine without a GPU, the start-up
    banners are left out (see the module docstring).
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if verbose or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # What it prints comes at the same point.
        return tf
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = DEFAULT_LOG_LEVEL
    sys.stderr.flush()
    saved = os.dup(2)
    gpus, failed = [], True
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            sys.stderr.write(text if failed or gpus else filter_banners(text))
            sys.stderr.flush()
    return tf
