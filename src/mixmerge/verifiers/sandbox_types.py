"""What a sandboxed run is given (limits) and what it returns, shared by the local sandbox and SandboxFusion."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    cpu_s: float = 5          # CPU seconds per test process
    wall_s: float = 10        # wall seconds per test
    memory_mb: int = 1024     # the whole program, all its processes together
    nproc: int = 32           # processes the program may have at once
    nofile: int = 64
    fsize_mb: int = 16        # largest file; the private /tmp holds a little more
    output_bytes: int = 65536


# Below these, correct programs fail for reasons of their own (a Python interpreter alone needs ~30 MB of
# address space and ~20 ms); config validation rejects smaller settings.
LIMIT_FLOORS = {"cpu_s": 0.5, "wall_s": 1.0, "memory_mb": 128, "nproc": 4, "nofile": 16, "fsize_mb": 1,
                "output_bytes": 1024}


@dataclass
class RunResult:
    status: str  # ok | error | timeout | killed | memory_limit | output_limit | sandbox_error
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float
