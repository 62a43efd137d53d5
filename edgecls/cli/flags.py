"""Command-line flags generated from a config dataclass (TrainConfig, DeployConfig, CompressConfig), so the YAML, the
Python API and the command line name the same settings with the same help, and a new setting is a new flag.

Every generated flag defaults to None: `given()` returns only what was typed, which goes over the --config YAML,
which goes over the field defaults (flag > YAML > default)."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Callable

from ..configfile import load_yaml, settings_help


def key_value(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` of a mapping setting (`--train lr=5e-4`): the value read as YAML (5e-4 a float, true a bool)."""
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: use KEY=VALUE, e.g. epochs=3")
    return key.strip().replace("-", "_"), load_yaml(value)


def runtime_name(text: str) -> str:
    """--backend: any spelling of a runtime (onnx, ort, ov, tflite, trt, ...), resolved here at the user's edge to the
    runtime table's name, which is all the API takes."""
    from ..errors import EdgeclsError
    from ..runtime.runtimes import resolve

    try:
        return resolve(text).name
    except EdgeclsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_backend_flag(p: argparse.ArgumentParser, help: str = "force a runtime (default: by suffix)") -> None:  # noqa: A002
    p.add_argument("--backend", type=runtime_name, help=help + "; any spelling: onnxruntime/onnx/ort, openvino/ov, "
                   "litert/tflite, executorch/pte, tensorrt/trt, torch/pt")


def add_verbose_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show the converters' and runtimes' own output (progress lines, INFO logs, warnings) here; by "
                        "default it goes to OUT/logs/COMMAND-TIME.log, whose path is printed, and its end is shown if the "
                        "run fails")


def quietly(a: argparse.Namespace, out_dir, body: Callable[[], int]) -> int:
    """Run a command's `body` with other tools' output in a log file under `out_dir` (edgecls.quiet), unless -v. With
    --json the log's path goes to stderr, so stdout is the JSON alone."""
    from ..quiet import capture, console, log_path
    from .render import text

    with capture(None if a.verbose else log_path(out_dir, a.command)) as cap:
        if cap.path is not None:
            to_stderr = bool(getattr(a, "json", False))
            console(stderr=to_stderr).print(f"[dim]converters' and runtimes' own output: {text(cap.path)} (-v shows it here)[/]",
                                            highlight=False, soft_wrap=True)  # one line: the path stays whole for copy and paste
        rc = body()
        cap.failed = rc != 0
    return rc


class _MergeKeyValues(argparse.Action):
    """Repeated `--train a=1 --train b=2` adds up, as one `--train a=1 b=2` does."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, {**(getattr(namespace, self.dest) or {}), **dict(values)})


def value_type(hint) -> tuple[type, bool]:
    """(type of one value, whether the setting is a list) from a field annotation: `int | None` -> (int, False),
    `list[int]` -> (int, True), `dict[str, Any]` -> (dict, False)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(h for h in typing.get_args(hint) if h is not type(None))
    origin, args = typing.get_origin(hint) or hint, typing.get_args(hint)
    if origin is list:
        return (args[0] if args and isinstance(args[0], type) else str), True
    if origin is dict:
        return dict, False
    return (origin if origin in (bool, int, float) else str), False


def help_with_default(text: str, default: Any) -> str:
    if default in (None, "", [], {}):
        return text
    shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
    return f"{text} (default: {shown})"


def add_config_flags(p: argparse.ArgumentParser, cls, *, skip: tuple[str, ...] = (), positional: tuple[str, ...] = (),
                     short: dict[str, str] | None = None, more_help: dict[str, str] | None = None) -> list[str]:
    """One flag per field of `cls`, in field order: --name-with-dashes, typed by the annotation (a bool is --x/--no-x,
    a list takes several values, a mapping takes KEY=VALUE pairs), the field's choices, placeholder and help with its
    default. skip: fields with no flag; positional: fields taken as an optional positional argument; short: field ->
    short flag (-o); more_help: field -> text added to its help. Returns the fields that got one."""
    hints = typing.get_type_hints(cls)
    helps = settings_help(cls)
    short, more_help = short or {}, more_help or {}
    added = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind, many = value_type(hints[f.name])
        h = helps[f.name]
        text = help_with_default(h["help"], h["default"]) + more_help.get(f.name, "")
        choices = h.get("choices")
        metavar = None if choices else f.metadata.get("metavar", f.name.upper())
        if f.name in positional:
            p.add_argument(f.name, nargs="?", type=kind, choices=choices, help=text)
        elif kind is bool:
            p.add_argument(*_flags(f.name, short), dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif kind is dict:
            p.add_argument(*_flags(f.name, short), dest=f.name, nargs="+", type=key_value, action=_MergeKeyValues,
                           default=None, metavar=metavar, help=text)
        else:
            p.add_argument(*_flags(f.name, short), dest=f.name, type=kind, nargs="+" if many else None, choices=choices,
                           default=None, metavar=metavar, help=text)
        added.append(f.name)
    return added


def _flags(name: str, short: dict[str, str]) -> list[str]:
    return [*([short[name]] if name in short else []), "--" + name.replace("_", "-")]


def given(a: argparse.Namespace, cls) -> dict[str, Any]:
    """The settings of `cls` given on the command line (a generated flag left out is None)."""
    return {f.name: getattr(a, f.name) for f in dataclasses.fields(cls) if getattr(a, f.name, None) is not None}


def settings(a: argparse.Namespace, cls, config: str | None) -> dict[str, Any]:
    """The --config YAML's settings (keys checked) with the flags given over them."""
    return {**(cls.read_yaml(config) if config else {}), **given(a, cls)}


__all__ = ["add_config_flags", "add_verbose_flag", "given", "help_with_default", "key_value", "quietly", "settings",
           "value_type"]
