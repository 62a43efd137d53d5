"""How much of what `edgecls demo` prints is edgecls's own: one run, as `make demo` runs it (output to a pipe).

By default (edgecls.quiet) the terminal gets edgecls's lines and the converters' and runtimes' own output goes to
OUT/logs/demo-*.log; with -v both go to the terminal, as every line did before edgecls.quiet. So one quiet run gives
both counts: the lines printed, and printed + logged (what -v prints). Counted in a pipe, where rich draws no spinners
and wraps at the console's width (the demo's tables are 150 wide).

    python benchmarks/demo_output.py [--out demo_out_lines] [--before FILE]   # FILE: a captured run of an older edgecls
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="demo_out_lines", help="the demo's output folder (default: demo_out_lines)")
    ap.add_argument("--before", help="a file holding what an older edgecls's demo printed, to count beside")
    a = ap.parse_args()
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "edgecls", "demo", "-o", a.out], capture_output=True, text=True)
    wall = time.perf_counter() - t
    shown = (r.stdout + r.stderr).splitlines()
    logs = sorted((Path(a.out) / "logs").glob("demo-*.log"), key=lambda p: p.stat().st_mtime)
    logged = logs[-1].read_text(errors="replace").splitlines() if logs else []
    print(f"edgecls demo exit {r.returncode}, {wall / 60:.1f} min")
    print(f"printed: {len(shown)} lines, all edgecls's own (the first names the log)")
    print(f"logged:  {len(logged)} lines of the converters' and runtimes' own output ({logs[-1] if logs else 'no log'})")
    print(f"with -v: {len(shown) + len(logged)} lines, {len(shown) / max(len(shown) + len(logged), 1):.0%} edgecls's own")
    if a.before:
        before = Path(a.before).read_text(errors="replace").splitlines()
        print(f"before:  {len(before)} lines printed; now {len(shown)} ({len(shown) / max(len(before), 1):.0%})")
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
