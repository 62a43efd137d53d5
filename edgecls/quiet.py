"""Quiet by default, complete on demand: while a long edgecls command runs (demo, export, compress, deploy, eval), what
the converters and runtimes print themselves goes to a log file for that run, and edgecls's own lines (what was
written, how it was verified, its progress bars and tables) stay on the terminal.

What lands in the log: LiteRT-Torch's per-pass progress, absl and XNNPACK INFO lines from the C++ libraries, JAX's
"os.fork() was called" warning, torch's "No CUDA runtime is found", NNCF's own progress bars, OpenVINO and ONNX Runtime
warnings, and anything a child process prints. With -v nothing is redirected; when the run fails, the end of the log is
printed after the error.

How: file descriptors 1 and 2 point at the log while the command runs, so C/C++ libraries, Python code and child
processes all write there; edgecls prints through `console()` / `terminal()`, which write to a duplicate of the
original descriptors. sys.stdout/sys.stderr become log streams that rich's live displays leave in place (they are rich
FileProxy objects), so a tool's print during one of edgecls's spinners does not slip onto the terminal either. A
Python warning raised from edgecls's own code stays on the terminal; other warnings go to the log.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, TextIO

TAIL_LINES = 40  # of the log, printed after a failed run
_PACKAGE = Path(__file__).resolve().parent
_terminal: dict[str, TextIO] = {}  # "out"/"err" -> the original terminal streams, while a capture is active


def terminal(stderr: bool = False) -> TextIO:
    """Where edgecls's own output goes: the terminal (or whatever stdout/stderr were) even while tools' output is
    being captured."""
    return _terminal.get("err" if stderr else "out") or (sys.stderr if stderr else sys.stdout)


def console(*, stderr: bool = False, width: int | None = None, **kwargs):
    """A rich Console for edgecls's own output; `width` applies when the output is not a terminal (a log or a pipe),
    so wide tables keep one row per model instead of being squeezed to 80 columns."""
    from rich.console import Console

    file = _terminal.get("err" if stderr else "out")  # None: rich follows sys.stdout/sys.stderr, as without capture
    con = Console(file=file, stderr=stderr, **kwargs)
    return con if width is None or con.is_terminal else Console(file=file, stderr=stderr, width=width, **kwargs)


def log_path(out_dir: str | os.PathLike, command: str) -> Path:
    """`OUT/logs/<command>-<local time>.log`, one file per run."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(out_dir) / "logs" / f"{command}-{stamp}.log"
    return path if not path.exists() else path.with_name(f"{command}-{stamp}-{os.getpid()}.log")


@dataclass
class Capture:
    path: Path | None  # the log file; None when nothing is captured (-v)
    failed: bool = False  # set by the caller for a run that ends with a failure status; an exception sets it too

    def lines(self) -> list[str]:
        if self.path is None or not self.path.is_file():
            return []
        return self.path.read_text(errors="replace").splitlines()


@contextlib.contextmanager
def capture(path: str | os.PathLike | None, *, verbose: bool = False) -> Iterator[Capture]:
    """Send what other tools print to `path` until the block ends; edgecls's own output stays on the terminal.

    verbose (or path None): capture nothing. A block that raises or sets `failed` ends with the log's last lines on
    stderr. Not reentrant: an inner capture while one is active captures nothing more (the outer log has it all).
    """
    if verbose or path is None or _terminal:
        yield Capture(None)
        return
    cap = Capture(Path(path))
    made = [d for d in (cap.path.parent, *cap.path.parent.parents) if not d.exists()]  # removed again if left empty
    cap.path.parent.mkdir(parents=True, exist_ok=True)
    _flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    _terminal["out"] = _terminal_stream(sys.stdout, 1, saved[1])
    _terminal["err"] = _terminal_stream(sys.stderr, 2, saved[2])
    log_fd = os.open(cap.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    py_out, py_err, show = sys.stdout, sys.stderr, warnings.showwarning
    sys.stdout, sys.stderr = _log_stream(py_out), _log_stream(py_err)
    warnings.showwarning = _show_warning
    try:
        yield cap
    except BaseException:
        cap.failed = True
        raise
    finally:
        _flush()
        sys.stdout, sys.stderr, warnings.showwarning = py_out, py_err, show
        for fd, dup in saved.items():
            os.dup2(dup, fd)
            os.close(dup)
        for stream in (_terminal.pop("out"), _terminal.pop("err")):
            if stream not in (py_out, py_err):  # a caller's own stream stays open
                with contextlib.suppress(OSError, ValueError):
                    stream.close()
        if cap.failed:
            _show_tail(cap)
            _remove_if_empty(cap.path, made)


def _remove_if_empty(path: Path, made: list[Path]) -> None:
    """A run that failed before any tool printed (a bad flag, a missing file) leaves no empty log, nor the folders
    made for it, behind."""
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            path.unlink()
            for d in made:  # deepest first
                d.rmdir()


def _terminal_stream(stream, fd: int, saved: int) -> TextIO:
    """The terminal side for `stream`: a duplicate of the saved descriptor when `stream` writes to `fd`; else the
    stream itself (a StringIO, pytest's capsys, an app's own sys.stdout object), which moving descriptors never
    reaches, so main()'s output goes where the caller sent it."""
    try:
        if stream.fileno() == fd:
            return _reopen(saved, stream)
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        pass
    return stream


def _reopen(fd: int, like) -> TextIO:
    """A line-buffered text stream on a duplicate of `fd`, with the encoding of the stream it stands for."""
    encoding = getattr(like, "encoding", None) or "utf-8"
    return os.fdopen(os.dup(fd), "w", buffering=1, encoding=encoding, errors="replace")


def _log_stream(stream):
    """sys.stdout/sys.stderr while capturing: writes go on to the log through `stream` (whose descriptor now points
    there). It is a rich FileProxy so that edgecls's spinners (rich Live, which proxies sys.stdout/sys.stderr onto its
    own console unless they are proxies already) leave it alone."""
    from rich.file_proxy import FileProxy

    class LogStream(FileProxy):
        def write(self, text: str) -> int:
            return self.rich_proxied_file.write(text)

        def flush(self) -> None:
            self.rich_proxied_file.flush()

        def isatty(self) -> bool:  # tools draw no live bars into a log file
            return False

        def fileno(self) -> int:
            return self.rich_proxied_file.fileno()

        @property
        def encoding(self):
            return getattr(self.rich_proxied_file, "encoding", None)

        @property
        def errors(self):
            return getattr(self.rich_proxied_file, "errors", None)

    return LogStream(None, stream)  # type: ignore[arg-type]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """edgecls's own warnings (int8 saturation on this CPU, a slow precision) are for the user: terminal; others: log."""
    text = warnings.formatwarning(message, category, filename, lineno, line)
    try:
        own = Path(filename).resolve().is_relative_to(_PACKAGE)
    except (OSError, ValueError):
        own = False
    (terminal(stderr=True) if own else (file or sys.stderr)).write(text)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):  # C stdio buffers of the native libraries, before the descriptors move
        import ctypes

        ctypes.CDLL(None).fflush(None)


def _show_tail(cap: Capture) -> None:
    lines = cap.lines()
    if not lines:
        return
    err = sys.stderr
    tail = lines[-TAIL_LINES:]
    err.write(f"--- the converters' and runtimes' own output, last {len(tail)} of {len(lines)} lines (all: {cap.path}) ---\n")
    err.write("\n".join(tail) + "\n---\n")
    err.flush()


__all__ = ["Capture", "capture", "console", "log_path", "terminal"]
