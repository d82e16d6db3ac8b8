"""Cost of the study-exact TIES against stock mergekit `ties` on a synthetic ~150M model.

Builds a random Qwen2 base (~150M parameters, tied embeddings) and 4 experts with small dense
random deltas in a temp dir, then measures, each in its own subprocess (so peak RSS is its own):
reading all five checkpoints tensor by tensor, mergekit `ties`, and `ties_study`.

    PYTHONPATH=src nice -n 10 python benchmarks/merge_bench.py [--layers 12] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build(root: Path, layers: int, n_experts: int = 4) -> int:
    import torch
    import transformers
    from safetensors.torch import load_file, save_file

    cfg = transformers.Qwen2Config(vocab_size=50000, hidden_size=768, intermediate_size=3072,
                                   num_hidden_layers=layers, num_attention_heads=12, num_key_value_heads=12,
                                   tie_word_embeddings=True, max_position_embeddings=1024)
    torch.manual_seed(0)
    model = transformers.Qwen2ForCausalLM(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(root / "base")
    del model
    base = load_file(str(root / "base" / "model.safetensors"))
    gen = torch.Generator().manual_seed(1)
    for i in range(n_experts):
        target = root / f"expert{i}"
        target.mkdir()
        expert = {k: v + torch.randn(v.shape, generator=gen) * 1e-3 for k, v in base.items()}
        save_file(expert, str(target / "model.safetensors"), metadata={"format": "pt"})
        del expert
        shutil.copy(root / "base" / "config.json", target / "config.json")
    return n_params


def peak_rss_mib() -> float:
    """This process's own high-water RSS (VmHWM). getrusage's ru_maxrss would also count the
    parent's RSS at fork time, which survives exec on Linux."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(task: str, root: Path) -> dict:
    """Runs in its own process; reports wall seconds and this process's peak RSS."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from mixmerge.merging.checkpoints import CheckpointReader
    from mixmerge.merging.run import run_merge_node

    dirs = [root / "base"] + sorted(root.glob("expert*"))
    start = time.perf_counter()
    info: dict = {}
    if task == "build":
        info["n_params"] = build(root, int(os.environ["BENCH_LAYERS"]))
    elif task == "read":
        n = 0
        for d in dirs:
            with CheckpointReader(d) as r:
                for name in r.names:
                    tensor = r.get(name)
                    n += tensor.numel()
                    float(tensor.sum())  # touch every byte: safetensors may map lazily
        info["entries"] = n
    elif task == "idle":
        import mergekit.merge  # noqa: F401  (import cost and baseline RSS only)
    else:
        rec = run_merge_node(task, {}, str(dirs[0]), [str(d) for d in dirs[1:]], str(root / f"out-{task}"))
        info["prepass_seconds"] = rec.get("ties_global", {}).get("prepass_seconds")
        shutil.rmtree(root / f"out-{task}")
    info["wall_s"] = time.perf_counter() - start
    info["peak_rss_mib"] = peak_rss_mib()
    return info


def measure(task: str, root: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", task, "--root", str(root)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--keep", help="build into this dir and keep it")
    ap.add_argument("--child")
    ap.add_argument("--root")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.root))))
        return
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="merge-bench-"))
    try:
        t0 = time.perf_counter()
        os.environ["BENCH_LAYERS"] = str(args.layers)
        n_params = measure("build", root)["n_params"]  # in a child: keeps this process small
        print(f"built base ({n_params / 1e6:.1f}M parameters) + 4 experts in {time.perf_counter() - t0:.1f} s")
        results = {task: measure(task, root) for task in ("idle", "read", "ties", "ties_study")}
        for task, r in results.items():
            extra = f", pre-pass {r['prepass_seconds']:.1f} s" if r.get("prepass_seconds") else ""
            print(f"{task:>11}: wall {r['wall_s']:7.2f} s, peak RSS {r['peak_rss_mib']:7.0f} MiB{extra}")
        ties, study = results["ties"], results["ties_study"]
        print(f"ties_study / ties: time x{study['wall_s'] / ties['wall_s']:.2f}, "
              f"peak RSS x{study['peak_rss_mib'] / ties['peak_rss_mib']:.2f}")
        print(json.dumps({"n_params": n_params, **results}))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
