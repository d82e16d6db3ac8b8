"""Where a sandboxed program's time goes: the cost per test case against a bare spawn (programs with 1, 5 and 20
tests), bare spawns of its parts, and the phases of one ``run_batch`` call.

Run: PYTHONPATH=src python benchmarks/sandbox_profile.py [--reps 30]
Every figure is a median over ``reps`` rounds, the rows measured interleaved so load on the machine hits all alike.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections import defaultdict

from mixmerge.verifiers import sandbox, sandbox_bwrap, sandbox_limits
from mixmerge.verifiers.sandbox_types import Limits

CODE = "n = int(input())\nprint(sum(range(n + 1)))"
SIZES = (1, 5, 20)
BARE = "bare `python -I -S -c pass`"


def _spawn(argv: list[str]) -> None:
    subprocess.run(argv, check=True, env=sandbox_bwrap.ENV, stdin=subprocess.DEVNULL)


def spawn_rows() -> dict:
    """Whole-process costs: each adds one piece to the one before."""
    py = sandbox_bwrap.PYTHON
    argv = sandbox_bwrap.bwrap_argv(Limits(), None)
    bwrap_only = argv[:argv.index("--") + 1]
    at = bwrap_only.index("--unshare-all")
    no_net = [*bwrap_only[:at], "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try",
              *bwrap_only[at + 1:]]
    return {
        BARE: lambda: _spawn([py, "-I", "-S", "-c", "pass"]),
        "bwrap (all namespaces) + /bin/true": lambda: _spawn([*bwrap_only, "/bin/true"]),
        "  same without a net namespace (info)": lambda: _spawn([*no_net, "/bin/true"]),
        "bwrap + `python -I -S -c pass`": lambda: _spawn([*bwrap_only, py, "-I", "-S", "-c", "pass"]),
        "unsafe_local run_batch (runner, no bwrap)": lambda: sandbox_bwrap.run_batch(CODE, ["3"], Limits(),
                                                                                     isolated=False),
        "run_batch, 1 test (everything)": lambda: sandbox_bwrap.run_batch(CODE, ["3"], Limits()),
        "run_tests, 1 test (everything)": lambda: sandbox.run_tests(CODE, [{"stdin": "3", "stdout": "6"}]),
        "run_batch, 1 test, no cgroup (watchdog)": lambda: _without_cgroup(CODE),
    }


def _without_cgroup(code: str) -> None:
    """As where no cgroup can be made: the watchdog, and for a root caller the start as uid 65534."""
    make = sandbox_limits.make_cgroup
    sandbox_limits.make_cgroup = lambda limits: None
    try:
        sandbox_bwrap.run_batch(code, ["3"], Limits())
    finally:
        sandbox_limits.make_cgroup = make


class Phases:
    """Wraps the launcher's steps with timers; ``totals`` holds seconds per step for the current call."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)

    def wrap(self, owner, name: str, label: str) -> None:
        inner = getattr(owner, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.totals[label] += time.perf_counter() - t0

        setattr(owner, name, timed)


def phase_rows(reps: int) -> dict[str, list[float]]:
    phases = Phases()
    phases.wrap(sandbox_limits, "make_cgroup", "cgroup: make")
    phases.wrap(sandbox_limits.Cgroup, "close", "cgroup: kill + remove")
    phases.wrap(sandbox_bwrap.subprocess, "Popen", "spawn bwrap (Popen returns)")
    phases.wrap(sandbox_bwrap._Launch, "_open_gate", "cgroup: move in (overlaps the start)")
    phases.wrap(sandbox_bwrap, "collect", "until the result frame is read")
    phases.wrap(sandbox_bwrap._Launch, "stop", "stop: kill + wait for bwrap")
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(reps):
        phases.totals.clear()
        t0 = time.perf_counter()
        sandbox_bwrap.run_batch(CODE, ["3"], Limits())
        whole = time.perf_counter() - t0
        for label, seconds in phases.totals.items():
            samples[label].append(seconds)
        samples["other (bookkeeping)"].append(whole - sum(phases.totals.values()))
        samples["run_batch total"].append(whole)
    return samples


def per_test_rows() -> dict:
    """``run_tests`` on programs with 1, 5 and 20 passing stdin/stdout tests; each timing is divided by its size."""
    tests = {k: [{"stdin": str(i), "stdout": str(i * (i + 1) // 2)} for i in range(k)] for k in SIZES}
    return {k: lambda k=k: sandbox.run_tests(CODE, tests[k], max_tests=k) for k in SIZES}


def interleaved(rows: dict, reps: int) -> dict[str, list[float]]:
    """Seconds per call of every row, the rows taking turns so load on the machine hits all alike."""
    for fn in rows.values():
        fn()  # warm caches
    samples = defaultdict(list)
    for _ in range(reps):
        for label, fn in rows.items():
            t0 = time.perf_counter()
            fn()
            samples[label].append(time.perf_counter() - t0)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=30)
    reps = parser.parse_args().reps
    print(f"sandbox: {sandbox.isolation()}")
    samples = interleaved({BARE: spawn_rows()[BARE], **per_test_rows()}, reps)
    bare = statistics.median(samples.pop(BARE))
    print(f"\ncost per test case (median of {reps}, interleaved): {BARE} {bare * 1e3:.1f} ms")
    for k, values in samples.items():
        per_test = statistics.median(values) / k
        print(f"  {k:2d} test(s) per program: {per_test * 1e3:6.1f} ms per test   ratio {per_test / bare:4.2f}x"
              f" (target <= 2x)")
    samples = interleaved(spawn_rows(), reps)
    print(f"\nwhole-process costs (median of {reps}, interleaved)")
    for label, values in samples.items():
        print(f"  {label:45s} {statistics.median(values) * 1e3:7.1f} ms")
    print(f"\nphases of run_batch, 1 test (median of {reps}; each phase's median, so they need not add up)")
    for label, values in phase_rows(reps).items():
        print(f"  {label:45s} {statistics.median(values) * 1e3:7.1f} ms")


if __name__ == "__main__":
    main()
