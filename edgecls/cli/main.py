"""`edgecls COMMAND ...`: the top parser, built from the command modules, and the dispatch.

A command module has NAME, HELP (and DESCRIPTION), `add_arguments(parser)` and `run(args) -> int`. Only the flags of
the command being run are built: export's come from the exporters' format table, which imports torch, and
`edgecls predict` on a device may have no torch at all."""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import EdgeclsError
from .render import HelpFormatter

# the order `edgecls --help` lists them in
COMMANDS = ("export", "predict", "info", "check", "adopt", "serve", "train", "compress", "archs", "fit_reference", "monitor",
            "deploy", "eval", "explain", "demo")


def commands() -> list:
    return [importlib.import_module(f"{__package__}.{name}") for name in COMMANDS]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `edgecls` parser: every command listed; the flags of `command` only, or of every command when None."""
    ap = argparse.ArgumentParser(prog="edgecls", description="Train, compress, export and run image classifiers on edge devices.",
                                 formatter_class=HelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for mod in commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", None), formatter_class=HelpFormatter)
        if command is None or command == mod.NAME:
            mod.add_arguments(p)
        p.set_defaults(run=mod.run)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((x for x in argv if not x.startswith("-")), "")  # the top parser has no option that takes a value
    args = build_parser(command).parse_args(argv)
    try:
        return args.run(args)
    except EdgeclsError as exc:  # what edgecls raises on purpose says what to change; anything else is a bug: traceback
        print(f"edgecls: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
