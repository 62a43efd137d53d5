"""What every command prints with: the rich console, model-supplied text made safe for it and for the terminal, and
the help formatter of every parser."""

from __future__ import annotations

import argparse


def console(*, stderr: bool = False, width: int | None = None):
    """A rich Console on edgecls's own output (the terminal, also while other tools' output goes to a log: see
    edgecls.quiet); `width` applies when the output is not a terminal (a log or a pipe), so wide tables keep one row
    per model instead of being squeezed to 80 columns."""
    from ..quiet import console as _console

    return _console(stderr=stderr, width=width)


def text(value) -> str:
    """Model-supplied text (labels, paths, spec values) for rich: markup in it is shown, never interpreted
    (a label `tench[/]` crashed `edgecls info`; `[link=...]` would emit a terminal hyperlink)."""
    from rich.markup import escape

    return escape(str(value))


def plain(value: str) -> str:
    """Model-supplied text printed without rich: control characters shown, never sent to the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)


class HelpFormatter(argparse.HelpFormatter):
    """Help strings are plain text. argparse %-formats each argument's help (for `%(default)s`, which edgecls never
    uses) but not descriptions, so a '%' had to be written '%%' in one and '%' in the other, and `edgecls eval --help`
    printed "95%%"; here both are printed as written."""

    def _get_help_string(self, action) -> str:  # the hook argparse's own ArgumentDefaultsHelpFormatter overrides
        return (action.help or "").replace("%", "%%")


__all__ = ["HelpFormatter", "console", "plain", "text"]
