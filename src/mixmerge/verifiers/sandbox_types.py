"""What a sandboxed run is given (limits) and what it returns, shared by the local sandbox and SandboxFusion."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    cpu_s: float = 5
    wall_s: float = 10
    memory_mb: int = 1024
    nproc: int = 32
    nofile: int = 64
    fsize_mb: int = 16
    output_bytes: int = 65536


@dataclass
class RunResult:
    status: str  # ok | error | timeout | killed | output_limit | sandbox_error
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float
