"""A load generator for an edgecls server on asyncio and raw sockets (HTTP/1.1 keep-alive): cheap enough to share a
2-core box with the server it measures, bounded in requests and time, stopping by itself.

Every request carries a unique X-Request-Id and every answer is matched to it, so a run counts what a server owes
its clients: each request answered exactly once, with the label of the image that request sent.

    closed_loop(...)   N clients, each sending its next request when the last one is answered (capacity)
    open_loop(...)     requests at a Poisson rate whatever the answers do (latency at a given load: a request's
                       latency counts from when it was due, so a server that falls behind is charged for it)
    Stallers           connections that announce a body and never send it, reopened when the server closes them
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Payload:
    body: bytes
    label: str | None = None  # the answer the image must get (None: not checked)
    content_type: str = "image/jpeg"


@dataclass
class Result:
    sent: int = 0
    statuses: Counter = field(default_factory=Counter)  # status code (or "error": no answer) -> count
    latencies: list[float] = field(default_factory=list)  # seconds, answers with status 200
    answered_ids: Counter = field(default_factory=Counter)  # request id -> answers carrying it
    wrong_label: int = 0  # 200 answers whose label is not the one of the image sent
    wrong_id: int = 0  # 200 answers carrying another request's id (or none)
    batch_sizes: Counter = field(default_factory=Counter)
    versions: Counter = field(default_factory=Counter)  # (model version, sha256) of the 200 answers
    retry_after: Counter = field(default_factory=Counter)  # Retry-After of the 503 answers
    wall_s: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def answered(self) -> int:
        return sum(v for k, v in self.statuses.items() if k != "error")

    @property
    def throughput(self) -> float:
        return self.ok / self.wall_s if self.wall_s else 0.0

    def percentile(self, q: float) -> float:
        xs = sorted(self.latencies)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))]

    def exactly_once(self) -> bool:
        """Every request sent was answered (any status), once, with its own id on every 200."""
        return (self.answered == self.sent and self.wrong_id == 0 and "error" not in self.statuses
                and all(v == 1 for v in self.answered_ids.values()))

    def summary(self) -> dict:
        return {"sent": self.sent, "statuses": {str(k): v for k, v in sorted(self.statuses.items(), key=str)},
                "throughput_per_s": round(self.throughput, 2), "p50_ms": round(self.percentile(50) * 1e3, 2),
                "p99_ms": round(self.percentile(99) * 1e3, 2), "wrong_label": self.wrong_label,
                "wrong_id": self.wrong_id, "exactly_once": self.exactly_once(),
                "mean_batch": round(sum(k * v for k, v in self.batch_sizes.items()) / max(1, sum(self.batch_sizes.values())), 2),
                "wall_s": round(self.wall_s, 2)}


class Connection:
    """One keep-alive connection, opened on first use and again after the server closed it."""

    def __init__(self, host: str, port: int, timeout_s: float):
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = time.monotonic()

    async def request(self, head: bytes, body: bytes) -> tuple[int, dict, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout_s)
        try:
            self.writer.write(head)
            self.writer.write(body)
            status, headers, data = await asyncio.wait_for(self._response(), self.timeout_s)
        except BaseException:
            self.close()
            raise
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        self.last_used = time.monotonic()
        return status, headers, data

    async def _response(self) -> tuple[int, dict, bytes]:
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw[:-4].split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get(b"content-length", b"0"))
        return status, headers, await self.reader.readexactly(n) if n else b""

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _head(path: str, host: str, p: Payload, rid: str, extra: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Type: {p.content_type}", f"Content-Length: {len(p.body)}",
             f"X-Request-Id: {rid}", *(f"{k}: {v}" for k, v in extra.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class _Run:
    """What the two loops share: one request sent and its answer checked into a Result."""

    def __init__(self, host: str, port: int, payloads: list[Payload], path: str, headers: dict[str, str] | None,
                 timeout_s: float, tag: str):
        self.host, self.port, self.payloads, self.path = host, port, payloads, path
        self.headers, self.timeout_s, self.tag = headers or {}, timeout_s, tag
        self.result = Result()

    async def one(self, conn: Connection, i: int, due: float) -> None:
        p = self.payloads[i % len(self.payloads)]
        rid = f"{self.tag}-{i}"
        self.result.sent += 1
        try:
            status, headers, data = await conn.request(_head(self.path, self.host, p, rid, self.headers), p.body)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            self.result.statuses["error"] += 1
            return
        latency = time.perf_counter() - due
        r = self.result
        r.statuses[status] += 1
        if status == 503:
            r.retry_after[headers.get(b"retry-after", b"").decode()] += 1
        if status != 200:
            return
        r.latencies.append(latency)
        try:
            answer = json.loads(data)
        except ValueError:
            r.wrong_id += 1
            return
        r.answered_ids[answer.get("id")] += 1
        r.wrong_id += answer.get("id") != rid
        r.wrong_label += p.label is not None and answer.get("label") != p.label
        r.batch_sizes[answer.get("batch_size", 0)] += 1
        r.versions[(answer.get("version"), answer.get("sha256"))] += 1


async def closed_loop(host: str, port: int, payloads: list[Payload], *, clients: int, requests: int,
                      duration_s: float, path: str = "/v1/predict", headers: dict[str, str] | None = None,
                      timeout_s: float = 30.0, tag: str = "c", stop: asyncio.Event | None = None) -> Result:
    """`clients` connections, each sending back-to-back, until `requests` are sent, `duration_s` has passed or `stop`
    is set."""
    run = _Run(host, port, payloads, path, headers, timeout_s, tag)
    counter = iter(range(requests))
    t0 = time.perf_counter()
    end = t0 + duration_s

    async def client() -> None:
        conn = Connection(host, port, timeout_s)
        try:
            for i in counter:
                if time.perf_counter() >= end or (stop is not None and stop.is_set()):
                    break
                await run.one(conn, i, time.perf_counter())
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    run.result.wall_s = time.perf_counter() - t0
    return run.result


async def open_loop(host: str, port: int, payloads: list[Payload], *, rate: float, requests: int, duration_s: float,
                    max_connections: int = 256, path: str = "/v1/predict", headers: dict[str, str] | None = None,
                    timeout_s: float = 30.0, seed: int = 0, tag: str = "o", max_idle_s: float = 2.0) -> Result:
    """Requests at Poisson arrivals of `rate` per second until `requests` or `duration_s`; a request waits for one of
    `max_connections` connections if all are busy, and that wait is part of its latency. A connection idle for over
    `max_idle_s` is closed rather than reused: below the server's keep-alive timeout (5 s by default), so a request is
    never written into a connection the server is closing at that moment (what HTTP clients retry; this one counts)."""
    run = _Run(host, port, payloads, path, headers, timeout_s, tag)
    rng = random.Random(seed)
    idle: list[Connection] = []
    slots = asyncio.Semaphore(max_connections)
    tasks = set()

    async def one(i: int, due: float) -> None:
        async with slots:
            while idle and time.monotonic() - idle[0].last_used > max_idle_s:
                idle.pop(0).close()
            conn = idle.pop() if idle else Connection(host, port, timeout_s)
            await run.one(conn, i, due)
            idle.append(conn)

    t0 = time.perf_counter()
    t = 0.0
    for i in range(requests):
        t += rng.expovariate(rate)
        if t > duration_s:
            break
        delay = t0 + t - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, t0 + t))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks))
    for conn in idle:
        conn.close()
    run.result.wall_s = time.perf_counter() - t0
    return run.result


class Stallers:
    """`n` connections that send a request's headers announcing `announce` body bytes, then nothing; when the server
    answers or closes one, it is opened again, until stop(). Counts the answers they got (408 expected)."""

    def __init__(self, host: str, port: int, n: int, *, path: str = "/v1/predict", announce: int = 100_000,
                 headers: dict[str, str] | None = None):
        self.host, self.port, self.n = host, port, n
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\n{extra}"
                     f"Content-Length: {announce}\r\n\r\n").encode()
        self.answers: Counter = Counter()
        self.open = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._hold()) for _ in range(self.n)]
        while self.open < self.n and not all(t.done() for t in self._tasks):
            await asyncio.sleep(0.01)

    async def _hold(self) -> None:
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                self.answers["refused"] += 1
                await asyncio.sleep(0.1)
                continue
            self.open += 1
            try:
                writer.write(self.head)
                closed = asyncio.create_task(reader.read())  # the server's answer, then EOF
                stop = asyncio.create_task(self._stop.wait())
                await asyncio.wait({closed, stop}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                if closed.done() and not closed.cancelled() and closed.exception() is None:
                    data = closed.result()
                    self.answers[int(data.split(b" ", 2)[1]) if data[:5] == b"HTTP/" else "closed"] += 1
                elif closed.done() and not closed.cancelled():
                    self.answers["reset"] += 1
                else:
                    closed.cancel()
            except OSError:
                self.answers["reset"] += 1
            finally:
                self.open -= 1
                writer.close()

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)


__all__ = ["Connection", "Payload", "Result", "Stallers", "closed_loop", "open_loop"]
