"""Cost of the study-exact merges against stock mergekit on a synthetic ~150M model, in one run.

Builds a random-init Qwen2 base (~150M parameters, float32, tied embeddings) and 4 experts with small
dense random deltas in a temp dir, then measures each task in its own fresh subprocess (so its peak
RSS, the process's VmHWM, is its own): reading all five checkpoints tensor by tensor, holding two
checkpoints in memory (the memory reference), stock mergekit `ties`, `ties_study` and `ta_dare_study`.
Every child imports torch, transformers and mergekit before its clock starts.

    PYTHONPATH=src python benchmarks/merge_bench.py [--layers 12] [--repeat 2] [--device cuda] [--keep DIR]
        [--extra sce_study ties_dare_study average_study]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MERGES = ("ties", "ties_study", "ta_dare_study")
TARGET_SECONDS, TARGET_RSS = 30.0, 1.5        # ties_study: wall, and peak RSS as a multiple of hold2


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
    """This process's own high-water RSS (VmHWM; reset at exec, unlike getrusage's ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _read_all(dirs) -> int:
    from mixmerge.merging.checkpoints import CheckpointReader

    n = 0
    for d in dirs:
        with CheckpointReader(d) as r:
            for name in r.names:
                n += r.get(name).numel()
    return n


def _hold_two(dirs) -> int:
    from mixmerge.merging.checkpoints import CheckpointReader

    held = []
    for d in dirs[:2]:
        with CheckpointReader(d) as r:
            held.append({name: r.get(name) for name in r.names})
    return sum(t.numel() for h in held for t in h.values())


def child(task: str, root: Path, device: str) -> dict:
    """Runs in its own process; reports wall seconds and this process's peak RSS."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import mergekit.merge  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from mixmerge.merging.run import run_merge_node

    dirs = [root / "base"] + sorted(root.glob("expert*"))
    info: dict = {}
    start = time.perf_counter()
    if task == "build":
        info["n_params"] = build(root, int(os.environ["BENCH_LAYERS"]))
    elif task == "read":
        info["entries"] = _read_all(dirs)
    elif task == "hold2":
        info["entries"] = _hold_two(dirs)
    elif task != "idle":
        dev = device if task.endswith("_study") else "cpu"
        rec = run_merge_node(task, {}, str(dirs[0]), [str(d) for d in dirs[1:]], str(root / f"out-{task}"),
                             device=dev)
        info.update(device=dev, prepass_seconds=rec.get("ties_global", {}).get("prepass_seconds"))
        shutil.rmtree(root / f"out-{task}")
    info["wall_s"] = time.perf_counter() - start
    info["peak_rss_mib"] = peak_rss_mib()
    return info


def measure(task: str, root: Path, device: str = "cpu") -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", task, "--root", str(root), "--device", device],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(results: dict) -> list[str]:
    read, mk, hold2 = results["read"], results["ties"], results["hold2"]
    lines = [f"{'task':>14} {'wall s':>8} {'/read':>7} {'/mergekit':>9} {'RSS MiB':>8} {'/read':>6} "
             f"{'/mergekit':>9} {'/hold2':>6}"]
    for task, r in results.items():
        lines.append(f"{task:>14} {r['wall_s']:8.2f} {r['wall_s'] / read['wall_s']:7.2f} "
                     f"{r['wall_s'] / mk['wall_s']:9.3f} {r['peak_rss_mib']:8.0f} "
                     f"{r['peak_rss_mib'] / read['peak_rss_mib']:6.2f} {r['peak_rss_mib'] / mk['peak_rss_mib']:9.2f} "
                     f"{r['peak_rss_mib'] / hold2['peak_rss_mib']:6.2f}")
    study = results["ties_study"]
    ok_t, ok_m = study["wall_s"] <= TARGET_SECONDS, study["peak_rss_mib"] <= TARGET_RSS * hold2["peak_rss_mib"]
    lines.append(f"ties_study targets: wall <= {TARGET_SECONDS:g} s {'met' if ok_t else 'MISSED'}; peak RSS <= "
                 f"{TARGET_RSS:g} x hold2 ({TARGET_RSS * hold2['peak_rss_mib']:.0f} MiB) {'met' if ok_m else 'MISSED'}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=1, help="run the measurements this many times (noisy hosts)")
    ap.add_argument("--device", default="cpu", help="device for the study merges (cpu, cuda)")
    ap.add_argument("--keep", help="build into this dir (reused if it has a base) and keep it")
    ap.add_argument("--extra", nargs="*", default=[], help="more methods to time, e.g. sce_study ties_dare_study")
    ap.add_argument("--child")
    ap.add_argument("--root")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.root), args.device)))
        return
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="merge-bench-"))
    try:
        os.environ["BENCH_LAYERS"] = str(args.layers)
        if not (root / "base").exists():
            t0 = time.perf_counter()
            n_params = measure("build", root)["n_params"]   # in a child: keeps this process small
            print(f"built base ({n_params / 1e6:.1f}M parameters) + 4 experts in {time.perf_counter() - t0:.1f} s")
        print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before the run")
        for run in range(args.repeat):
            tasks = ("idle", "read", "hold2") + MERGES + tuple(args.extra)
            results = {task: measure(task, root, args.device) for task in tasks}
            print(f"--- run {run + 1} (load average now {os.getloadavg()[0]:.2f})")
            print("\n".join(report(results)))
            print(json.dumps(results))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
