"""Dynamic batching on the event loop: images of concurrent requests for one model are gathered into one batch.

A batch is dispatched when `max_batch` images are queued, or when the oldest queued image has waited `max_wait`
(Triton's `max_queue_delay`: the wait counts from when that image was queued, so an image that already waited for a
busy worker is not held longer), and only when one of the `workers` slots is free; while every worker is busy,
images pile up and the next batch forms by itself. The batch runs on a worker thread; each caller gets its own row
back through its own future, set on the event loop. A caller that gave up (its deadline passed, its client left)
cancels its future: a cancelled image still queued is dropped, never run.
"""

from __future__ import annotations

import asyncio
import collections
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import RequestError


@dataclass(eq=False)
class Job:
    x: np.ndarray  # one image's model input, batch of one
    topk: int
    future: asyncio.Future
    queued: float = field(default_factory=time.monotonic)


class Batcher:
    """run(jobs) -> one result (or exception) per job, called on a worker thread of `executor`."""

    def __init__(self, run: Callable[[list[Job]], list[Any]], *, max_batch: int, max_wait_s: float, executor: Executor,
                 workers: int):
        self.run, self.max_batch, self.max_wait_s = run, max_batch, max_wait_s
        self.executor, self.workers = executor, workers
        self._queue: collections.deque[Job] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._free: asyncio.Semaphore | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start gathering on the running event loop."""
        self._wake, self._free = asyncio.Event(), asyncio.Semaphore(self.workers)
        self._task = asyncio.get_running_loop().create_task(self._gather_forever())

    @property
    def depth(self) -> int:
        """Images queued for a batch (not yet running)."""
        return len(self._queue)

    def submit(self, x: np.ndarray, topk: int) -> asyncio.Future:
        if self._task is None or self._task.done():
            raise RuntimeError("the batcher is not running")
        job = Job(x, topk, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        if len(self._queue) == 1 or len(self._queue) >= self.max_batch:  # the gatherer waits for one of these two
            self._wake.set()
        return job.future

    async def _gather_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._free.acquire()
            try:
                jobs = await self._next_batch()
            except BaseException:
                self._free.release()
                raise
            done = loop.run_in_executor(self.executor, self.run, jobs)
            done.add_done_callback(lambda f, jobs=jobs: self._deliver(f, jobs))

    async def _next_batch(self) -> list[Job]:
        q = self._queue
        while True:
            while q and q[0].future.done():  # given up while queued (deadline, client gone): never run
                q.popleft()
            wait = None
            if q:
                wait = q[0].queued + self.max_wait_s - time.monotonic()
                if len(q) >= self.max_batch or wait <= 0:
                    jobs = []
                    while q and len(jobs) < self.max_batch:
                        job = q.popleft()
                        if not job.future.done():
                            jobs.append(job)
                    if jobs:
                        return jobs
                    continue
            self._wake.clear()
            if wait is None:
                await self._wake.wait()
            else:
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass

    def _deliver(self, done: asyncio.Future, jobs: list[Job]) -> None:
        self._free.release()
        try:
            results = done.result()
        except BaseException as exc:  # noqa: BLE001 - the whole batch failed: every caller hears why
            results = [exc] * len(jobs)
        for job, result in zip(jobs, results):
            if job.future.done():  # its caller gave up while the batch ran
                continue
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)

    async def drain(self) -> None:
        """Stop gathering, fail what is still queued, and wait for the running batches to finish (after this the
        model can be closed: no thread is inside it)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():
                job.future.set_exception(RequestError(503, "the model was unloaded before this image ran (the server "
                                                          "is stopping); retry", {"Retry-After": "1"}))
        if self._free is not None:
            for _ in range(self.workers):
                await self._free.acquire()


__all__ = ["Batcher", "Job"]
