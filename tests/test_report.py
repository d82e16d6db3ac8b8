"""The report on a fake finished grid (tests/fake_grid.py): every file of grid.REPORT_FILES, CIs and paired tests in
the tables, seeds gathered into means and spreads, costs counting parents, curves from TensorBoard events."""
import json
import math

import numpy as np
import pandas as pd
import pytest

import fake_grid
from mixmerge import grid
from mixmerge.evaluation.avgk import pass_at_k, summarise
from mixmerge.report.records import load_scores
from mixmerge.report.tables import build_report

SEEDED = {**fake_grid.SPEC, "seeds": [0, 1]}


def test_pass_at_k_matches_the_closed_form():
    assert pass_at_k(4, 0, 1) == 0.0 and pass_at_k(4, 4, 1) == 1.0
    assert math.isclose(pass_at_k(4, 1, 1), 0.25)
    assert math.isclose(pass_at_k(5, 2, 2), 1 - (3 * 2) / (5 * 4))


def test_summarise_avg_at_k_pass_at_every_k_and_truncation():
    samples = lambda scores: [{"score": s, "lenient": 1.0, "finish_reason": "stop" if s else "length",  # noqa: E731
                               "num_tokens": 3} for s in scores]
    items = [{"samples": samples([1, 0])}, {"samples": samples([1, 1])}]
    out = summarise(items, 2)
    assert out["avg_at_k"] == 0.75 and out["lenient_avg_at_k"] == 1.0 and out["pass_at_k"] == 1.0
    assert out["pass_at"] == {"1": 0.75, "2": 1.0}
    assert out["truncation_rate"] == 0.25
    assert math.isclose(out["avg_at_k_stderr"], math.sqrt(0.125 / 2))


@pytest.fixture(scope="module")
def one_seed(tmp_path_factory):
    root = tmp_path_factory.mktemp("one_seed")
    fake_grid.make(root)
    build_report(fake_grid.SPEC, str(root / "report"), root=str(root))
    return root


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    root = tmp_path_factory.mktemp("two_seeds")
    fake_grid.make(root, SEEDED, seed=1)
    build_report(SEEDED, str(root / "report"), root=str(root))
    return root


def test_every_report_file_is_written(one_seed):
    out = one_seed / "report"
    assert sorted(p.name for p in out.iterdir()) == sorted(grid.REPORT_FILES)
    for name in grid.FIGURES:
        assert (out / name).stat().st_size > 5000, name


def test_main_table_has_cis_and_ses(one_seed):
    main = pd.read_csv(one_seed / "report/main_table.csv", index_col=0)
    assert list(main.index) == ["math", "code"]
    for node in ("base", "sft", "rl-math", "rl-code", "rl-mixed", "merge-ties", "merge-average"):
        for metric in ("strict", "lenient"):
            value, lo, hi = (main[f"{node}:{metric}{s}"] for s in ("", "_lo", "_hi"))
            assert ((lo <= value) & (value <= hi)).all() and (main[f"{node}:{metric}_se"] >= 0).all()
    md = (one_seed / "report/main_table.md").read_text()
    assert "math (n=40, k=4)" in md and "±" in md and "Avg. (n=80, k=4)" in md


def test_comparisons_are_paired_and_holm_corrected(one_seed):
    comps = pd.read_csv(one_seed / "report/comparisons.csv")
    assert set(comps["family"]) == {"rl_vs_sft", "opd_vs_sft", "merge_vs_sft", "mixed_vs_merge",
                                    "merge_vs_best_expert"}
    assert set(comps[comps["family"] == "mixed_vs_merge"]["b"]) == {"merge-ties", "merge-average", "opd"}
    assert set(comps[comps["family"] == "opd_vs_sft"]["a"]) == {"opd"}
    best = comps[comps["family"] == "merge_vs_best_expert"].set_index(["a", "benchmark"])
    main = pd.read_csv(one_seed / "report/main_table.csv", index_col=0)
    assert best.loc[("merge-ties", "math"), "b"] == "rl-math" and best.loc[("merge-ties", "code"), "b"] == "rl-code"
    assert best.loc[("merge-ties", "math"), "strict_diff"] == pytest.approx(
        main.loc["math", "merge-ties:strict"] - main.loc["math", "rl-math:strict"])
    assert (comps["p_holm"] >= comps["p"] - 1e-12).all() and (comps["p_holm"] <= 1).all()
    for family, rows in comps.groupby("family"):
        n_tests = len(rows)
        assert rows["p_holm"].min() == pytest.approx(min(1.0, n_tests * rows["p"].min())), family
    # SFT gets the answer right but not the format half the time: RL's gain on the reward is format.
    rl_math = comps[(comps["a"] == "rl-math") & (comps["benchmark"] == "math")].iloc[0]
    assert rl_math["strict_diff"] > 0.2 and rl_math["reading"].startswith("higher reward; format only")


def test_transfer_matrix_and_pass_at_k(one_seed):
    transfer = pd.read_csv(one_seed / "report/transfer_matrix.csv", index_col=0)
    main = pd.read_csv(one_seed / "report/main_table.csv", index_col=0)
    assert transfer.loc["math", "rl-math"] == pytest.approx(main.loc["math", "rl-math:strict"]
                                                             - main.loc["math", "sft:strict"])
    assert "**" in (one_seed / "report/transfer_matrix.md").read_text()
    passes = pd.read_csv(one_seed / "report/pass_at_k.csv").set_index(["model", "benchmark"])
    assert list(passes.columns) == ["n", "k", "pass@1", "pass@2", "pass@3", "pass@4"]
    assert passes.loc[("rl-math", "math"), "pass@1"] == pytest.approx(main.loc["math", "rl-math:strict"])
    assert (passes["pass@1"] <= passes["pass@4"]).all()


def test_html_is_self_contained_with_captions(one_seed):
    page = (one_seed / "report/report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(grid.FIGURES)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert page.count("<figcaption>") == len(grid.FIGURES)
    assert page.count("<table") == page.count("<caption>") >= 8
    assert "rl-mixed" in (one_seed / "report/report.md").read_text()


def test_curves_come_from_tensorboard_events(one_seed):
    curves = pd.read_csv(one_seed / "report/curves.csv")
    assert set(curves["source"]) == {"tensorboard"}
    assert set(curves["node"]) == {"rl-math", "rl-code", "rl-mixed"}
    mixed = curves[curves["node"] == "rl-mixed"]
    assert set(mixed["domain"]) == {"math", "code"} and mixed["step"].max() == 10


def test_curves_fall_back_to_the_train_log(tmp_path):
    fake_grid.make(tmp_path, events=False)
    log = [{"step": s, "rewards/math_reward/mean": 0.1 * s, "loss": 0.5} for s in (5, 10)]
    (tmp_path / grid.model_dir("rl-math") / "train_log.json").write_text(json.dumps(log))
    build_report(fake_grid.SPEC, str(tmp_path / "report"), root=str(tmp_path))
    curves = pd.read_csv(tmp_path / "report/curves.csv")
    assert curves[["node", "domain", "step", "source"]].values.tolist() == [
        ["rl-math", "math", 5, "train_log.json"], ["rl-math", "math", 10, "train_log.json"]]


def test_seeds_are_gathered_into_mean_and_spread(two_seeds):
    the_grid = grid.Grid.from_config(SEEDED)
    scores = load_scores(the_grid, two_seeds)
    cell = scores[("rl-math", "math")]
    assert cell.seeds == [0, 1] and cell.strict.shape == (40, 2)
    seeds = pd.read_csv(two_seeds / "report/seeds.csv")
    replicas = seeds[(seeds["model"] == "rl-math") & (seeds["benchmark"] == "math")]
    assert replicas["seed"].tolist() == [0, 1]
    main = pd.read_csv(two_seeds / "report/main_table.csv", index_col=0)
    assert main.loc["math", "rl-math:strict"] == pytest.approx(replicas["strict"].mean())
    assert "sft" in set(seeds["model"]) and len(seeds[seeds["model"] == "sft"]) == 2  # shared: one seed, 2 benchmarks
    md = (two_seeds / "report/main_table.md").read_text()
    spread = 100 * np.std(replicas["strict"], ddof=1)
    assert f"seed sd {spread:.1f}" in md
    assert "rl-math.s1" not in set(pd.read_csv(two_seeds / "report/comparisons.csv")["a"])


def test_costs_count_parents_and_average_seeds(two_seeds):
    cost = pd.read_csv(two_seeds / "report/cost.csv").set_index("model")
    assert cost.loc["rl-math", "seeds"] == 2 and cost.loc["sft", "seeds"] == 1
    # fake walls: sft 100 s, each RL run 200 s, each merge 5 s; a merge counts SFT and its seed's two experts.
    assert cost.loc["rl-mixed", "wall_hours"] == pytest.approx(300 / 3600)
    assert cost.loc["merge-ties", "wall_hours"] == pytest.approx(505 / 3600)
    compute = pd.read_csv(two_seeds / "report/compute_table.csv").set_index("node")
    assert compute.loc["rl-math.s1", "source"].startswith("run record")
    assert compute.loc["merge-ties.s1", "source"].startswith("Snakemake benchmark")


def test_a_partial_grid_still_reports(tmp_path):
    """Cells still missing (a grid under way) are left out of the tables and comparisons, not errors."""
    fake_grid.make(tmp_path, events=False)
    for node, bench in (("merge-average", "math"), ("merge-average", "code"), ("rl-code", "code")):
        (tmp_path / grid.eval_records(node, bench)).unlink()
    build_report(fake_grid.SPEC, str(tmp_path / "report"), root=str(tmp_path))
    comps = pd.read_csv(tmp_path / "report/comparisons.csv")
    assert "merge-average" not in set(comps["a"]) | set(comps["b"])
    best = comps[comps["family"] == "merge_vs_best_expert"]
    assert best["benchmark"].tolist() == ["math", "code", "Avg."] and best["b"].tolist()[1] == "rl-math"
    assert (tmp_path / "report/report.html").stat().st_size > 10_000


def test_main_figure_rows_align_when_a_model_lacks_a_benchmark():
    """A pairwise merge has no science cell: every panel still labels and places every model's row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mixmerge.report.figures import _hbars

    def cell(model, bench, value):
        return {"model": model, "benchmark": bench, "strict": value, "strict_lo": value - 0.1,
                "strict_hi": value + 0.1, "lenient": value, "n": 10}

    models = ["sft", "merge-ties-math_code", "rl-math"]
    cells = pd.DataFrame([cell("sft", "science", 0.3), cell("rl-math", "science", 0.6)])
    fig, ax = plt.subplots()
    _hbars(ax, cells, models, "science")
    assert [t.get_text() for t in ax.get_yticklabels()] == models
    bar_rows = sorted(round(p.get_y() + p.get_height() / 2) for p in ax.patches)
    assert bar_rows == [0, 2]   # rl-math on its own row, the pairwise merge's row left empty
    plt.close(fig)
