"""Command-line flags generated from settings dataclasses, and the shared exit codes.

Every entry point builds its flags here from the fields of a dataclass, with the
help text (and choices) from the field's metadata (`choices.setting`):

* config flags (`train.py`, `python -m pix2pix_tf.prepare`): one flag per `Config`
  field, default None meaning "not given", so that flags override the dataset's
  settings and the preset only where given (`config_from_args`);
* option flags (`export.py`, `evaluate.py`, `predict.py`,
  `python -m pix2pix_tf.segmentation`): one flag per field of an options dataclass
  in the options modules beside their users (serving/, evaluation/, demo/options.py), with
  the field's default (`options_from_args`).

Entry points agree on exit codes: 0 success, 2 bad flags (argparse's usage error),
1 a runtime error (one line on stderr), 130 stopped by Ctrl-C. This module imports
no TensorFlow, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import types
import typing
from typing import Any

from pix2pix_tf import configs as config_lib
from pix2pix_tf.configs import presets
from pix2pix_tf.data import registry
from pix2pix_tf.errors import one_line

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 128 + 2  # SIGINT, the shell's convention.


# ---------------------------------------------------------------------------
# From a field to a flag.
# ---------------------------------------------------------------------------


@functools.cache
def _type_hints(settings_type: type) -> dict[str, Any]:
    return typing.get_type_hints(settings_type)


def _flag_type(hint: Any) -> tuple[type, bool, bool]:
    """(scalar type, optional, repeated) for a field's type hint."""
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        arguments = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        optional = len(arguments) < len(typing.get_args(hint))
        hint = arguments[0]
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], optional, True
    return hint, optional, False


def _parse_optional(scalar: type):
    def parse(text: str):
        if text.lower() in ("none", "null", ""):
            return None
        return scalar(text)

    parse.__name__ = scalar.__name__
    return parse


def field_help(field: dataclasses.Field) -> str:
    """The field's help text; raises ValueError if the field has none."""
    text = field.metadata.get("help")
    if not text:
        raise ValueError(f"field {field.name!r} has no help text in its metadata.")
    return text


def _add_field_flag(group, settings_type: type, field: dataclasses.Field, config_style: bool):
    scalar, optional, repeated = _flag_type(_type_hints(settings_type)[field.name])
    required = field.default is dataclasses.MISSING
    help_text = field_help(field)
    if not required:
        help_text = f"{help_text} (default: {field.default})"
    help_text = help_text.replace("%", "%%")  # argparse formats help with %.
    flag = f"--{field.name}"
    # Config flags default to None ("not given"); option flags to the field's default.
    default = None if config_style or required else field.default
    if scalar is bool:
        group.add_argument(
            flag, action=argparse.BooleanOptionalAction, default=default, help=help_text
        )
        return
    arguments: dict[str, Any] = {"default": default, "help": help_text}
    if config_style:
        # Choices are checked by Config.validate, whose message names the flag.
        arguments["type"] = _parse_optional(scalar) if optional else scalar
        arguments["metavar"] = scalar.__name__.upper()
    else:
        arguments["type"] = scalar
        arguments["choices"] = field.metadata.get("choices")
        arguments["required"] = required
        if repeated:
            arguments["nargs"] = "+"
    group.add_argument(flag, **arguments)


# ---------------------------------------------------------------------------
# Option flags: export.py, evaluate.py, predict.py, the segmenter.
# ---------------------------------------------------------------------------


def add_option_flags(parser: argparse.ArgumentParser, *option_types: type) -> None:
    """Adds one flag per field of each options dataclass, with its default."""
    for option_type in option_types:
        for field in dataclasses.fields(option_type):
            _add_field_flag(parser, option_type, field, config_style=False)


def options_from_args(option_type: type, args: argparse.Namespace) -> Any:
    """The `option_type` instance the flags made by `add_option_flags` describe."""
    values = {}
    for field in dataclasses.fields(option_type):
        value = getattr(args, field.name)
        values[field.name] = tuple(value) if isinstance(value, list) else value
    return option_type(**values)


# ---------------------------------------------------------------------------
# Config flags: train.py and prepare.
# ---------------------------------------------------------------------------


def add_config_flags(
    parser: argparse.ArgumentParser, only: tuple[str, ...] = config_lib.SECTIONS
) -> None:
    """Adds one flag per config field of the sections `only` (default None = not given)."""
    for section in only:
        group = parser.add_argument_group(f"{section} config")
        section_type = config_lib.SECTION_TYPES[section]
        for field in dataclasses.fields(section_type):
            _add_field_flag(group, section_type, field, config_style=True)


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
    """--verbose: TensorFlow's start-up lines as they are (see startup.py)."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="Show everything TensorFlow prints at start-up; without it, its banners on a "
        "machine without a GPU (oneDNN, CUDA stub, cuInit) are left out. A "
        "TF_CPP_MIN_LOG_LEVEL set in the environment also shows them.",
    )


def add_preset_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        default=None,
        choices=sorted(presets.PRESETS),
        help="Named overrides applied on top of the dataset's defaults.",
    )


def config_from_args(args: argparse.Namespace) -> config_lib.Config:
    """Builds a resolved config from flags made by add_config_flags."""
    values = {
        name: getattr(args, name)
        for name in config_lib.FIELD_SECTION
        if getattr(args, name, None) is not None
    }
    dataset = values.pop("dataset", None)
    return config_lib.build_config(dataset=dataset, preset=getattr(args, "preset", None), **values)


def parse_config(
    parser: argparse.ArgumentParser, argv: list[str] | None
) -> tuple[config_lib.Config, argparse.Namespace]:
    """Parses config flags; a bad value exits with status 2 and a one-line usage error."""
    args = parser.parse_args(argv)
    try:
        return config_from_args(args), args
    except ValueError as error:
        parser.error(one_line(error))


# ---------------------------------------------------------------------------
# Help epilogues.
# ---------------------------------------------------------------------------


def datasets_help() -> str:
    return registry.datasets_help()


def preset_help() -> str:
    """One line per preset: the fields it sets on any dataset's config, and their values."""
    bases = [config_lib.Config()] + [
        config_lib.Config().replace(dataset=name, **info.overrides)
        for name, info in registry.DATASETS.items()
    ]
    lines = []
    for name, preset in presets.PRESETS.items():
        changed = set()
        for base in bases:
            before, after = _flat(base), _flat(preset(base))
            changed |= {field for field in before if before[field] != after[field]}
        values = _flat(preset(config_lib.Config()))
        pairs = ", ".join(
            f"{field}={values[field]}" for field in config_lib.FIELD_SECTION if field in changed
        )
        lines.append(f"  {name}: {pairs}")
    return "\n".join(lines)


def _flat(config: config_lib.Config) -> dict[str, Any]:
    return {
        name: getattr(getattr(config, section), name)
        for name, section in config_lib.FIELD_SECTION.items()
    }
