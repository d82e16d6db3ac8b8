"""Did distillation pull the student towards its teachers? Per domain, the mean per-token reverse KL to the
routed teacher (TensorBoard ``opd/reverse_kl/<domain>``) over the first and the last ``--window`` logged steps,
the change, and a 95% bootstrap CI of the change (steps resampled within each window).

Run: PYTHONPATH=src python benchmarks/opd_kl.py logs/tensorboard/opd [--window 10]
"""
from __future__ import annotations

import argparse

import numpy as np

from mixmerge.report.curves import event_scalars

PREFIX = "opd/reverse_kl/"   # TRL's TensorBoard writer puts training scalars under train/


def change_ci(first: np.ndarray, last: np.ndarray, seed: int = 0, n: int = 10_000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    draws = (rng.choice(last, (n, len(last))).mean(1) - rng.choice(first, (n, len(first))).mean(1))
    return tuple(np.quantile(draws, [0.025, 0.975]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logdir")
    parser.add_argument("--window", type=int, default=10)
    args = parser.parse_args()
    scalars = event_scalars(args.logdir)
    tags = sorted(t for t in scalars["tag"].unique() if t.removeprefix("train/").startswith(PREFIX))
    if not tags:
        raise SystemExit(f"no {PREFIX}* scalars under {args.logdir}")
    print(f"{'domain':10s} {'steps':>5s} {'first':>8s} {'last':>8s} {'change':>8s}  95% CI")
    for tag in tags:
        values = scalars[scalars["tag"] == tag].sort_values("step")["value"].to_numpy()
        first, last = values[: args.window], values[-args.window:]
        low, high = change_ci(first, last)
        print(f"{tag.removeprefix('train/')[len(PREFIX):]:10s} {len(values):5d} {first.mean():8.4f} {last.mean():8.4f} "
              f"{last.mean() - first.mean():+8.4f}  [{low:+.4f}, {high:+.4f}]")


if __name__ == "__main__":
    main()
