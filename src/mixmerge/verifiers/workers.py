"""A pool of warm worker processes with a hard per-item timeout.

A worker that overruns its item's deadline (or crashes) is killed and replaced; its item scores ``default``
and the rest of the batch goes on. An item that raises scores ``default`` too, except for a ``ScoringError``
(a malformed verifier, a missing sandbox: not the model's fault), which the pool re-raises in the caller with
the item's index as ``item_index``. Workers come from a ``forkserver`` (a clean single-threaded process), so
forking them is safe even when the caller runs threads, and they run every item in their main thread, where
signal-based library timeouts (math-verify) work. Functions are pickled by reference, so they must be
top-level; their modules are imported once per worker.
"""
from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import os
import threading
import time
from collections import deque
from multiprocessing.connection import wait

from mixmerge.verifiers.errors import ScoringError

log = logging.getLogger(__name__)
_PRELOAD: list[str] = []  # modules the forkserver imports ahead (set by callers before the first pool starts)
_IN_WORKER = False  # inside a worker the outer deadline already bounds every call: no nested pools


def _worker_main(conn) -> None:
    global _IN_WORKER
    _IN_WORKER = True
    while True:
        try:
            fn, args = conn.recv()
        except EOFError:
            return
        try:
            conn.send((True, fn(*args)))
        except ScoringError as exc:  # re-raised in the parent
            conn.send(("raise", exc))
        except Exception as exc:  # reported to the parent, which scores the item as the default
            conn.send((False, f"{type(exc).__name__}: {exc}"))


class _Worker:
    def __init__(self, ctx) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.proc.start()
        child.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join()
        self.conn.close()


class Pool:
    def __init__(self, workers: int) -> None:
        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(_PRELOAD)
        self.size = workers
        self.idle: list[_Worker] = []
        self.lock = threading.Lock()
        self.replaced = 0  # workers killed for overrunning or crashing (for tests and logs)

    def _get(self) -> _Worker:
        return self.idle.pop() if self.idle else _Worker(self.ctx)

    def map(self, fn, items: list[tuple], timeout_s: float, default) -> list:
        with self.lock:
            return self._map(fn, items, timeout_s, default)

    def _map(self, fn, items, timeout_s, default) -> list:
        results = [default] * len(items)
        pending = deque(enumerate(items))
        busy: dict = {}  # conn -> (worker, index, deadline)
        while pending or busy:
            while pending and len(busy) < self.size:
                index, args = pending.popleft()
                worker = self._get()
                try:
                    worker.conn.send((fn, tuple(args)))
                except (OSError, ValueError) as exc:  # dead worker or unpicklable item
                    log.warning("item %d could not be sent to a worker: %s", index, exc)
                    self._retire(worker)
                    continue
                busy[worker.conn] = (worker, index, time.monotonic() + timeout_s)
            next_deadline = min(d for _, _, d in busy.values())
            for conn in wait(list(busy), timeout=max(0.0, next_deadline - time.monotonic())):
                worker, index, _ = busy.pop(conn)
                try:
                    ok, value = conn.recv()
                except (EOFError, OSError):
                    log.warning("worker died on item %d; scoring it %r", index, default)
                    self._retire(worker)
                    continue
                self.idle.append(worker)
                if ok == "raise":
                    self._abandon(busy)
                    value.item_index = index
                    raise value
                if ok:
                    results[index] = value
                else:
                    log.warning("item %d raised %s; scoring it %r", index, value, default)
            now = time.monotonic()
            for conn, (worker, index, deadline) in list(busy.items()):
                if now >= deadline:
                    log.warning("item %d exceeded %.1f s; worker killed and replaced", index, timeout_s)
                    del busy[conn]
                    self._retire(worker)
        return results

    def _abandon(self, busy: dict) -> None:
        """Stop the batch: workers still busy on its items are killed (their answers would arrive late)."""
        for worker, _, _ in busy.values():
            self._retire(worker)
        busy.clear()

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        self.replaced += 1

    def close(self) -> None:
        with self.lock:
            for worker in self.idle:
                worker.kill()
            self.idle.clear()


def preload(modules) -> None:
    """Add modules for workers to import ahead; effective for pools started after this call."""
    for module in modules:
        if module not in _PRELOAD:
            _PRELOAD.append(module)


_pools: dict[int, Pool] = {}
_pools_lock = threading.Lock()


def get_pool(workers: int | None = None) -> Pool:
    size = workers or len(os.sched_getaffinity(0))
    with _pools_lock:
        if size not in _pools:
            _pools[size] = Pool(size)
        return _pools[size]


@atexit.register
def _shutdown() -> None:
    for pool in _pools.values():
        pool.close()


def score_batch(fn, items: list[tuple], timeout_s: float, workers: int | None = None,
                default: float = 0.0) -> list[float]:
    """``[fn(*item) for item in items]`` across warm workers; an item that overruns or crashes gets ``default``;
    a ``ScoringError`` raised by ``fn`` is raised here."""
    if not items:
        return []
    return get_pool(workers).map(fn, items, timeout_s, default)


def call_with_timeout(fn, args: tuple, timeout_s: float, default=0.0):
    """One call of ``fn(*args)`` in a warm worker, bounded by ``timeout_s``. Inside a worker, a direct call:
    the worker's own deadline bounds it."""
    if _IN_WORKER:
        return fn(*args)  # a ScoringError propagates to the worker loop, which hands it to the caller
    return get_pool().map(fn, [args], timeout_s, default)[0]
