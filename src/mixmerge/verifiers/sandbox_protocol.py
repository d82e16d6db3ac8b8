"""The caller's side of the runner protocol (``sandbox_runner``): the spec it reads and the frames it writes.

The runner travels compiled, with its spec, on the sandbox's stdin; ``BOOTSTRAP`` (the ``-c`` argument) loads and
runs it. Compiling the runner's source in every sandbox cost 4 ms, a third of a bare interpreter start.
"""
from __future__ import annotations

import marshal
import os
from pathlib import Path

from mixmerge.verifiers.sandbox_types import Limits, RunResult

RUNNER_CODE = compile((Path(__file__).parent / "sandbox_runner.py").read_text(), "sandbox_runner.py", "exec")
BOOTSTRAP = ("import marshal, sys\ncode, spec = marshal.loads(sys.stdin.buffer.read())\n"
             "runner = {'__name__': 'sandbox_runner', '__builtins__': __builtins__}\n"
             "exec(code, runner)\nrunner['main'](spec)")


def runner_spec(code: str, stdins: list[str], limits: Limits, argv, isolated: bool, gate_fd: int | None,
                in_place_fds: tuple[int, int] | None) -> bytes:
    """What the runner's stdin carries: its own code object and the spec (the same interpreter reads it).
    ``gate_fd``: where the runner waits for a byte before it runs anything (None: it starts at once).
    ``in_place_fds``: the stdout and stderr memfds of the last test, which then runs in the runner's own process
    and whose frame carries only its exit status (None: every test is forked)."""
    return marshal.dumps((RUNNER_CODE, {"code": code, "argv": [str(a) for a in argv], "isolated": isolated,
                                        "gate_fd": gate_fd, "in_place_fds": in_place_fds,
                          "stdins": [s.encode("utf-8", "replace") for s in stdins],
                          "cpu_s": float(limits.cpu_s), "wall_s": float(limits.wall_s),
                          "memory_mb": int(limits.memory_mb), "nproc": int(limits.nproc),
                          "nofile": int(limits.nofile), "fsize_mb": int(limits.fsize_mb),
                          "output_bytes": int(limits.output_bytes)}))


def memfd(data: bytes) -> int:
    fd = os.memfd_create("mixmerge-spec", 0)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


class Frames:
    """Parses the runner's result frames; anything malformed ends the stream (the program may have tampered)."""

    def __init__(self, cap: int) -> None:
        self.buf, self.cap, self.broken = bytearray(), cap, False

    def feed(self, chunk: bytes) -> list[RunResult]:
        self.buf += chunk
        out = []
        while not self.broken:
            head, sep, _ = self.buf.partition(b"\n")
            if not sep:
                self.broken = len(head) > 200
                break
            try:
                tag, status, rc, n_out, n_err, secs = head.decode("ascii").split(" ")
                n_out, n_err, rc, secs = int(n_out), int(n_err), int(rc), float(secs)
                assert tag == "R" and 0 <= n_out <= self.cap and 0 <= n_err <= self.cap
            except (ValueError, AssertionError, UnicodeDecodeError):
                self.broken = True
                break
            end = len(head) + 1 + n_out + n_err
            if len(self.buf) < end:
                break
            body = bytes(self.buf[len(head) + 1:end])
            del self.buf[:end]
            out.append(RunResult(status, rc, body[:n_out].decode("utf-8", "replace"),
                                 body[n_out:].decode("utf-8", "replace"), secs))
        return out
