"""What a sandboxed program could leave on the host, for the red-team tests to compare before and after a call:
live descendants (with this process as child subreaper, so orphans come back to it), SysV IPC objects by key,
this process's mount table, and files in the directories it could reach; and the peak of the host's process count
during a call."""
import ctypes
import os
import threading
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


def set_subreaper(on: bool) -> None:
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _state(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def descendants(root: int | None = None) -> set[int]:
    """Every process below ``root`` (default: this one), zombies included."""
    root = root or os.getpid()
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    kids = [int(x) for x in f.read().split()]
                out.update(kids)
                todo += kids
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def new_survivors(before: set[int], grace_s: float = 2.0) -> list[int]:
    """Live processes below this one that were not there before, still alive after ``grace_s`` (a killed sandbox's
    processes take a moment to exit); new zombies (dead orphans) are reaped."""
    deadline = time.monotonic() + grace_s
    while True:
        alive = _live_new(before)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _live_new(before: set[int]) -> list[int]:
    alive = []
    for pid in sorted(descendants() - before):
        state = _state(pid)
        if state in (b"Z", b"X"):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        elif state is not None:
            alive.append(pid)
    return alive


def sysvipc_keys() -> dict[str, set[int]]:
    """Keys of the host's SysV shared memory segments, message queues and semaphore sets."""
    out = {}
    for kind in ("shm", "msg", "sem"):
        lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
        out[kind] = {int(line.split()[0]) for line in lines if line.split()}
    return out


def mount_table() -> str:
    return Path("/proc/self/mountinfo").read_text()


def writable_host_dirs() -> list[str]:
    """Shared host directories this uid can write to (where a canary shows whether the sandbox wrote too)."""
    return [d for d in ("/tmp", "/var/tmp", "/dev/shm", "/var/cache") if os.path.isdir(d) and os.access(d, os.W_OK)]


class HostProcessPeak(threading.Thread):
    """The most processes the host had beyond its count at the start, polled every millisecond (a fork bomb that
    escapes its caps shows here as hundreds or thousands). Use as a context manager."""

    def __init__(self):
        super().__init__(daemon=True)
        self.base, self.extra, self.done = self.count(), 0, threading.Event()

    @staticmethod
    def count() -> int:
        return sum(name.isdigit() for name in os.listdir("/proc"))

    def run(self) -> None:
        while not self.done.wait(0.001):
            self.extra = max(self.extra, self.count() - self.base)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.join()
