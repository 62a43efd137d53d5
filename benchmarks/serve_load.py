"""`edgecls serve` under load on loopback: the figures of its README section, in one run.

    flock /tmp/edgecls-cpu.lock nice -n 5 .venv/bin/python benchmarks/serve_load.py [--phases capacity latency stall
        soak swap triton] [--soak-requests 100000] [--threads 2] [--workers 1] [--max-batch 8]

Pretrained EfficientNet-Lite0 exported to ONNX with a dynamic batch (uint8 NHWC input, preprocessing fused), the
bundled photos sent as JPEG files (300x451 to 1411x1411), ONNX Runtime on the CPU. The server runs in its own process,
the load generator (edgecls.serve.loadgen: asyncio, raw sockets) in this one: on a 2-core box they share the cores,
so every server figure here is charged for its client's CPU too.

    capacity  images/s of 32 closed-loop clients vs the Predictor's own batch throughput on the same artifact
              (Predictor.predict(list of the same JPEG bytes), batch = --max-batch, same threads), in rounds
              predictor / server / predictor: the ratio is per round, against the mean of the two around it
    latency   open loop (Poisson arrivals) at 50% and 90% of the capacity measured above: p50, p99
    stall     200 connections that send headers announcing a body and then nothing (reopened after their 408), plus
              8 closed-loop clients: share answered 200 and p99, against the same 8 clients alone
    soak      N requests (32 clients): each answered exactly once (ids matched), labels right, server RSS after a
              warmup vs at the end
    swap      8 clients while the model file is replaced and reloaded 5 times (FP32 fused <-> FP32 float-input
              builds), then a file that fails its self-check: failed requests, swap times, versions answered
    triton    tritonclient (its own venv: make install) against the server: health, metadata, infer of frames and of
              JPEG files, top-1 vs the Predictor on the 11 bundled photos
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

import edgecls  # noqa: E402
from edgecls.data.samples import sample_images  # noqa: E402
from edgecls.serve.loadgen import Payload, Stallers, closed_loop, open_loop  # noqa: E402


def jpeg(a: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    """`edgecls serve` in a subprocess on a free loopback port."""

    def __init__(self, models: list, flags: list[str], log: Path):
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.log = open(log, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "edgecls", "serve", *map(str, models), "--port", "0", *flags],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        line = self.proc.stdout.readline()
        if "serving" not in line:
            raise SystemExit(f"the server did not start: {log.read_text()[-2000:]}")
        self.port = int(line.split("http://", 1)[1].split()[0].rsplit(":", 1)[1])

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def post(port: int, path: str) -> tuple[int, dict]:
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    c.request("POST", path, body=b"")
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, json.loads(body) if body else {}


def predictor_rate(path: Path, images: list[bytes], batch: int, threads: int, seconds: float) -> float:
    """Images/s of the Predictor itself: predict() on lists of `batch` JPEG files, back to back."""
    pred = edgecls.Predictor(path, threads=threads)
    lists = [[images[(i + j) % len(images)] for j in range(batch)] for i in range(len(images))]
    pred.predict(lists[0])
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        pred.predict(lists[(n // batch) % len(lists)])
        n += batch
    rate = n / (time.perf_counter() - t0)
    pred.close()
    return rate


def mean_ci(xs: list[float]) -> str:
    if len(xs) < 2:
        return f"{xs[0]:.3f} (n=1)"
    m, s = statistics.mean(xs), statistics.stdev(xs)
    from scipy import stats

    h = stats.t.ppf(0.975, len(xs) - 1) * s / len(xs) ** 0.5
    return f"{m:.3f} [95% CI {m - h:.3f}, {m + h:.3f}] (n={len(xs)} rounds: {', '.join(f'{x:.3f}' for x in xs)})"


def phase_capacity(a, model, payloads, images, out) -> float:
    rates, ratios, batches = [], [], []
    base = [predictor_rate(model, images, a.max_batch, a.threads, a.seconds)]
    srv = Server([model], a.server_flags, out / "capacity.log")
    try:
        asyncio.run(closed_loop("127.0.0.1", srv.port, payloads, clients=32, requests=200, duration_s=60, tag="w"))
        for r in range(a.rounds):
            res = asyncio.run(closed_loop("127.0.0.1", srv.port, payloads, clients=32, requests=10**9,
                                          duration_s=a.seconds, tag=f"cap{r}"))
            base.append(predictor_rate(model, images, a.max_batch, a.threads, a.seconds))  # the server idles meanwhile
            assert res.exactly_once() and res.wrong_label == 0, res.summary()
            rates.append(res.throughput)
            ratios.append(res.throughput / ((base[-2] + base[-1]) / 2))
            batches.append(res.summary()["mean_batch"])
    finally:
        srv.close()
    print(f"capacity: server {statistics.mean(rates):.1f} images/s with 32 clients (mean batch {statistics.mean(batches):.2f}); "
          f"Predictor batch {a.max_batch} alone {statistics.mean(base):.1f} images/s; server/Predictor {mean_ci(ratios)}",
          flush=True)
    return statistics.mean(rates)


def phase_latency(a, model, payloads, capacity, out) -> None:
    srv = Server([model], a.server_flags, out / "latency.log")
    try:
        asyncio.run(closed_loop("127.0.0.1", srv.port, payloads, clients=8, requests=100, duration_s=60, tag="w"))
        for share in (0.5, 0.9):
            rate = share * capacity
            r = asyncio.run(open_loop("127.0.0.1", srv.port, payloads, rate=rate, requests=int(rate * a.seconds * 2),
                                      duration_s=a.seconds * 2, seed=int(share * 10), tag=f"l{share}"))
            assert r.exactly_once() and r.wrong_label == 0, r.summary()
            s = r.summary()
            print(f"latency at {share:.0%} of capacity ({rate:.1f}/s Poisson, n={r.ok}): p50 {s['p50_ms']} ms, "
                  f"p99 {s['p99_ms']} ms, mean batch {s['mean_batch']}, statuses {s['statuses']}", flush=True)
    finally:
        srv.close()


def phase_stall(a, model, payloads, out) -> None:
    srv = Server([model], a.server_flags, out / "stall.log")
    try:
        async def run():
            await closed_loop("127.0.0.1", srv.port, payloads, clients=8, requests=100, duration_s=60, tag="w")
            alone = await closed_loop("127.0.0.1", srv.port, payloads, clients=8, requests=a.stall_requests,
                                      duration_s=600, tag="alone")
            stall = Stallers("127.0.0.1", srv.port, 200)
            await stall.start()
            loaded = await closed_loop("127.0.0.1", srv.port, payloads, clients=8, requests=a.stall_requests,
                                       duration_s=600, tag="stalled")
            held = stall.open
            await stall.stop()
            return alone, loaded, held, dict(stall.answers)

        alone, loaded, held, answers = asyncio.run(run())
    finally:
        srv.close()
    ok = loaded.ok / loaded.sent
    print(f"stalled: 200 stalled connections ({held} still open at the end; their answers {answers}) + 8 clients: "
          f"{loaded.ok}/{loaded.sent} answered 200 ({ok:.2%}), p99 {loaded.percentile(99) * 1e3:.1f} ms vs "
          f"{alone.percentile(99) * 1e3:.1f} ms for the 8 clients alone (x{loaded.percentile(99) / alone.percentile(99):.2f}); "
          f"p50 {loaded.percentile(50) * 1e3:.1f} vs {alone.percentile(50) * 1e3:.1f} ms; exactly once: "
          f"{loaded.exactly_once()}, wrong labels {loaded.wrong_label}", flush=True)


def phase_soak(a, model, payloads, out) -> None:
    srv = Server([model], a.server_flags, out / "soak.log")
    try:
        warm = asyncio.run(closed_loop("127.0.0.1", srv.port, payloads, clients=32, requests=a.soak_warmup,
                                       duration_s=3600, tag="w"))
        before = rss_mb(srv.proc.pid)
        samples = []

        async def run():
            task = asyncio.create_task(closed_loop("127.0.0.1", srv.port, payloads, clients=32, requests=a.soak_requests,
                                                   duration_s=3 * 3600, tag="s"))
            while not task.done():
                await asyncio.sleep(30)
                samples.append(round(rss_mb(srv.proc.pid) - before, 1))
            return await task

        r = asyncio.run(run())
        after = rss_mb(srv.proc.pid)
    finally:
        srv.close()
    s = r.summary()
    print(f"soak: {r.sent} requests ({warm.sent} warmup before): statuses {s['statuses']}, answered exactly once: "
          f"{r.exactly_once()} (ids matched, {len(r.answered_ids)} distinct), wrong labels {r.wrong_label}, "
          f"{s['throughput_per_s']}/s; server RSS {before:.1f} MB after warmup -> {after:.1f} MB "
          f"({after - before:+.1f} MB; every 30 s: {samples})", flush=True)


def phase_swap(a, model, alt, payloads, out) -> None:
    work = out / "swap"
    work.mkdir(exist_ok=True)
    live = work / "cam.onnx"
    shutil.copy(model, live)
    builds = [alt, model]

    def publish(src: bytes) -> None:
        tmp = live.with_name("cam.onnx.new")
        tmp.write_bytes(src)
        os.replace(tmp, live)

    srv = Server([live], a.server_flags, out / "swap.log")
    try:
        async def run():
            stop = asyncio.Event()
            load = asyncio.create_task(closed_loop("127.0.0.1", srv.port, payloads, clients=8, requests=10**9,
                                                   duration_s=600, stop=stop, tag="swap"))
            times = []
            ex = asyncio.get_running_loop().run_in_executor
            for i in range(5):
                await asyncio.sleep(2)
                publish(builds[i % 2].read_bytes())
                t = time.perf_counter()
                code, body = await ex(None, post, srv.port, "/v2/repository/models/cam/load")
                times.append(round(time.perf_counter() - t, 2))
                assert code == 200, body
            import onnx
            from onnx import numpy_helper

            m = onnx.load(str(model))
            big = max(m.graph.initializer, key=lambda t: int(np.prod(t.dims)) if len(t.dims) == 2 else 0)
            big.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(big), big.name))
            publish(m.SerializeToString())
            refused = await ex(None, post, srv.port, "/v2/repository/models/cam/load")
            await asyncio.sleep(2)
            stop.set()
            return times, refused, await load

        times, refused, r = asyncio.run(run())
    finally:
        srv.close()
    s = r.summary()
    print(f"hot swap: 5 swaps under 8 clients ({r.sent} requests): statuses {s['statuses']}, exactly once "
          f"{r.exactly_once()}, wrong labels {r.wrong_label}, swap (load + self-check + warm-up + switch) "
          f"{times} s, versions answered {sorted({v for v, _ in r.versions})}; a file failing its self-check: "
          f"{refused[0]} ({refused[1]['error'][:120]}...)", flush=True)


def phase_triton(a, model, out) -> None:
    py = Path(os.environ.get("EDGECLS_TRITONCLIENT_PYTHON") or REPO / ".venv-tritonclient" / "bin" / "python")
    if not py.is_file():
        print("triton: no tritonclient venv (make install builds .venv-tritonclient)")
        return
    photos = sample_images()
    names = sorted(photos)
    files = [jpeg(photos[k]) for k in names]
    pred = edgecls.Predictor(model, threads=a.threads)
    want = [pred.predict(f).index for f in files]
    srv = Server([f"cam={model}"], a.server_flags, out / "triton.log")
    code = f"""
import json, sys, numpy as np
import tritonclient.http as h
c = h.InferenceServerClient("127.0.0.1:{srv.port}")
files = [sys.stdin.buffer.read(int(n)) for n in sys.argv[1:]]
i = h.InferInput("image_bytes", [len(files)], "BYTES"); i.set_data_from_numpy(np.array(files, dtype=np.object_))
r = c.infer("cam", [i])
print(json.dumps({{"live": c.is_server_live(), "ready": c.is_model_ready("cam"),
                  "meta": c.get_model_metadata("cam")["inputs"], "top1": r.as_numpy("scores").argmax(1).tolist()}}))
"""
    try:
        r = subprocess.run([str(py), "-c", code, *(str(len(f)) for f in files)], input=b"".join(files),
                           capture_output=True, timeout=300)
    finally:
        srv.close()
    if r.returncode:
        print(f"triton: failed: {r.stderr.decode()[-1500:]}")
        return
    got = json.loads(r.stdout)
    same = sum(x == y for x, y in zip(got["top1"], want))
    print(f"triton: tritonclient: server live {got['live']}, model ready {got['ready']}, inputs "
          f"{[i['name'] for i in got['meta']]}; top-1 equal to "
          f"the Predictor's on {same}/{len(want)} bundled photos (one infer call with {len(files)} JPEG files)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phases", nargs="+", default=["capacity", "latency", "stall", "soak", "swap", "triton"])
    ap.add_argument("--threads", type=int, default=2, help="runtime threads (server and Predictor)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--max-wait-ms", type=float, default=2.0)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each timed capacity/latency stretch")
    ap.add_argument("--rounds", type=int, default=3, help="server/Predictor capacity rounds")
    ap.add_argument("--capacity", type=float, help="skip measuring capacity: images/s for the latency phase")
    ap.add_argument("--stall-requests", type=int, default=800)
    ap.add_argument("--soak-requests", type=int, default=100_000)
    ap.add_argument("--soak-warmup", type=int, default=2_000)
    ap.add_argument("--out", default=str(REPO / "bench_out" / "serve"))
    a = ap.parse_args()
    a.server_flags = ["--threads", str(a.threads), "--workers", str(a.workers), "--max-batch", str(a.max_batch),
                      "--max-wait-ms", str(a.max_wait_ms), "--max-queue", str(max(64, a.max_batch))]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model, alt = out / "lite0_dyn.onnx", out / "lite0_dyn_f32.onnx"
    if not (model.is_file() and alt.is_file()):
        net, spec = edgecls.create_model("efficientnet_lite0", pretrained=True)
        edgecls.export(net, spec, model, dynamic_batch=True)
        edgecls.export(net, spec, alt, dynamic_batch=True, fuse_preprocess=False)
    photos = sample_images()
    images = [jpeg(p) for p in photos.values()]
    pred = edgecls.Predictor(model, threads=a.threads)
    payloads = [Payload(b, pred.predict(b).label) for b in images]
    pred.close()
    print(f"edgecls serve load test: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; server flags {a.server_flags}; "
          f"{len(images)} JPEG photos; the load generator shares the CPU with the server", flush=True)
    capacity = a.capacity
    if "capacity" in a.phases:
        capacity = phase_capacity(a, model, payloads, images, out)
    if "latency" in a.phases:
        if capacity is None:
            raise SystemExit("the latency phase needs the capacity: run it too, or give --capacity")
        phase_latency(a, model, payloads, capacity, out)
    if "stall" in a.phases:
        phase_stall(a, model, payloads, out)
    if "soak" in a.phases:
        phase_soak(a, model, payloads, out)
    if "swap" in a.phases:
        phase_swap(a, model, alt, payloads, out)
    if "triton" in a.phases:
        phase_triton(a, model, out)


if __name__ == "__main__":
    main()
