"""Device check for the merge engine: every study-exact method on CUDA against the CPU, bitwise, then timings.

Builds the small deterministic checkpoint sets of merge_checksums.py, runs each study method with default
and non-default parameters on "cpu" and on "cuda" (run_merge_node's `device`), and prints, per case,
whether every tensor is bitwise equal and the largest difference in ULPs otherwise. With --layers N it
also times ties_study, ties_dare_study and sce_study on a random Qwen2 of N layers on both devices.

    PYTHONPATH=src python benchmarks/merge_gpu_check.py [--layers 12]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import merge_checksums as mc  # noqa: E402

STUDY = ("average_study", "task_arithmetic_study", "ta_dare_study", "ties_study", "ties_dare_study", "sce_study")


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    view = torch.int16 if a.element_size() == 2 else torch.int32
    return a.dtype == b.dtype and torch.equal(a.contiguous().view(view), b.contiguous().view(view))


def ulps(a: torch.Tensor, b: torch.Tensor) -> int:
    if a.dtype == torch.bfloat16:
        a, b = a.float(), b.float()
    ia, ib = a.contiguous().view(torch.int32).long(), b.contiguous().view(torch.int32).long()
    return int((ia - ib).abs().max()) if ia.numel() else 0


def compare(root: Path) -> int:
    from mixmerge.merging.run import run_merge_node

    bad = 0
    for case, cset, method, params, out_dtype in mc.cases(STUDY):
        experts = [str(root / cset / f"e{i}") for i in range(4)]
        outs = {}
        for device in ("cpu", "cuda"):
            out = root / "out" / f"{case.replace('/', '_')}-{device}"
            run_merge_node(method, dict(params), str(root / cset / "base"), experts, str(out), seed=0,
                           out_dtype=out_dtype, device=device)
            outs[device] = mc._load_out(out)
        diff = {n: ulps(outs["cpu"][n], outs["cuda"][n]) for n in outs["cpu"]
                if not same_bits(outs["cpu"][n], outs["cuda"][n])}
        print(f"{case:40s} {'SAME' if not diff else f'DIFFERS in {len(diff)} tensors, max {max(diff.values())} ulp'}")
        bad += bool(diff)
    return bad


def timings(layers: int) -> None:
    import merge_bench
    from mixmerge.merging.run import run_merge_node

    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        root = Path(tmp)
        merge_bench.build(root, layers)
        dirs = [str(root / "base")] + [str(root / f"expert{i}") for i in range(4)]
        for method in ("ties_study", "ties_dare_study", "sce_study"):
            for device in ("cpu", "cuda"):
                start = time.perf_counter()
                run_merge_node(method, {}, dirs[0], dirs[1:], str(root / f"o-{method}-{device}"), device=device)
                print(f"{method:16s} {device:5s} {time.perf_counter() - start:7.2f} s")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=0, help="also time a random Qwen2 with this many layers")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 2
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        root = Path(tmp)
        mc.build(root)
        bad = compare(root)
    if args.layers:
        timings(args.layers)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
