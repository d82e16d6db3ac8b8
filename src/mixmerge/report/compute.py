"""The cost side: compute per node from the runs' own records (the model card's sum over the attempts log: wall
time measured by the training process, lease wait and loading apart, GPUs as the run saw them), Snakemake
benchmark files where a node has no such record (merges, evaluation, older runs), and the total cost of each
final model (its own plus its parents': SFT, and the experts for a merge or opd)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from mixmerge.report.render import to_markdown

COMPUTE_STAGES = [("sft", "sft.tsv", "sft"), ("grpo", "*.tsv", "grpo"), ("opd", "*.tsv", "opd"),
                  ("merge", "*.tsv", "merge")]
# The study's GPU-hours (paper v1 Table 2, study §2.5), shown beside ours: the experts (IF = instruct; their sum
# 6,524.8), the mixed run and MT-OPD.
STUDY_GPU_HOURS = {"rl-math": 2172.8, "rl-code": 3187.2, "rl-science": 787.2, "rl-instruct": 377.6,
                   "rl-mixed": 2166.4, "opd": 816.0}
COLUMNS = ["node", "stage", "attempts", "wall_seconds", "lease_wait_seconds", "load_seconds", "train_seconds",
           "gpus", "gpu_hours", "source"]
RUN_RECORD = "run record (attempts log, every attempt)"
BENCHMARK = "Snakemake benchmark (last attempt)"


def gpu_hours(wall_seconds: float, gpus: int) -> float:
    """A node's cost: its wall time x the GPUs it held."""
    return wall_seconds * gpus / 3600


def bench_wall(path: Path) -> float:
    """Wall seconds from a Snakemake benchmark file (the mean when the rule was benchmarked with repeats)."""
    return float(pd.read_csv(path, sep="\t")["s"].mean())


def _card_compute(models_dir: Path | None, node: str) -> dict | None:
    if models_dir is None:
        return None
    path = Path(models_dir, node, "mixmerge_card.json")
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("compute")


def _row(node: str, stage: str, bench: Path | None, record: dict | None, gpus_cfg: dict) -> dict:
    if record is not None:
        return {"node": node, "stage": stage, "attempts": record["n_attempts"],
                "wall_seconds": record["wall_seconds"], "lease_wait_seconds": record["lease_wait_seconds"],
                "load_seconds": record["load_seconds"], "train_seconds": record["train_seconds"],
                "gpus": record["gpus"], "gpu_hours": record["gpu_hours"], "source": RUN_RECORD}
    wall, gpus = bench_wall(bench), int(gpus_cfg.get(stage, 0))
    return {"node": node, "stage": stage, "attempts": math.nan, "wall_seconds": wall, "lease_wait_seconds": math.nan,
            "load_seconds": math.nan, "train_seconds": math.nan, "gpus": gpus, "gpu_hours": gpu_hours(wall, gpus),
            "source": BENCHMARK}


def _stage_of(node: str) -> str:
    return "sft" if node == "sft" else "opd" if node.split(".")[0] == "opd" else "grpo"


def compute_table(bench_dir: str | Path, config: dict, models_dir: str | Path | None = None) -> pd.DataFrame:
    """One row per trained, merged or evaluated node. A node whose model card holds a ``compute`` record (every
    training attempt summed) uses it; otherwise its Snakemake ``benchmark:`` file, with the GPUs of
    ``gpus.<stage>`` in ``config``. Values are unrounded; outputs round them."""
    gpus_cfg = config.get("gpus", {})
    models_dir = Path(models_dir) if models_dir is not None else None
    found: dict[str, tuple[str, Path | None]] = {}
    for rule, node_glob, stage in COMPUTE_STAGES:
        for path in sorted(Path(bench_dir, rule).glob(node_glob)):
            found[path.stem] = (stage, path)
    if models_dir is not None:
        for card in sorted(models_dir.glob("*/mixmerge_card.json")):
            node = card.parent.name
            if node not in found and _card_compute(models_dir, node) is not None:
                found[node] = (_stage_of(node), None)
    rows = [_row(node, stage, bench, _card_compute(models_dir, node), gpus_cfg)
            for node, (stage, bench) in found.items()]
    for path in sorted(Path(bench_dir, "eval").glob("*.tsv")):
        rows.append(_row(f"eval:{path.stem}", "eval", path, None, gpus_cfg))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["attempts"] = frame["attempts"].astype("Int64")
    return frame


def mix_vs_experts(compute: pd.DataFrame, experts: list[str]) -> dict:
    """rl-mixed's cost over the summed cost of the per-domain experts (the study: 2166.4 / 6524.8 GPU-hours
    = 33.2%). NaN where a side is missing or costs nothing (e.g. GPU-hours of a CPU-only grid)."""
    by_node = compute.set_index("node")
    missing = [e for e in experts + ["rl-mixed"] if e not in by_node.index]

    def ratio(column: str) -> tuple[float, float, float]:
        if missing:
            return math.nan, math.nan, math.nan
        mixed = float(by_node.loc["rl-mixed", column])
        summed = sum(float(by_node.loc[e, column]) for e in experts)
        return mixed, summed, (mixed / summed if summed else math.nan)

    mixed_wall, experts_wall, wall_ratio = ratio("wall_seconds")
    mixed_gpuh, experts_gpuh, gpuh_ratio = ratio("gpu_hours")
    return {"mixed_wall_seconds": mixed_wall, "experts_wall_seconds": experts_wall,
            "mixed_over_experts_wall": wall_ratio, "mixed_gpu_hours": mixed_gpuh, "experts_gpu_hours": experts_gpuh,
            "mixed_over_experts_gpu_hours": gpuh_ratio, "missing_nodes": missing}


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


def opd_text(compute: pd.DataFrame, experts: list[str]) -> str:
    """opd's cost beside rl-mixed and the experts' sum, ours against the study's 816.0 / 2,166.4 / 6,524.8
    GPU-hours (opd over the experts: 12.5% in the study)."""
    by_node = compute.set_index("node")
    missing = [n for n in [*experts, "rl-mixed", "opd"] if n not in by_node.index]
    if missing:
        return f"opd vs rl-mixed and the experts: n/a (no record for {', '.join(missing)})"
    value = lambda nodes, col: sum(float(by_node.loc[n, col]) for n in nodes)  # noqa: E731
    parts = []
    for col, unit in (("gpu_hours", "GPU-hours"), ("wall_seconds", "wall s")):
        opd, mixed, summed = value(["opd"], col), value(["rl-mixed"], col), value(experts, col)
        parts.append(f"{unit}: opd {opd:.2f}, rl-mixed {mixed:.2f}, experts {summed:.2f} "
                     f"(opd / experts {_pct(opd / summed if summed else math.nan)})")
    return ("; ".join(parts) + "; the study: opd 816.0, rl-mixed 2166.4, experts 6524.8 GPU-hours "
            "(opd / experts 12.5%)")


def ratio_text(ratio: dict) -> str:
    if ratio["missing_nodes"]:
        return f"rl-mixed vs experts: n/a (no benchmark for {', '.join(ratio['missing_nodes'])})"
    return (f"rl-mixed / sum of the experts: GPU-hours {ratio['mixed_gpu_hours']:.2f} / "
            f"{ratio['experts_gpu_hours']:.2f} = {_pct(ratio['mixed_over_experts_gpu_hours'])} (the study: "
            f"2166.4 / 6524.8 = 33.2%); wall time {ratio['mixed_wall_seconds']:.0f} s / "
            f"{ratio['experts_wall_seconds']:.0f} s = {_pct(ratio['mixed_over_experts_wall'])}")


def with_study_reference(shown: pd.DataFrame) -> pd.DataFrame:
    """The compute table (indexed by node) with the study's GPU-hours for the runs it reports."""
    return shown.assign(study_gpu_hours=[STUDY_GPU_HOURS.get(node, math.nan) for node in shown.index])


def compute_markdown(compute: pd.DataFrame, ratio: dict, experts: list[str] | None = None) -> str:
    shown = compute.round({"wall_seconds": 1, "lease_wait_seconds": 1, "load_seconds": 1, "train_seconds": 1,
                           "gpu_hours": 3}).set_index("node")
    shown = with_study_reference(shown)
    text = to_markdown(shown, "Compute per node (wall time measured by the run, every attempt; GPU-hours = wall "
                              "time x GPUs; study_gpu_hours: the study's figure for that run, Table 2)")
    by_stage = compute.groupby("stage", sort=False)["gpu_hours"].sum()
    text += "\nGPU-hours by stage: " + ", ".join(f"{stage} {hours:.2f}" for stage, hours in by_stage.items()) + "\n"
    text += "\n" + ratio_text(ratio) + "\n"
    return text + ("\n" + opd_text(compute, experts) + "\n" if experts is not None else "")


def cost_table(compute: pd.DataFrame, the_grid, quality: pd.DataFrame) -> pd.DataFrame:
    """Each final model's total cost (its own node plus its parents', ``Grid.parents``: SFT for an RL run;
    SFT and the same seed's experts for a merge), the mean over seeds, beside its Avg. strict avg@k."""
    own = compute.set_index("node")
    rows = []
    for node in the_grid.nodes:
        if node == "base" or node not in own.index:
            continue
        chain = [node, *the_grid.parents(node)]
        known = [n for n in chain if n in own.index]
        rows.append({"model": the_grid.split(node)[0], "node": node, "complete": len(known) == len(chain),
                     "own_gpu_hours": float(own.loc[node, "gpu_hours"]),
                     "gpu_hours": float(sum(own.loc[n, "gpu_hours"] for n in known)),
                     "wall_hours": float(sum(own.loc[n, "wall_seconds"] for n in known)) / 3600})
    frame = pd.DataFrame(rows, columns=["model", "node", "complete", "own_gpu_hours", "gpu_hours", "wall_hours"])
    out = frame.groupby("model", sort=False).agg(seeds=("node", "count"), complete=("complete", "all"),
                                                 own_gpu_hours=("own_gpu_hours", "mean"),
                                                 gpu_hours=("gpu_hours", "mean"), wall_hours=("wall_hours", "mean"))
    avg = quality[quality["benchmark"] == "Avg."].set_index("model")
    for column in ("strict", "strict_lo", "strict_hi", "lenient"):
        out[column] = [avg[column].get(m, math.nan) for m in out.index]
    return out.reset_index()
