"""Local GPU leases: concrete device ids for concurrent Snakemake jobs on one node.

Snakemake's ``--resources gpu=8`` caps how many GPUs are in use at once but never says which; without help
two 1-GPU jobs both land on device 0. A lease is a record ``device -> (pid, process start time, job)`` in
``<lease_dir>/leases.json``, read and written under an exclusive ``flock`` on ``<lease_dir>/lock``. A record
whose process is gone (or whose pid now belongs to a newer process) is stale and its device is free again,
so a job that crashes or is killed gives its GPUs back without cleanup.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from pathlib import Path

DEFAULT_DIR = ".snakemake/gpu_leases"


class LeaseError(RuntimeError):
    pass


def process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, start = fields[0], fields[19]
    return None if state in (b"Z", b"X") else start.decode()


def holder_alive(record: dict) -> bool:
    return process_start(record["pid"]) == record["start"]


def device_pool(env: dict | None = None) -> list[str]:
    """Devices this node may hand out: ``MIXMERGE_GPU_POOL`` (ids like ``0,1,2``, or a single number = a count, for
    tests and for reserving GPUs), else ``CUDA_VISIBLE_DEVICES`` when set, else every NVIDIA GPU."""
    env = os.environ if env is None else env
    pool = env.get("MIXMERGE_GPU_POOL")
    if pool is not None:
        pool = pool.strip()
        return [str(i) for i in range(int(pool))] if pool.isdigit() else _ids(pool)
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return _ids(visible)
    return [str(i) for i in range(_nvidia_gpu_count())]


def _ids(spec: str) -> list[str]:
    return [d.strip() for d in spec.split(",") if d.strip()]


def _nvidia_gpu_count() -> int:
    gpus = Path("/proc/driver/nvidia/gpus")
    return len(list(gpus.iterdir())) if gpus.is_dir() else 0


@contextlib.contextmanager
def _locked(lease_dir: Path):
    lease_dir.mkdir(parents=True, exist_ok=True)
    with open(lease_dir / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load(lease_dir: Path) -> dict:
    path = lease_dir / "leases.json"
    return json.loads(path.read_text()) if path.exists() and path.stat().st_size else {}


def _store(lease_dir: Path, leases: dict) -> None:
    tmp = lease_dir / "leases.json.tmp"
    tmp.write_text(json.dumps(leases, indent=1, sort_keys=True))
    tmp.replace(lease_dir / "leases.json")


def live_leases(lease_dir: str | Path) -> dict:
    """Current leases with stale ones (dead holders) left out; nothing is written."""
    lease_dir = Path(lease_dir)
    with _locked(lease_dir):
        return {dev: rec for dev, rec in _load(lease_dir).items() if holder_alive(rec)}


def try_acquire(n: int, pool: list[str], lease_dir: str | Path, pid: int, job: str = "") -> list[str] | None:
    """Lease ``n`` free devices of ``pool`` to process ``pid``; None when fewer than ``n`` are free."""
    if n > len(pool):
        raise LeaseError(f"job {job!r} needs {n} GPUs but this node offers {len(pool)} ({','.join(pool) or 'none'})")
    start = process_start(pid)
    if start is None:
        raise LeaseError(f"process {pid} does not exist")
    lease_dir = Path(lease_dir)
    with _locked(lease_dir):
        leases = _load(lease_dir)
        stale = [dev for dev, rec in leases.items() if not holder_alive(rec)]
        for dev in stale:
            rec = leases.pop(dev)
            print(f"[gpu-lease] reclaimed GPU {dev} from dead job {rec['job']!r} (pid {rec['pid']})", file=sys.stderr)
        free = [dev for dev in pool if dev not in leases]
        if len(free) < n:
            if stale:
                _store(lease_dir, leases)
            return None
        taken = free[:n]
        for dev in taken:
            leases[dev] = {"pid": pid, "start": start, "job": job, "since": round(time.time(), 1)}
        _store(lease_dir, leases)
        return taken


def acquire(n: int, pool: list[str], lease_dir: str | Path, pid: int | None = None, job: str = "",
            wait_s: float = 600.0, poll_s: float = 2.0) -> list[str]:
    """Lease ``n`` devices, waiting up to ``wait_s`` for other jobs to finish (Snakemake's ``--resources gpu=``
    should make waiting rare; it happens when the cap exceeds the pool or GPUs are held outside Snakemake)."""
    pid = os.getpid() if pid is None else pid
    deadline = time.monotonic() + wait_s
    announced = False
    while True:
        taken = try_acquire(n, pool, lease_dir, pid, job)
        if taken is not None:
            return taken
        if time.monotonic() >= deadline:
            holders = {dev: f"{rec['job']} (pid {rec['pid']})" for dev, rec in live_leases(lease_dir).items()}
            raise LeaseError(f"job {job!r}: {n} GPUs not free after {wait_s:.0f} s; leased: {holders}. "
                             "Is --resources gpu=N larger than the GPUs on this node?")
        if not announced:
            print(f"[gpu-lease] job {job!r} waiting for {n} free GPUs", file=sys.stderr)
            announced = True
        time.sleep(poll_s)


def release(devices: list[str], lease_dir: str | Path, pid: int | None = None) -> None:
    """Give back ``devices`` held by ``pid`` (records held by anyone else are left alone)."""
    pid = os.getpid() if pid is None else pid
    lease_dir = Path(lease_dir)
    with _locked(lease_dir):
        leases = _load(lease_dir)
        for dev in devices:
            if dev in leases and leases[dev]["pid"] == pid:
                del leases[dev]
        _store(lease_dir, leases)
