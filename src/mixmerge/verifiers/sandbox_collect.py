"""Reading a sandboxed run's results (``sandbox_bwrap``): the runner's per-test frames, its stderr, the watchdog,
the deadline, and the exit status of a last test run in place."""
from __future__ import annotations

import os
import selectors
import subprocess
import time

from mixmerge.verifiers.sandbox_protocol import Frames

STDERR_CAP = 1 << 16
STARTUP_S = 1.0  # allowance for starting the sandbox, on top of the tests' own wall limits
EXIT_WAIT_S = 0.2  # once the runner is gone, how long bwrap may take to exit and say how


def wait_exit(launch) -> int | None:
    try:
        return launch.proc.wait(EXIT_WAIT_S)
    except subprocess.TimeoutExpired:
        return None  # still running (the program closed the runner's output): stop() kills it


def collect(launch, n: int, t0: float, on_result):
    """Read result frames until every test reported, the caller stops, time is up or a whole-program limit
    trips; returns (results, runner stderr, why it ended early: "stopped", a status, or None)."""
    frames, stderr, results = Frames(launch.limits.output_bytes), bytearray(), []
    deadline = t0 + n * launch.limits.wall_s + STARTUP_S
    poll_s = 0.02 if launch.watchdog else 1.0
    sel = selectors.DefaultSelector()
    sel.register(launch.proc.stdout, selectors.EVENT_READ, "out")
    sel.register(launch.proc.stderr, selectors.EVENT_READ, "err")
    if launch.info is not None:
        sel.register(launch.info, selectors.EVENT_READ, "info")
    try:
        while len(results) < n:
            now = time.monotonic()
            if now >= deadline:
                return results, bytes(stderr), "timeout"
            tripped = launch.watchdog.check() if launch.watchdog else None
            if tripped:
                return results, bytes(stderr), tripped
            if frames.broken:
                return results, bytes(stderr), "error"
            if not any(key.data == "out" for key in sel.get_map().values()):
                break
            for key, _ in sel.select(min(deadline - now, poll_s)):
                if key.data == "info":
                    sel.unregister(key.fileobj)
                    launch.read_info()
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                elif key.data == "err":
                    stderr += chunk[: max(0, STDERR_CAP - len(stderr))]
                else:
                    for result in frames.feed(chunk):
                        if launch.in_place_fds and len(results) == n - 1:
                            result = launch.in_place_result(result.returncode, result.wall_s)
                        results.append(result)
                        if on_result and on_result(result) is False:
                            return results, bytes(stderr), "stopped"
    finally:
        sel.close()
    return results, bytes(stderr), None
