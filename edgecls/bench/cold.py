"""Cold start, measured in a fresh process: import, load (+compile), first inference, peak RSS.

The child runs SCRIPT through `python -c`, not `python -m edgecls.bench.cold`: -m imports the edgecls package
before any line of the module runs, so the import time would read ~0. Peak RSS is the child's VmHWM: getrusage's
ru_maxrss survives execve on Linux and would report the benchmarking parent's peak (1.6 GB with torch loaded,
for a 150 MB ONNX Runtime process).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import time
t0 = time.perf_counter()
import json, sys
import numpy as np
import edgecls
t_import = time.perf_counter()
threads = int(sys.argv[2]) or None
pred = edgecls.Predictor(sys.argv[1], threads=threads, cache_dir=sys.argv[3] if len(sys.argv) > 3 else None)
t_load = time.perf_counter()
frame = np.full((1080, 1920, 3) if pred.spec.input.channels == 3 else (1080, 1920), 127, np.uint8)
pred.predict(frame, color="BGR")
t_first = time.perf_counter()
pred.predict(frame, color="BGR")
t_second = time.perf_counter()
try:
    status = open("/proc/self/status").read()
    rss_mb = int(status.split("VmHWM:")[1].split()[0]) / 1024
except (OSError, IndexError, ValueError):  # not Linux: ru_maxrss is bytes on macOS, kB elsewhere; none on Windows
    try:
        import resource
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_mb = rss / 2**20 if sys.platform == "darwin" else rss / 1024
    except ImportError:
        rss_mb = None
print(json.dumps({
    "import_ms": (t_import - t0) * 1e3,
    "load_ms": (t_load - t_import) * 1e3,
    "first_inference_ms": (t_first - t_load) * 1e3,
    "second_inference_ms": (t_second - t_first) * 1e3,
    "load_plus_first_ms": (t_first - t_import) * 1e3,
    "peak_rss_mb": rss_mb,
}))
"""


def _child(path: Path, threads: int, cache_dir: str | None) -> dict:
    cmd = [sys.executable, "-c", SCRIPT, str(path), str(threads or 0)] + ([cache_dir] if cache_dir else [])
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return {"error": "the fresh process did not load and run the model within 600 s"}
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": f"the fresh process printed no result (stdout: {r.stdout[-200:]!r})"}


def cold_start(path: Path, threads: int, cache_dir: str | None = None) -> dict:
    """Run SCRIPT in a fresh interpreter; its JSON line, or {"error": ...} with the child's last stderr line.

    With cache_dir (a runtime with a compiled-model cache): every start after the first is what users live with, so
    the figures are those of a second start, which finds the cache filled; `cache_fill_ms` is the load + first
    inference of the first start (the one that compiles and fills it, unless an earlier run already had).
    """
    if not cache_dir:
        return _child(path, threads, None)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    first = _child(path, threads, cache_dir)
    if "error" in first:
        return first
    return {**_child(path, threads, cache_dir), "cache_dir": str(cache_dir), "cache_fill_ms": first["load_plus_first_ms"]}
