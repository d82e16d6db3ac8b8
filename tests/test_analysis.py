"""The mechanism analyses (mixmerge.analysis) on hand-computed toys: Jaccard, the random reference, projected
cosines, the streaming weight-shift run, skill-inheritance consistency and the pairwise-merge table."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from mixmerge.analysis.pairwise_merges import pairwise_table
from mixmerge.analysis.skill_inheritance import consistency, gains, inheritance_table, union_gain
from mixmerge.analysis.weight_shift import (ShiftStats, Sketch, changed_mask, jaccard, random_draw,
                                            random_reference, tensor_family)
from mixmerge.analysis.weight_shift_run import run_weight_shift
from mixmerge.grid import Grid
from mixmerge.report.records import Scores

SETTINGS = {"eta": 1e-3, "projection_dim": 256, "projection_seeds": [0, 1, 2], "reference_seed": 0,
            "chunk_elements": 1024}


def test_jaccard_of_three_small_masks():
    masks = torch.tensor([[1, 1, 0, 0, 1, 0],
                          [1, 0, 0, 1, 1, 0],
                          [0, 0, 1, 0, 0, 0]], dtype=torch.float32)
    inter = (masks @ masks.T).numpy()
    jac = jaccard(inter, masks.sum(1).numpy())
    # a ∧ b = {0, 4}, a ∨ b = {0, 1, 3, 4}; a and c, b and c are disjoint; each with itself 1
    assert jac[0, 1] == pytest.approx(2 / 4) and jac[1, 0] == pytest.approx(0.5)
    assert jac[0, 2] == 0 and jac[1, 2] == 0
    assert np.allclose(np.diag(jac), 1)


def test_random_reference_formula_matches_a_simulation():
    p, q, d = 0.3, 0.1, 200_000
    rng = np.random.default_rng(1)
    sims = []
    for _ in range(20):
        a, b = rng.random(d) < p, rng.random(d) < q
        sims.append((a & b).sum() / (a | b).sum())
    expected = random_reference(p, q)
    assert expected == pytest.approx(0.03 / 0.37)
    assert np.mean(sims) == pytest.approx(expected, rel=0.01)
    draw = random_draw(p, q, d, seed=0)
    assert draw == random_draw(p, q, d, seed=0) and abs(draw - expected) < 0.005
    assert random_reference(0.0, 0.0) != random_reference(0.0, 0.0)   # NaN: both masks empty


def test_changed_mask_is_relative_to_the_larger_magnitude():
    sft = torch.tensor([1.0, 1.0, 0.0, -2.0, 0.0])
    new = torch.tensor([1.0005, 1.002, 1e-6, -2.0, 0.0])
    assert changed_mask(new, sft, 1e-3).tolist() == [False, True, True, False, False]


def test_tensor_families():
    assert tensor_family("model.layers.0.self_attn.q_proj.weight") == "attention"
    assert tensor_family("model.layers.0.self_attn.q_norm.weight") == "norms"
    assert tensor_family("model.layers.3.mlp.down_proj.weight") == "mlp"
    assert tensor_family("model.embed_tokens.weight") == "embeddings"
    assert tensor_family("lm_head.weight") == "embeddings"
    assert tensor_family("model.norm.weight") == "norms"


def _sketch_cosines(delta, masks, seed, dim=256, chunks=3):
    sketch = Sketch(seed, delta.shape[0], dim, width=delta.shape[1] // chunks + 1)
    for part_d, part_m in zip(delta.chunk(chunks, dim=1), masks.chunk(chunks, dim=1)):
        sketch.add(part_d, part_m)
    return sketch.cosines()


def test_projected_cosine_is_fixed_by_the_seed_and_one_for_parallel_shifts():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(5000, generator=gen)
    b = torch.randn(5000, generator=gen)
    delta = torch.stack([a, 3 * a, b])          # a and 3a are parallel; b is independent
    masks = torch.ones_like(delta, dtype=torch.bool)
    whole, joint = _sketch_cosines(delta, masks, seed=7)
    again, _ = _sketch_cosines(delta, masks, seed=7)
    assert np.array_equal(whole, again)
    assert whole[0, 1] == pytest.approx(1.0, abs=1e-9) and joint[0, 1] == pytest.approx(1.0, abs=1e-9)
    other, _ = _sketch_cosines(delta, masks, seed=8)
    assert other[0, 2] != whole[0, 2]
    assert abs(whole[0, 2]) < 0.3                # independent shifts: near 0 (JL: sd ~ 1/sqrt(256))


def test_joint_cosine_uses_only_jointly_changed_coordinates():
    # a and b agree where both changed (coordinates 0-1) and point opposite where only one did
    delta = torch.tensor([[1.0, 2.0, 5.0, 0.0], [1.0, 2.0, 0.0, -5.0]])
    masks = delta != 0
    acc = ShiftStats(2, 256, [0])
    acc.add("mlp", delta, masks)
    assert acc.joint_cosines()[0, 1] == pytest.approx(1.0)
    assert acc.sketches[0].cosines()[1][0, 1] == pytest.approx(1.0)
    assert acc.inter[0, 1] == 2 and list(acc.changed) == [3, 3]


def _checkpoint(path, tensors):
    path.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path / "model.safetensors"))
    return str(path)


def test_weight_shift_run_on_checkpoints(tmp_path):
    gen = torch.Generator().manual_seed(0)
    sft = {"model.layers.0.self_attn.q_proj.weight": torch.randn(40, 50, generator=gen),
           "model.layers.0.mlp.up_proj.weight": torch.randn(30, 40, generator=gen),
           "model.norm.weight": torch.ones(50)}
    node_a = {k: v.clone() for k, v in sft.items()}
    node_a["model.layers.0.self_attn.q_proj.weight"][:20] += 0.5      # changes the first 1000 attention weights
    node_b = {k: v.clone() for k, v in sft.items()}
    node_b["model.layers.0.self_attn.q_proj.weight"][10:30] += 0.5    # overlaps a on rows 10-19
    node_b["model.norm.weight"] += 0.5
    dirs = {n: _checkpoint(tmp_path / n, t) for n, t in (("a", node_a), ("b", node_b))}
    out = {k: str(tmp_path / "out" / f) for k, f in (("table", "t.csv"), ("density", "d.csv"),
                                                     ("figure", "f.png"), ("settings", "s.json"))}
    run_weight_shift(_checkpoint(tmp_path / "sft", sft), dirs, SETTINGS, out)
    pairs, density = pd.read_csv(out["table"]), pd.read_csv(out["density"]).set_index(["node", "family"])
    row = pairs.iloc[0]
    assert (row.a, row.b, row.n_params) == ("a", "b", 2000 + 1200 + 50)
    assert row.changed_both == 500 and row.jaccard == pytest.approx(500 / (1000 + 1050 - 500))
    assert density.loc[("a", "attention"), "density"] == pytest.approx(0.5)
    assert density.loc[("b", "norms"), "density"] == pytest.approx(1.0)
    assert density.loc[("a", "mlp"), "changed"] == 0
    assert row.cosine_exact_joint == pytest.approx(1.0)              # +0.5 on the shared rows for both
    assert row.projection_seeds == 3 and math.isfinite(row.cosine_proj_sd)
    assert json.loads(open(out["settings"]).read())["n_params"] == 3250


def test_consistency_on_toy_gain_vectors():
    sft = np.array([0.0, 0.5, 0.5, 1.0])
    experts = [np.array([1.0, 0.5, 0.25, 1.0]), np.array([0.0, 1.0, 0.5, 0.75])]
    union = union_gain([gains(e, sft) for e in experts])
    assert union.tolist() == [1.0, 0.5, 0.0, 0.0]
    model = gains(np.array([0.5, 0.5, 1.0, 1.0]), sft)               # gains on items 0 and 2
    point, lo, hi, _ = consistency(union, model, seed=0)
    assert point == pytest.approx(0.5 / (math.sqrt(1.25) * math.sqrt(0.5)))
    assert lo <= point <= hi
    assert consistency(union, union, seed=0)[:3] == (pytest.approx(1.0), pytest.approx(1.0), pytest.approx(1.0))
    assert math.isnan(consistency(union, np.zeros(4))[0])


def _scores(values, k=4):
    values = np.asarray(values, dtype=float)[:, None]
    ids = [f"i{j}" for j in range(len(values))]
    return Scores(ids, [0], values, values, np.round(values * k), k, 0.0)


def _toy_grid():
    return Grid.from_config({"domains": ["math", "code"], "benchmarks": {"m": {"domain": "math"},
                                                                          "c": {"domain": "code"}},
                             "merges": {"ties": {"method": "ties_study"},
                                        "pair": {"method": "ties_study", "experts": ["math", "code"]}}})


def test_inheritance_table_on_a_toy_grid():
    scores = {("sft", "m"): _scores([0, 0.5, 0.5, 1]), ("rl-math", "m"): _scores([1, 0.5, 0.25, 1]),
              ("rl-code", "m"): _scores([0, 1, 0.5, 0.75]), ("rl-mixed", "m"): _scores([0.5, 0.5, 1, 1])}
    table = inheritance_table(scores, _toy_grid(), "strict", 0)
    assert table[["benchmark", "model", "n"]].values.tolist() == [["m", "rl-mixed", 4]]
    assert table.consistency.iloc[0] == pytest.approx(0.5 / (math.sqrt(1.25) * math.sqrt(0.5)))


def test_pairwise_table_on_a_toy():
    the_grid = _toy_grid()
    assert the_grid.pairwise_merges == ["merge-pair"] and the_grid.experts_for("merge-pair") == ["rl-math",
                                                                                                 "rl-code"]
    n = 40
    expert_m = np.tile([1.0, 0.0], n // 2)
    merged_m = expert_m.copy()
    merged_m[1::4] = 1.0                        # the merge also solves every other failed item: +0.25
    scores = {("rl-math", "m"): _scores(expert_m), ("merge-pair", "m"): _scores(merged_m),
              ("rl-code", "c"): _scores(np.full(n, 0.5)), ("merge-pair", "c"): _scores(np.full(n, 0.5))}
    table = pairwise_table(scores, the_grid, "strict", 0).set_index("benchmark")
    assert list(table.index) == ["m", "c"] and list(table.domain) == ["math", "code"]
    assert table.loc["m", "diff"] == pytest.approx(0.25) and table.loc["m", "n"] == n
    assert 0 < table.loc["m", "lo"] <= 0.25 <= table.loc["m", "hi"] and table.loc["m", "p_holm"] < 0.05
    assert table.loc["c", "diff"] == 0 and table.loc["c", "p"] == 1.0
    assert (table.loc["m", "expert_score"], table.loc["m", "merged_score"]) == (0.5, 0.75)


def test_pairwise_merge_nodes_in_the_grid():
    the_grid = _toy_grid()
    cells = the_grid.cells()
    assert ("merge-pair", "m") in cells and ("merge-ties", "c") in cells
    solo = Grid.from_config({"domains": ["math", "code", "science"], "benchmarks": {"m": {"domain": "math"},
                                                                                     "s": {"domain": "science"}},
                             "merges": {"mc": {"method": "average", "experts": ["math", "code"]}}})
    assert ("merge-mc", "s") not in solo.cells() and ("merge-mc", "m") in solo.cells()
    assert solo.parents("merge-mc") == ["sft", "rl-math", "rl-code"]
    assert solo.compared == ["rl-math", "rl-code", "rl-science", "rl-mixed", "opd", "merge-mc"]


def test_analyses_appear_in_the_report(tmp_path, monkeypatch):
    import fake_grid
    from mixmerge import grid as paths
    from mixmerge.analysis.pairwise_merges import run_pairwise_merges
    from mixmerge.analysis.skill_inheritance import run_skill_inheritance
    from mixmerge.report.tables import build_report

    spec = {**fake_grid.SPEC, "merges": {**fake_grid.SPEC["merges"],
                                         "pair": {"method": "ties_study", "experts": ["math", "code"]}}}
    fake_grid.make(tmp_path, spec)
    settings = {"metric": "strict", "seed": 0}
    outs = {name: {k: str(tmp_path / v) for k, v in paths.analysis_outputs(name).items()}
            for name in ("skill_inheritance", "pairwise_merges")}
    inherit = run_skill_inheritance(spec, settings, outs["skill_inheritance"], str(tmp_path))
    assert set(inherit["model"]) == {"rl-mixed", "opd", "merge-ties", "merge-average", "merge-pair"}
    assert inherit["lo"].le(inherit["consistency"]).all() and inherit["consistency"].le(inherit["hi"]).all()
    pairs = run_pairwise_merges(spec, settings, outs["pairwise_merges"], str(tmp_path))
    assert list(pairs["expert"]) == ["rl-math", "rl-code"] and pairs["n"].gt(0).all()
    monkeypatch.chdir(tmp_path)   # as the rule runs it: paths relative to the working directory
    build_report(spec, "report", root=".")
    page = (tmp_path / "report/report.html").read_text()
    assert "Skill inheritance (study §6.4" in page and "Pairwise merges (study §6.3" in page
    assert page.count('src="data:image/png;base64,') == len(paths.FIGURES) + 2
    assert "weight_shift: not computed" in page
    markdown = (tmp_path / "report/report.md").read_text()
    linked = [m for m in markdown.split("](")[1:] if "skill_inheritance/figure.png" in m.split(")")[0]]
    assert linked and (tmp_path / "report" / linked[0].split(")")[0]).is_file()   # relative to the report
