"""Cold start, measured in a fresh process: import, load (+compile), first inference, peak RSS.

    python -m edgecls.bench.cold MODEL [--threads N]   -> one JSON line on stdout
"""

from __future__ import annotations

import json
import resource
import sys
import time


def main() -> None:
    t0 = time.perf_counter()
    import numpy as np

    import edgecls

    t_import = time.perf_counter()
    args = sys.argv[1:]
    threads = int(args[args.index("--threads") + 1]) if "--threads" in args else None
    pred = edgecls.Predictor(args[0], threads=threads)
    t_load = time.perf_counter()
    i = pred.spec.input
    frame = np.full((1080, 1920, 3) if i.channels == 3 else (1080, 1920), 127, np.uint8)
    pred.predict(frame, color="BGR")
    t_first = time.perf_counter()
    pred.predict(frame, color="BGR")
    t_second = time.perf_counter()
    print(json.dumps({
        "import_ms": (t_import - t0) * 1e3,
        "load_ms": (t_load - t_import) * 1e3,
        "first_inference_ms": (t_first - t_load) * 1e3,
        "second_inference_ms": (t_second - t_first) * 1e3,
        "load_plus_first_ms": (t_first - t_import) * 1e3,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
