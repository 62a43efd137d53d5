"""Board power on a Jetson while the model runs: VDD_IN (the module's input rail, what the whole module draws) from
`tegrastats` or jetson-stats (`jtop`), as a mean over a timed window minus an idle baseline, and energy per inference.

tegrastats prints one line per interval; each power rail reads `NAME X/Y` (L4T 32, e.g. `POM_5V_IN 2456/2456`) or
`NAME XmW/YmW` (JetPack 5/6), X the current and Y the running-average power in milliwatts (NVIDIA's tegrastats
documentation). The total rail is VDD_IN, or POM_5V_IN on Nano/TX1/TX2. Only the current value is used: the
average runs over tegrastats' whole lifetime and would smear the window. jtop's `power` is
`{"rail": {name: {"volt", "curr", "power", "avg", ...}}, "tot": {"power", "avg", "name", ...}}` in mW.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from typing import Callable

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")


def parse_tegrastats(line: str) -> dict[str, tuple[int, int]]:
    """rail -> (current mW, average mW) of one tegrastats line (RAM/SWAP "X/YMB" figures are not rails)."""
    return {name: (int(cur), int(avg)) for name, cur, avg in _RAIL.findall(line) if name not in ("RAM", "SWAP", "IRAM")}


def total_mw(rails: dict[str, tuple[int, int]]) -> tuple[str, int] | None:
    """(rail name, current mW) of the board's input rail, or None when the line has none."""
    for name in TOTAL_RAILS:
        if name in rails:
            return name, rails[name][0]
    return None


def jtop_total_mw(power: dict) -> tuple[str, int] | None:
    """(rail, current mW) from jtop's `jetson.power` dict."""
    tot = power.get("tot") or {}
    if "power" not in tot:
        return None
    return str(tot.get("name") or "total"), int(tot["power"])


class _Sampler:
    """Power samples (time, total mW) read on a daemon thread; the rail they come from."""

    def __init__(self):
        self.rail, self.samples = None, []

    def _add(self, total) -> None:
        if total:
            self.rail = total[0]
            self.samples.append((time.monotonic(), float(total[1])))

    def window(self, t0: float, t1: float) -> list[float]:
        return [mw for t, mw in list(self.samples) if t0 <= t <= t1]


class TegrastatsSampler(_Sampler):
    """Runs `tegrastats --interval MS` and keeps (monotonic time, VDD_IN mW) samples from a reader thread."""

    def __init__(self, interval_ms: int = 100, command: str | None = None):
        exe = command or shutil.which("tegrastats")
        if not exe:
            raise FileNotFoundError("tegrastats is not on PATH (it ships with Jetson Linux)")
        super().__init__()
        self._proc = subprocess.Popen([exe, "--interval", str(int(interval_ms))], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            self._add(total_mw(parse_tegrastats(line)))

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._proc.kill()


class JtopSampler(_Sampler):
    """The same from jetson-stats' service (`jtop`), where tegrastats is not reachable (a container with jtop.sock)."""

    def __init__(self):
        from jtop import jtop

        super().__init__()
        self._stop = threading.Event()
        self._jetson = jtop()
        self._jetson.start()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set() and self._jetson.ok():
            self._add(jtop_total_mw(self._jetson.power))

    def close(self) -> None:
        self._stop.set()
        self._jetson.close()


def sampler():
    """A power sampler on a Jetson (tegrastats, else jtop), or None where neither exists (not a Jetson)."""
    try:
        return TegrastatsSampler()
    except (FileNotFoundError, OSError):
        pass
    try:
        return JtopSampler()
    except Exception:  # noqa: BLE001 - jtop missing, or its service not running
        return None


def measure(call: Callable[[], object], sampler_, seconds: float = 3.0, idle_s: float = 2.0) -> dict:
    """Idle baseline, then `call` in a loop for `seconds`: mean VDD_IN over each window, the difference, and energy per
    inference (the extra power over idle times the window, per call; total_mj includes the idle draw)."""
    t0 = time.monotonic()
    time.sleep(idle_s)
    t1 = time.monotonic()
    n = 0
    while time.monotonic() - t1 < seconds:
        call()
        n += 1
    t2 = time.monotonic()
    time.sleep(0.25)  # the sample that covers the window's end
    idle, busy = sampler_.window(t0, t1), sampler_.window(t1, t2)
    if not idle or not busy:
        return {"error": f"tegrastats gave {len(idle)} idle and {len(busy)} busy samples; lengthen the windows"}
    idle_w, busy_w = sum(idle) / len(idle) / 1e3, sum(busy) / len(busy) / 1e3
    per_call_s = (t2 - t1) / n
    return {"rail": sampler_.rail, "source": "jtop" if isinstance(sampler_, JtopSampler) else "tegrastats", "idle_w": idle_w, "busy_w": busy_w, "delta_w": busy_w - idle_w,
            "energy_mj_per_inference": (busy_w - idle_w) * per_call_s * 1e3, "total_mj_per_inference": busy_w * per_call_s * 1e3,
            "samples": len(busy), "inferences": n}
