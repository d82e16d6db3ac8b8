"""Wall time the analyses add to a grid (default: the tiny grid of config/config.yaml), without training it.

Builds, in a temp dir laid out like a finished run, an SFT checkpoint of the config's tiny base (its tokenizer and
architecture, random weights), one checkpoint per compared node (each changing a random share of the weights), the
domains' held-out rows, and per-item eval records for every cell (``eval_per_domain`` items, k samples of
``max_new_tokens`` / 2 words, random scores). Then runs each analysis's CLI in its own process, as
its Snakemake job would (``mixmerge weight-shift``, ``kl-neighbourhood``, ``self-verification``,
``skill-inheritance``, ``pairwise-merges``), and prints
each one's wall and CPU seconds and the sums (the issue's target: <= 180 s wall on 2 cores).

    PYTHONPATH=src python benchmarks/analysis_timing.py [--config config/config.yaml] [--threads 2] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_models(root: Path, config: dict, nodes: list[str]) -> None:
    """SFT = the config's tiny base (tokenizer with its chat template, random weights); every node a perturbed
    copy, tokenizer included; and each domain's held-out rows."""
    import shutil

    import torch
    import transformers

    from mixmerge import grid
    from mixmerge.data.tiny import prepare_tiny, tokenizer_texts
    from mixmerge.training.base_model import build_base

    sft_dir = root / grid.model_dir("sft")
    build_base(tokenizer_texts(config["domains"], config["base"]["tiny"].get("tokenizer_texts_per_domain", 3000),
                               0), config["base"]["tiny"], 0, sft_dir)
    for domain in config["domains"]:
        prepare_tiny(domain, 8, config["data"].get("eval_per_domain", 100), 0, root / "results/data" / domain)
    model = transformers.AutoModelForCausalLM.from_pretrained(sft_dir)
    sft = {k: v.clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(1)
    for node in nodes:
        with torch.no_grad():
            for name, param in model.state_dict().items():
                changed = torch.rand(param.shape, generator=gen) < 0.3
                param.copy_(sft[name] + changed * torch.randn(param.shape, generator=gen) * 1e-2)
        model.save_pretrained(root / grid.model_dir(node))
        for extra in sft_dir.glob("*token*"):
            shutil.copy(extra, root / grid.model_dir(node) / extra.name)
        if (sft_dir / "chat_template.jinja").exists():
            shutil.copy(sft_dir / "chat_template.jinja", root / grid.model_dir(node))


def write_records(root: Path, config: dict, the_grid) -> None:
    import numpy as np

    from mixmerge import grid

    import pandas as pd

    rng = np.random.default_rng(0)
    for node, bench in the_grid.cells():
        spec = config["benchmarks"][bench]
        ids = pd.read_parquet(root / grid.held_out_rows(spec["domain"]))["id"].tolist()
        path = root / grid.eval_records(node, bench)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for item in ids:
            p = rng.random()
            words = " ".join(str(w) for w in rng.integers(0, 100, spec["max_new_tokens"] // 2))
            samples = [{"text": f"<think>{words}</think> {int(rng.integers(0, 10))}", "score": float(rng.random() < p),
                        "lenient": float(rng.random() < p), "finish_reason": "stop"} for _ in range(spec["k"])]
            lines.append(json.dumps({"id": item, "samples": samples}))
        path.write_text("\n".join(lines) + "\n")


def timed(args: list[str], root: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one CLI run in its own process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mixmerge", *args], cwd=root, check=True, capture_output=True,
                   env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - started, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(root: Path, config: dict, the_grid, threads: int) -> dict[str, tuple[float, float]]:
    from mixmerge import grid

    spec = json.dumps({"domains": config["domains"], "merges": config["merges"], "seeds": list(the_grid.seeds),
                       "seed": config["seed"], "gpus": config["gpus"],
                       "benchmarks": {b: {"domain": s["domain"]} for b, s in config["benchmarks"].items()}})
    outs = {name: [f"{k}={v}" for k, v in grid.analysis_outputs(name).items()] for name in grid.ANALYSES}
    settings = {name: json.dumps(config["analysis"][name]) for name in grid.ANALYSES}
    nodes = [f"{n}={grid.model_dir(n)}" for n in the_grid.compared]
    rows = [f"{b}={grid.held_out_rows(s['domain'])}" for b, s in config["benchmarks"].items()]
    judged = ["sft", *the_grid.compared]
    records = [f"{n}:{b}={grid.eval_records(n, b)}" for n, b in the_grid.cells() if n in judged]
    kl_models = [f"{n}={grid.model_dir(n)}" for n in [*the_grid.experts, "rl-mixed"]]
    return {
        "weight_shift": timed(["weight-shift", "--sft", grid.model_dir("sft"), "--node", *nodes, "--settings",
                               settings["weight_shift"], "--threads", str(threads), "--out",
                               *outs["weight_shift"]], root),
        "kl_neighbourhood": timed(["kl-neighbourhood", "--spec", spec, "--settings", settings["kl_neighbourhood"],
                                   "--model", *kl_models, "--bench", *rows, "--threads", str(threads), "--out",
                                   *outs["kl_neighbourhood"]], root),
        "self_verification": timed(["self-verification", "--settings", settings["self_verification"],
                                    "--eval-settings", json.dumps(config["eval"]), "--model",
                                    *(f"{n}={grid.model_dir(n)}" for n in judged), "--bench", *rows, "--records",
                                    *records, "--threads", str(threads), "--out", *outs["self_verification"]], root),
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
        for name, (wall, cpu) in times.items():
            print(f"{name:>18}: {wall:6.1f} s wall, {cpu:6.1f} s CPU")
        wall, cpu = sum(t[0] for t in times.values()), sum(t[1] for t in times.values())
        print(f"{'total':>18}: {wall:6.1f} s wall, {cpu:6.1f} s CPU (target <= 180 s wall on 2 cores; a host "
              "shared with other jobs stretches wall time, CPU time less)")


if __name__ == "__main__":
    main()
