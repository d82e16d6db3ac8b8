"""Peak memory of the weight-shift analysis (mixmerge.analysis.weight_shift_run) on a base and five synthetic
~150M-parameter checkpoints, as a ratio to one checkpoint's size (target <= 2x).

Builds, in a temp dir, an SFT anchor with Qwen-style tensor names (float32, untied embeddings) and five nodes that
each change a random 30% of its weights, then runs the analysis with the tiny config's settings in a fresh child
process and reads that process's high-water RSS (VmHWM). A second child only imports what the analysis imports:
the interpreter's floor, printed beside it.

    PYTHONPATH=src python benchmarks/weight_shift_memory.py [--layers 7] [--nodes 5] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = 2.0
HIDDEN, INTER, VOCAB = 1024, 2816, 32000


def shapes(layers: int) -> dict[str, tuple[int, ...]]:
    out = {"model.embed_tokens.weight": (VOCAB, HIDDEN), "lm_head.weight": (VOCAB, HIDDEN),
           "model.norm.weight": (HIDDEN,)}
    for i in range(layers):
        p = f"model.layers.{i}."
        out.update({p + f"self_attn.{x}_proj.weight": (HIDDEN, HIDDEN) for x in "qkvo"})
        out.update({p + f"mlp.{x}_proj.weight": (INTER, HIDDEN) for x in ("gate", "up")})
        out.update({p + "mlp.down_proj.weight": (HIDDEN, INTER), p + "input_layernorm.weight": (HIDDEN,),
                    p + "post_attention_layernorm.weight": (HIDDEN,)})
    return out


def build(root: Path, layers: int, nodes: int) -> None:
    """Writes sft/ and node0..node{nodes-1}/."""
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(0)
    sft = {name: torch.randn(shape, generator=gen) * 0.02 for name, shape in shapes(layers).items()}
    (root / "sft").mkdir()
    save_file(sft, str(root / "sft/model.safetensors"))
    for i in range(nodes):
        node = {}
        for name, w in sft.items():
            changed = torch.rand(w.shape, generator=gen) < 0.3
            node[name] = w + changed * torch.randn(w.shape, generator=gen) * 0.01
        (root / f"node{i}").mkdir()
        save_file(node, str(root / f"node{i}/model.safetensors"))
        del node


def peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(task: str, root: Path) -> dict:
    sys.path.insert(0, str(REPO / "src"))
    import yaml

    from mixmerge.analysis.weight_shift_run import run_weight_shift

    settings = yaml.safe_load((REPO / "config/config.yaml").read_text())["analysis"]["weight_shift"]
    started = time.perf_counter()
    if task == "analysis":
        nodes = {p.name: str(p) for p in sorted(root.glob("node*"))}
        out = {k: str(root / "out" / f) for k, f in (("table", "t.csv"), ("density", "d.csv"),
                                                     ("figure", "f.png"), ("settings", "s.json"))}
        run_weight_shift(str(root / "sft"), nodes, settings, out, threads=2)
    return {"wall_s": time.perf_counter() - started, "cpu_s": time.process_time(), "peak_rss": peak_rss_bytes(),
            "settings": settings}


def measure(task: str, root: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", task, "--root", str(root)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(root: Path, floor: dict, run: dict) -> list[str]:
    sys.path.insert(0, str(REPO / "src"))
    from mixmerge.merging.checkpoints import CheckpointReader

    with CheckpointReader(root / "sft") as reader:
        n_params = sum(math.prod(reader.meta(name)[0]) for name in reader.names)
    size, mib = (root / "sft/model.safetensors").stat().st_size, 2 ** 20
    ratio = run["peak_rss"] / size
    verdict = "met" if ratio <= TARGET else "MISSED"
    return [f"parameters per checkpoint: {n_params}; checkpoint file: {size / mib:.0f} MiB; nodes: "
            f"{len(list(root.glob('node*')))}; chunk_elements: {run['settings']['chunk_elements']}",
            f"interpreter floor (imports only): {floor['peak_rss'] / mib:.0f} MiB = {floor['peak_rss'] / size:.2f} x "
            "checkpoint",
            f"weight-shift analysis: {run['wall_s']:.1f} s wall ({run['cpu_s']:.1f} s CPU), peak RSS "
            f"{run['peak_rss'] / mib:.0f} MiB = {ratio:.2f} x checkpoint (target <= {TARGET:g}x: {verdict}); above "
            f"the floor: {(run['peak_rss'] - floor['peak_rss']) / size:.2f} x"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=7, help="7 layers: ~156M parameters")
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--keep", help="build here (reused when it has sft/) and keep it")
    ap.add_argument("--child")
    ap.add_argument("--root")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, Path(a.root))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(a.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        if not (root / "sft").exists():
            build(root, a.layers, a.nodes)
        floor, run = measure("idle", root), measure("analysis", root)
        print("\n".join(summary(root, floor, run)))


if __name__ == "__main__":
    main()
