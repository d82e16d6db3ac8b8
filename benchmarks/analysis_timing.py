"""Wall time the analyses add to a grid (default: the tiny grid of config/config.yaml), without training it.

Builds, in a temp dir laid out like a finished run, an SFT checkpoint of the config's tiny architecture and one
checkpoint per compared node (each changing a random share of the weights), and per-item eval records for every
cell (``eval_per_domain`` items, k samples, random scores). Then runs each analysis's CLI in its own process, as
its Snakemake job would (``mixmerge weight-shift`` / ``skill-inheritance`` / ``pairwise-merges``), and prints
each one's wall seconds and the sum (the issue's target: <= 180 s on 2 cores).

    PYTHONPATH=src python benchmarks/analysis_timing.py [--config config/config.yaml] [--threads 2] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_models(root: Path, config: dict, nodes: list[str]) -> None:
    import torch
    import transformers

    from mixmerge import grid

    tiny = config["base"]["tiny"]
    cfg = transformers.Qwen2Config(vocab_size=tiny["vocab_size"], hidden_size=tiny["hidden_size"],
                                   intermediate_size=tiny["intermediate_size"], num_hidden_layers=tiny["num_layers"],
                                   num_attention_heads=tiny["num_heads"], num_key_value_heads=tiny["num_kv_heads"],
                                   max_position_embeddings=tiny["max_positions"])
    torch.manual_seed(0)
    model = transformers.Qwen2ForCausalLM(cfg)
    model.save_pretrained(root / grid.model_dir("sft"))
    sft = {k: v.clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(1)
    for node in nodes:
        with torch.no_grad():
            for name, param in model.state_dict().items():
                changed = torch.rand(param.shape, generator=gen) < 0.3
                param.copy_(sft[name] + changed * torch.randn(param.shape, generator=gen) * 1e-2)
        model.save_pretrained(root / grid.model_dir(node))


def write_records(root: Path, config: dict, the_grid) -> None:
    import numpy as np

    from mixmerge import grid

    rng = np.random.default_rng(0)
    n = config["data"].get("eval_per_domain", 100)
    for node, bench in the_grid.cells():
        k = config["benchmarks"][bench]["k"]
        path = root / grid.eval_records(node, bench)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(n):
            p = rng.random()
            samples = [{"score": float(rng.random() < p), "lenient": float(rng.random() < p),
                        "finish_reason": "stop"} for _ in range(k)]
            lines.append(json.dumps({"id": f"{bench}-{i:04d}", "samples": samples}))
        path.write_text("\n".join(lines) + "\n")


def timed(args: list[str], root: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mixmerge", *args], cwd=root, check=True, capture_output=True,
                   env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    return time.perf_counter() - started


def run(root: Path, config: dict, the_grid, threads: int) -> dict[str, float]:
    from mixmerge import grid

    spec = json.dumps({"domains": config["domains"], "merges": config["merges"], "seeds": list(the_grid.seeds),
                       "seed": config["seed"], "gpus": config["gpus"],
                       "benchmarks": {b: {"domain": s["domain"]} for b, s in config["benchmarks"].items()}})
    outs = {name: [f"{k}={v}" for k, v in grid.analysis_outputs(name).items()] for name in grid.ANALYSES}
    settings = {name: json.dumps(config["analysis"][name]) for name in grid.ANALYSES}
    nodes = [f"{n}={grid.model_dir(n)}" for n in the_grid.compared]
    return {
        "weight_shift": timed(["weight-shift", "--sft", grid.model_dir("sft"), "--node", *nodes, "--settings",
                               settings["weight_shift"], "--threads", str(threads), "--out",
                               *outs["weight_shift"]], root),
        "skill_inheritance": timed(["skill-inheritance", "--spec", spec, "--settings",
                                    settings["skill_inheritance"], "--out", *outs["skill_inheritance"]], root),
        "pairwise_merges": timed(["pairwise-merges", "--spec", spec, "--settings", settings["pairwise_merges"],
                                  "--out", *outs["pairwise_merges"]], root),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(REPO / "config/config.yaml"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", help="build here (reused when it has results/) and keep it")
    a = ap.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    import yaml

    from mixmerge.grid import Grid

    config = yaml.safe_load(Path(a.config).read_text())
    the_grid = Grid.from_config(config)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(a.keep or tmp)
        if not (root / "results").exists():
            build_models(root, config, the_grid.compared)
            write_records(root, config, the_grid)
        times = run(root, config, the_grid, a.threads)
        print(f"{len(the_grid.compared)} compared nodes, {len(the_grid.cells())} eval cells")
        for name, seconds in times.items():
            print(f"{name:>18}: {seconds:6.1f} s")
        print(f"{'total':>18}: {sum(times.values()):6.1f} s (target <= 180 s on 2 cores)")


if __name__ == "__main__":
    main()
