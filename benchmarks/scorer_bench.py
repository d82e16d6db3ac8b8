"""Scorer throughput per domain, sandbox cost per test case against a bare interpreter spawn, and the batch speed-up.

Run: PYTHONPATH=src python benchmarks/scorer_bench.py [--n 64]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from mixmerge.verifiers import mathcheck
from mixmerge.verifiers import sandbox
from mixmerge.verifiers import workers
from mixmerge.verifiers.mcq import score_mcq
from mixmerge.verifiers.nltk_offline import all_instructions_followed, instruction_registry

CODE = "n = int(input())\nprint(sum(range(n + 1)))"


def code_item(n: int) -> float:
    return sandbox.run_tests(CODE, [{"stdin": str(n), "stdout": str(n * (n + 1) // 2)}])


def ifeval_item(text: str) -> bool:
    return all_instructions_followed(text, ["punctuation:no_comma", "length_constraints:number_words"],
                               [{}, {"num_words": 5, "relation": "at least"}])


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:8.1f} items/s"


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def sandbox_cost(reps: int, sizes=(1, 5, 20)) -> dict:
    """Median seconds per test case in the sandbox, for programs with 1, 5 and 20 stdin/stdout tests, measured
    interleaved with a bare ``python -I -S -c pass`` spawn (so load on the machine hits both alike)."""
    python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    tests = {k: [{"stdin": str(i), "stdout": str(i * (i + 1) // 2)} for i in range(k)] for k in sizes}
    samples = {"bare": [], **{k: [] for k in sizes}}
    for _ in range(reps):
        samples["bare"].append(timed(lambda: subprocess.run([python, "-I", "-S", "-c", "pass"], check=True)))
        for k in sizes:
            samples[k].append(timed(lambda: sandbox.run_tests(CODE, tests[k], max_tests=k)) / k)
    return {key: statistics.median(values) for key, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=64)
    n = parser.parse_args().n
    cores = len(os.sched_getaffinity(0))
    print(f"cores: {cores}   items per domain: {n}\nsandbox: {sandbox.isolation()}")

    pairs = [(rf"so \boxed{{\frac{{{i}}}{{2}}}}", f"{i / 2}") for i in range(n)]
    mathcheck.score_math_batch(pairs[:4])  # warm the workers
    print(f"math (workers, batch)  {rate(n, timed(lambda: mathcheck.score_math_batch(pairs)))}")

    texts = [f"Reasoning... so the answer is {'ABCD'[i % 4]}." for i in range(n)]
    print(f"mcq (in process)       {rate(n, timed(lambda: [score_mcq(t, 'A', 'ABCD') for t in texts]))}")

    instruction_registry()
    responses = [f"this answer has no commas at all number {i}" for i in range(n)]
    print(f"ifeval (in process)    {rate(n, timed(lambda: [ifeval_item(r) for r in responses]))}")

    reps = max(8, n // 2)
    cost = sandbox_cost(reps)
    bare = cost.pop("bare")
    print(f"bare `python -I -S -c pass` spawn: {bare * 1e3:6.1f} ms (median of {reps}, interleaved)")
    for k, per_test in cost.items():
        print(f"code, sandbox cost per test case, {k:2d} test(s) per program: {per_test * 1e3:6.1f} ms"
              f"   ratio {per_test / bare:4.2f}x (target <= 2x)")
    items = [(i,) for i in range(n)]
    workers.score_batch(code_item, items[:cores], timeout_s=30)
    one = timed(lambda: workers.score_batch(code_item, items, timeout_s=30, workers=1))
    every = timed(lambda: workers.score_batch(code_item, items, timeout_s=30, workers=cores))
    print(f"code, 1 test per item (workers=1)       {rate(n, one)}")
    print(f"code, 1 test per item (workers={cores})       {rate(n, every)}   batch speed-up {one / every:4.2f}x")


if __name__ == "__main__":
    main()
