"""Scorer throughput per domain, sandbox cost against a bare interpreter spawn, and the batch speed-up.

Run: PYTHONPATH=src python benchmarks/scorer_bench.py [--n 64]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from mixmerge.verifiers import mathcheck
from mixmerge.verifiers import sandbox
from mixmerge.verifiers import workers
from mixmerge.verifiers.mcq import score_mcq
from mixmerge.verifiers.nltk_offline import ifeval_all_followed, instruction_registry

CODE = "n = int(input())\nprint(sum(range(n + 1)))"


def code_item(n: int) -> float:
    return sandbox.run_tests(CODE, [{"stdin": str(n), "stdout": str(n * (n + 1) // 2)}])


def ifeval_item(text: str) -> bool:
    return ifeval_all_followed(text, ["punctuation:no_comma", "length_constraints:number_words"],
                               [{}, {"num_words": 5, "relation": "at least"}])


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:8.1f} items/s"


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def spawn_cost(argv: list[str], n: int) -> float:
    return timed(lambda: [subprocess.run(argv, check=True) for _ in range(n)]) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=64)
    n = parser.parse_args().n
    cores = len(os.sched_getaffinity(0))
    print(f"cores: {cores}   sandbox isolation: {sandbox.network_isolation_mode()}   items per domain: {n}")

    pairs = [(rf"so \boxed{{\frac{{{i}}}{{2}}}}", f"{i / 2}") for i in range(n)]
    mathcheck.score_math_batch(pairs[:4])  # warm the workers
    print(f"math (workers, batch)  {rate(n, timed(lambda: mathcheck.score_math_batch(pairs)))}")

    texts = [f"Reasoning... so the answer is {'ABCD'[i % 4]}." for i in range(n)]
    print(f"mcq (in process)       {rate(n, timed(lambda: [score_mcq(t, 'A', 'ABCD') for t in texts]))}")

    instruction_registry()
    responses = [f"this answer has no commas at all number {i}" for i in range(n)]
    print(f"ifeval (in process)    {rate(n, timed(lambda: [ifeval_item(r) for r in responses]))}")

    reps = max(8, n // 2)
    python = os.path.realpath(sys.executable)
    bare = spawn_cost([python, "-c", "pass"], reps)
    bare_lean = spawn_cost([python, "-I", "-S", "-c", "pass"], reps)
    items = [(i,) for i in range(n)]
    workers.score_batch(code_item, items[:cores], timeout_s=30)
    one = timed(lambda: workers.score_batch(code_item, items, timeout_s=30, workers=1))
    every = timed(lambda: workers.score_batch(code_item, items, timeout_s=30, workers=cores))
    in_process = timed(lambda: [code_item(i) for i in range(reps)]) / reps
    per_test = one / n  # one warm worker, one test case per item: the sandbox cost per test case
    print(f"code, per test case (1 worker): {per_test * 1e3:6.1f} ms   bare `python -c pass`: {bare * 1e3:6.1f} ms"
          f"   ratio {per_test / bare:4.2f}x (target <= 2x)")
    print(f"   vs lean bare `python -I -S -c pass` {bare_lean * 1e3:6.1f} ms: ratio {per_test / bare_lean:4.2f}x;"
          f" called from this larger process: {in_process * 1e3:6.1f} ms")
    print(f"code (workers=1)       {rate(n, one)}")
    print(f"code (workers={cores})       {rate(n, every)}   batch speed-up {one / every:4.2f}x on {cores} cores")

if __name__ == "__main__":
    main()
