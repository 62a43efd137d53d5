"""Quiet by default, complete on demand (edgecls.quiet): other tools' output goes to the run's log file, whichever way
they write it (Python print, a rich console of their own, warnings, logging, C stdio, a raw file descriptor, a child
process), also while one of edgecls's spinners runs on a terminal; edgecls's own lines stay on the terminal; a failed
run ends with the log's last lines; -v captures nothing."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# What converters and runtimes do, one line per way of writing; the edgecls lines go through edgecls.quiet.console().
NOISY = textwrap.dedent("""
    import ctypes, logging, os, subprocess, sys, time, warnings
    from rich.console import Console
    from edgecls.quiet import capture, console

    tool_console = Console()  # like litert_torch.progress.console: created at import, follows sys.stdout
    logging.basicConfig()  # like NNCF/absl-py: a stderr handler on the root logger
    with capture(sys.argv[1], verbose=sys.argv[2] == "verbose") as cap:
        con = console()
        con.print("EDGECLS wrote model.tflite")
        with con.status("EDGECLS exporting ..."):
            print("TOOL python print")
            tool_console.print("TOOL rich progress line")
            warnings.warn("TOOL os.fork() was called", RuntimeWarning)
            logging.getLogger("nncf").warning("TOOL logging line")
            ctypes.CDLL(None).puts(b"TOOL C stdio line")
            os.write(2, b"TOOL absl INFO line on fd 2\\n")
            subprocess.run(["echo", "TOOL child process line"], check=True)
            time.sleep(0.3)  # the spinner refreshes while the tools write
        con.print("EDGECLS table row")
        if sys.argv[3] == "fail":
            raise SystemExit(3)
""")
TOOL_LINES = ("TOOL python print", "TOOL rich progress line", "TOOL os.fork() was called", "TOOL logging line",
              "TOOL C stdio line", "TOOL absl INFO line on fd 2", "TOOL child process line")


def _run(tmp_path: Path, mode: str = "quiet", end: str = "ok", tty: bool = False) -> tuple[str, Path, int]:
    """Run NOISY with its stdout/stderr on a pipe, or on a pseudo-terminal (a user's terminal: rich draws a spinner
    and, unless told otherwise, proxies sys.stdout onto its console while it spins)."""
    script = tmp_path / "noisy.py"
    script.write_text(NOISY)
    log = tmp_path / "logs" / "run.log"
    cmd = [sys.executable, str(script), str(log), mode, end]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm", "COLUMNS": "120"}
    if not tty:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
        return r.stdout + r.stderr, log, r.returncode
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdin/stdout/stderr are the pty
        os.chdir(tmp_path)
        os.execve(cmd[0], cmd, env)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the pty
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    return out.decode(errors="replace"), log, os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("tty", [False, True], ids=["pipe", "terminal"])
def test_tools_output_goes_to_the_log_and_edgecls_lines_stay(tmp_path, tty):
    shown, log, rc = _run(tmp_path, tty=tty)
    assert rc == 0, shown
    assert "EDGECLS wrote model.tflite" in shown and "EDGECLS table row" in shown
    leaked = [t for t in TOOL_LINES if t in shown]
    assert leaked == [], f"on the {'terminal' if tty else 'pipe'}: {leaked}\n{shown}"
    logged = log.read_text()
    assert [t for t in TOOL_LINES if t not in logged] == [], logged
    assert "EDGECLS" not in logged


def test_a_failed_run_ends_with_the_log_tail(tmp_path):
    shown, log, rc = _run(tmp_path, end="fail")
    assert rc == 3
    tail = shown[shown.index("last "):]
    assert str(log) in tail and all(t in tail for t in TOOL_LINES), shown


def test_verbose_captures_nothing(tmp_path):
    shown, log, rc = _run(tmp_path, mode="verbose")
    assert rc == 0 and not log.exists()
    assert all(t in shown for t in TOOL_LINES) and "EDGECLS table row" in shown, shown


def test_own_warnings_stay_on_the_terminal(tmp_path):
    """A warning edgecls raises for the user (here the INT8-saturation one's path: edgecls code) is not hidden."""
    script = tmp_path / "w.py"
    script.write_text(textwrap.dedent("""
        import sys, warnings
        from edgecls import quiet
        with quiet.capture(sys.argv[1]):
            warnings.showwarning("EDGECLS int8 saturates on this CPU", RuntimeWarning, quiet.__file__, 1)
            warnings.warn("TOOL deprecation", DeprecationWarning)
    """))
    log = tmp_path / "run.log"
    r = subprocess.run([sys.executable, "-W", "always", str(script), str(log)], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    assert "EDGECLS int8 saturates" in r.stderr and "TOOL deprecation" not in r.stderr
    assert "TOOL deprecation" in log.read_text()


def test_log_path_is_per_run(tmp_path):
    from edgecls.quiet import log_path

    a = log_path(tmp_path, "demo")
    assert a.parent == tmp_path / "logs" and a.name.startswith("demo-") and a.suffix == ".log"
    a.parent.mkdir()
    a.write_text("")
    assert log_path(tmp_path, "demo") != a  # a second run in the same second gets its own file


@pytest.mark.slow
def test_export_keeps_the_converters_lines_in_the_log(artifacts, tmp_path):
    """A real conversion (LiteRT-Torch: per-pass progress, absl and XNNPACK INFO lines): the terminal gets the log's
    path and edgecls's "wrote" line; the log gets the converter's lines."""
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "edgecls", "export", str(artifacts["pt"]), "-f", "tflite", "-o", str(out)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250"})
    assert r.returncode == 0, r.stdout + r.stderr
    (log,) = (out / "logs").glob("export-*.log")
    shown = r.stdout + r.stderr
    assert str(log) in shown and "wrote" in shown, shown
    assert "LiteRT-Torch" not in shown and "XNNPACK" not in shown, shown
    assert "LiteRT-Torch Convert" in log.read_text()


def test_a_run_that_fails_before_any_tool_prints_leaves_no_log_behind(tmp_path, monkeypatch):
    """A bad flag or a missing file fails before a tool prints: no empty log, and no folder made for it, is left."""
    from edgecls.cli import main
    from edgecls.quiet import capture

    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with capture(out / "logs" / "x.log"):
            raise RuntimeError("a bad flag")
    assert not out.exists()
    with pytest.raises(RuntimeError):  # a log with a tool's lines is kept for the user to read
        with capture(out / "logs" / "y.log"):
            os.write(1, b"a tool's own line\n")
            raise RuntimeError("the tool failed")
    assert (out / "logs" / "y.log").read_text() == "a tool's own line\n"
    monkeypatch.chdir(tmp_path)  # eval's default output folder is ./robustness
    assert main(["eval", str(tmp_path / "missing.onnx"), "--data", str(tmp_path)]) == 2
    assert not (tmp_path / "robustness").exists()
