"""Merge module tests: hand-computed tensors for every study-exact method, then end-to-end nodes."""

import json

import pytest
import torch

from mixmerge.merging.checkpoints import DictSource
from mixmerge.merging.dare import dare_delta
from mixmerge.merging.selection import global_thresholds
from mixmerge.merging.stream import Stream
from mixmerge.merging.run import METHODS, expand_merges, merge_in_memory, run_merge_node

Z = torch.zeros


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def close(a, b, atol=1e-7):
    assert torch.allclose(a, b, rtol=0, atol=atol), f"{a} != {b}"


# ------------------------------------------------------------------ global TIES threshold
def test_threshold_is_exact_kthvalue():
    gen = torch.Generator().manual_seed(3)
    base = {"a": torch.randn(300, generator=gen), "b": torch.randn(7, 11, generator=gen)}
    experts = []
    for scale in (1e-3, 1e-6, 1.0):
        e = {k: v + torch.randn(v.shape, generator=gen) * scale for k, v in base.items()}
        e["a"][:50] = base["a"][:50]            # exact zeros and repeated magnitudes
        e["b"][0] = base["b"][0] + 0.25
        experts.append(e)
    pre = global_thresholds(Stream(DictSource(base), [DictSource(e) for e in experts], ["a", "b"], chunk=64), 0.2)
    n = 377
    assert pre.n_entries == n and pre.k == int(n * 0.8)
    for i, e in enumerate(experts):
        flat = torch.cat([(e[k] - base[k]).abs().reshape(-1) for k in ("a", "b")])
        assert pre.thresholds[i] == float(flat.kthvalue(int(0.8 * n)).values)
        assert pre.kept[i] == int((flat >= pre.thresholds[i]).sum())
        for t, k in enumerate(("a", "b")):
            assert pre.tensor_max[i][t] == float((e[k] - base[k]).abs().max())
        assert pre.zero_fraction[i] == pytest.approx(int((flat == 0).sum()) / n)


# hand example (base 0, two tensors of 5, N = 10, density 0.2 -> k = 8):
#   E1 |d| sorted 0 .05 .1 .2 .3 .4 .5 .6 .7 .9 -> tau = .6 -> keeps a4=.9, b2=.6, b4=.7
#   E2 |d| sorted 0 .05 .1 .1 .2 .2 .3 .8 .9 1 -> tau = .8 -> keeps a0=-.8, a4=-1, b2=-.9
#   sums a=[-.8,0,0,0,-.1] b=[0,0,-.3,0,.7] -> signs a=[-,.,.,.,-] b=[.,.,-,.,+]
#   disjoint means a=[-.8,0,0,0,-1] b=[0,0,-.9,0,.7]
HAND_BASE = {"a": Z(5), "b": Z(5)}
HAND_E1 = {"a": t(0.1, -0.5, 0.3, 0.0, 0.9), "b": t(0.2, -0.05, 0.6, 0.4, 0.7)}
HAND_E2 = {"a": t(-0.8, 0.2, 0.1, 0.3, -1.0), "b": t(0.0, 0.1, -0.9, 0.05, 0.2)}


def test_ties_study_hand_example():
    merged, details = merge_in_memory("ties_study", {}, HAND_BASE, [HAND_E1, HAND_E2])
    close(merged["a"], t(-0.8, 0, 0, 0, -1.0))
    close(merged["b"], t(0, 0, -0.9, 0, 0.7))
    assert details["thresholds"] == [pytest.approx(0.6), pytest.approx(0.8)]
    assert details["trims_nothing"] == [False, False]
    # stock mergekit trims per tensor (top 1 of 5): a0 is lost, so the results must differ
    stock, _ = merge_in_memory("ties", {}, HAND_BASE, [HAND_E1, HAND_E2])
    assert float(stock["a"][0]) == 0.0


def test_ties_study_lambda_and_density_sweep_values():
    merged, _ = merge_in_memory("ties_study", {"lambda": 0.5, "density": 1.0}, HAND_BASE, [HAND_E1, HAND_E2])
    # no trim: a sums [-.7,-.3,.4,.3,-.1] -> signs [-,-,+,+,-] -> a = [-.8, -.5, (.3+.1)/2, .3, -1]
    close(merged["a"], 0.5 * t(-0.8, -0.5, 0.2, 0.3, -1.0))


def test_ties_study_tie_takes_global_majority_sign():
    # density 1: sums [0, -3, -4, .5] -> signs [0,-,-,+], majority -1, so entry 0 takes E2 (-1);
    # mergekit alone would elect + there and take E1 (+1)
    base = {"a": Z(4)}
    e1, e2 = {"a": t(1.0, -2.0, -3.0, 0.5)}, {"a": t(-1.0, -1.0, -1.0, 0.0)}
    merged, details = merge_in_memory("ties_study", {"density": 1.0}, base, [e1, e2])
    close(merged["a"], t(-1.0, -1.5, -2.0, 0.5))
    assert details["global_majority_sign"] == -1 and details["zero_sum_entries"] == 1
    assert details["weights_negated_for_tie_rule"] and details["exact"]
    stock, _ = merge_in_memory("ties", {"density": 1.0}, base, [e1, e2])
    close(stock["a"], t(1.0, -1.5, -2.0, 0.5))


def test_ties_study_degenerate_expert_trims_nothing():
    # E1: 17 of 20 delta entries exactly zero (85% >= 80%) -> tau = 0, all three nonzero kept;
    # per tensor top-20% would keep only 2 of them in tensor a
    base = {"a": Z(10), "b": Z(10)}
    e1 = {"a": t(0.3, 0.2, 0.1, 0, 0, 0, 0, 0, 0, 0), "b": Z(10)}
    e2 = {"a": Z(10), "b": torch.linspace(0.1, 1.0, 10)}   # 10 zeros, .1..1: 16th smallest .6 -> keeps .6..1
    merged, details = merge_in_memory("ties_study", {}, base, [e1, e2])
    close(merged["a"], t(0.3, 0.2, 0.1, 0, 0, 0, 0, 0, 0, 0))
    close(merged["b"], torch.cat([Z(5), torch.linspace(0.1, 1.0, 10)[5:]]))
    assert details["trims_nothing"] == [True, False]
    assert details["zero_delta_fraction"][0] == pytest.approx(0.85)
    assert any("trims nothing" in note and "expert 0" in note for note in details["notes"])
    stock, _ = merge_in_memory("ties", {}, base, [e1, e2])
    close(stock["a"], t(0.3, 0.2, 0, 0, 0, 0, 0, 0, 0, 0))


# ------------------------------------------------------------------ SCE
def test_sce_study_weights_below_mergekit_fallback():
    # mean squares 2.5e-8 and 5e-8 (sum < 1e-6): study weights 1/3, 2/3; mergekit uniform
    base = {"a": Z(2)}
    e1, e2 = {"a": t(1e-4, 2e-4)}, {"a": t(3e-4, -1e-4)}
    study, _ = merge_in_memory("sce_study", {}, base, [e1, e2])
    close(study["a"], t(1e-4 / 3 + 2e-4, 2e-4), atol=1e-10)
    stock, _ = merge_in_memory("sce", {}, base, [e1, e2])
    close(stock["a"], t(2e-4, 2e-4), atol=1e-10)


def test_sce_study_tiny_divisor_not_clamped():
    # w1 ~ 1e-10: entry 0 has only E1, so the study returns E1's delta; mergekit's 1e-6 clamp shrinks it
    base = {"a": Z(2)}
    e1, e2 = {"a": t(1e-5, 0.0)}, {"a": t(0.0, 1.0)}
    study, _ = merge_in_memory("sce_study", {}, base, [e1, e2])
    close(study["a"], t(1e-5, 1.0), atol=1e-12)
    stock, _ = merge_in_memory("sce", {}, base, [e1, e2])
    assert float(stock["a"][0]) < 1e-8


def test_sce_study_exact_zero_sum_is_uniform():
    base = {"a": t(1.0, 2.0)}
    same = {"a": t(1.0, 2.0)}
    study, _ = merge_in_memory("sce_study", {}, base, [same, dict(same)])
    close(study["a"], t(1.0, 2.0))
    # weights mean(d^2) = 1, 9 -> .1, .9; entry 0 both kept: .1*1 + .9*3; entry 1 sum -2 -> only E2
    e1, e2 = {"a": t(1.0, 1.0)}, {"a": t(3.0, -3.0)}
    study, _ = merge_in_memory("sce_study", {}, {"a": Z(2)}, [e1, e2])
    close(study["a"], t(0.1 * 1 + 0.9 * 3, -3.0), atol=1e-6)


# ------------------------------------------------------------------ DARE
def test_dare_delta_scale_and_seed():
    delta = torch.full((20000,), 3.0)
    out = dare_delta(delta, 0.2, torch.Generator().manual_seed(0))
    values = set(out.unique().tolist())
    assert values == {0.0, float(torch.div(torch.tensor(3.0), 0.8))}
    assert 0.78 < float((out != 0).float().mean()) < 0.82
    again = dare_delta(delta, 0.2, torch.Generator().manual_seed(0))
    other = dare_delta(delta, 0.2, torch.Generator().manual_seed(1))
    assert torch.equal(out, again) and not torch.equal(out, other)


def _study_dare_reference(base, experts, drop, seed):
    """The study's loop: global RNG seeded once, experts in order, parameters in order."""
    torch.manual_seed(seed)
    out = []
    for e in experts:
        d = {}
        for k in base:
            mask = torch.bernoulli(torch.full_like(e[k] - base[k], drop))
            d[k] = base[k] + torch.div((e[k] - base[k]) * (1 - mask), 1 - drop)
        out.append(d)
    return out


def test_ta_dare_study_matches_study_loop_and_is_seeded():
    gen = torch.Generator().manual_seed(0)
    base = {"w": torch.randn(40, 30, generator=gen), "b": torch.randn(30, generator=gen)}
    experts = [{k: v + 0.01 * torch.randn(v.shape, generator=gen) for k, v in base.items()} for _ in range(3)]
    merged, _ = merge_in_memory("ta_dare_study", {"drop": 0.3}, base, experts, seed=5)
    dared = _study_dare_reference(base, experts, 0.3, 5)
    for k in base:
        expected = base[k] + sum(d[k] - base[k] for d in dared)
        close(merged[k], expected, atol=1e-6)
    again, _ = merge_in_memory("ta_dare_study", {"drop": 0.3}, base, experts, seed=5)
    other, _ = merge_in_memory("ta_dare_study", {"drop": 0.3}, base, experts, seed=6)
    assert torch.equal(merged["w"], again["w"]) and not torch.equal(merged["w"], other["w"])


def test_ta_dare_study_hand_masks():
    base = {"a": Z(4)}
    e1, e2 = {"a": t(1, 2, 3, 4)}, {"a": t(10, 20, 30, 40)}
    g = torch.Generator().manual_seed(0)
    m1 = torch.bernoulli(torch.full((4,), 0.5), generator=g)
    m2 = torch.bernoulli(torch.full((4,), 0.5), generator=g)
    expected = 2 * (t(1, 2, 3, 4) * (1 - m1) + t(10, 20, 30, 40) * (1 - m2))
    merged, _ = merge_in_memory("ta_dare_study", {"drop": 0.5}, base, [e1, e2], seed=0)
    close(merged["a"], expected)


def test_ties_dare_study_is_dare_then_global_ties():
    base = {"a": Z(5), "b": Z(5)}
    merged, _ = merge_in_memory("ties_dare_study", {"drop": 0.2}, base, [HAND_E1, HAND_E2], seed=2)
    dared = _study_dare_reference(base, [HAND_E1, HAND_E2], 0.2, 2)
    expected, _ = merge_in_memory("ties_study", {}, base, dared)
    for k in base:
        close(merged[k], expected[k])


# ------------------------------------------------------------------ config expansion
def test_expand_merges_sweeps_and_defaults():
    grid = expand_merges({
        "ta": {"method": "task_arithmetic", "params": {"lambda": [0.5, 1.0]}},
        "ties": {"method": "ties_study", "params": {"density": [0.1, 0.2], "lambda": [1, 0.25]}},
        "sce": {"method": "sce_study"},
        "dare": {"method": "ta_dare_study", "params": {"drop": [0.2]}},
    })
    assert set(grid) == {"ta-lambda0.5", "ta-lambda1", "sce", "dare",
                         "ties-density0.1-lambda1", "ties-density0.1-lambda0.25",
                         "ties-density0.2-lambda1", "ties-density0.2-lambda0.25"}
    assert grid["ta-lambda0.5"] == {"method": "task_arithmetic", "params": {"lambda": 0.5, "weight": 1.0}}
    assert grid["sce"]["params"] == {"select_topk": 1.0}
    assert grid["dare"]["params"] == {"lambda": 1.0, "weight": 1.0, "drop": 0.2}


@pytest.mark.parametrize("cfg, fragment", [
    ({"x": {"method": "tiez"}}, "merges.x.method"),
    ({"x": {"method": "ties", "params": {"drop": 0.2}}}, "merges.x.params.drop"),
    ({"x": {"method": "ties", "params": {"density": [0.2, 1.5]}}}, "merges.x.params.density"),
    ({"x": {"method": "ta_dare_study", "params": {"drop": 1.0}}}, "merges.x.params.drop"),
    ({"x": {"method": "sce", "params": {"select_topk": "all"}}}, "merges.x.params.select_topk"),
    ({"x": {"method": "ties", "param": {}}}, "merges.x"),
    ({"bad name": {"method": "ties"}}, "merges.bad name"),
])
def test_expand_merges_errors_name_the_key(cfg, fragment):
    with pytest.raises(ValueError, match=fragment.replace(".", r"\.")):
        expand_merges(cfg)


# ------------------------------------------------------------------ end to end on checkpoints
def _tiny(path, base_model=None, scale=0.0, keep=1.0, seed=0):
    import transformers

    cfg = transformers.Qwen2Config(vocab_size=48, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True,
                                   max_position_embeddings=32)
    torch.manual_seed(seed)
    model = transformers.Qwen2ForCausalLM(cfg)
    if base_model is not None:
        model.load_state_dict(base_model.state_dict())
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                step = torch.randn(p.shape, generator=gen) * scale
                p.add_(step * (torch.rand(p.shape, generator=gen) < keep))
    model.save_pretrained(path)
    (path / "chat_template.jinja").write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    return model


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    base = _tiny(root / "base")
    experts = [_tiny(root / "e0", base, 1e-2, seed=1), _tiny(root / "e1", base, 1e-2, seed=2),
               _tiny(root / "e2", base, 1e-2, keep=0.1, seed=3)]        # e2: ~90% zero deltas
    state = lambda m: {n: p.detach().clone() for n, p in m.named_parameters()}  # noqa: E731
    return root, state(base), [state(e) for e in experts]


def _load(path):
    from safetensors.torch import load_file
    return load_file(str(path / "model.safetensors"))


def _dense_ties(base, experts, density):
    """Appendix C TIES over whole flattened models (the study's memory-hungry way)."""
    flat = torch.stack([torch.cat([(e[k] - base[k]).reshape(-1) for k in base]) for e in experts])
    kth = flat.abs().kthvalue(int(flat.shape[1] * (1 - density)), dim=1, keepdim=True).values
    flat = flat * (flat.abs() >= kth)
    signs = flat.sum(0).sign()
    signs[signs == 0] = signs.sum().sign()
    keep = ((signs > 0) & (flat > 0)) | ((signs < 0) & (flat < 0))
    merged = (flat * keep).sum(0) / (flat * keep != 0).sum(0).clamp(min=1)
    out, i = {}, 0
    for k, v in base.items():
        out[k] = v + merged[i:i + v.numel()].reshape(v.shape)
        i += v.numel()
    return out


@pytest.mark.parametrize("method", list(METHODS))
def test_run_merge_node_every_method(checkpoints, method, tmp_path):
    root, base, experts = checkpoints
    out = tmp_path / method
    rec = run_merge_node(method, {}, str(root / "base"), [str(root / f"e{i}") for i in range(3)], str(out),
                         seed=0)
    for name in ("model.safetensors", "config.json", "mergekit_config.yml", "merge_record.json",
                 "chat_template.jinja"):
        assert (out / name).exists(), name
    on_disk = json.loads((out / "merge_record.json").read_text())
    assert on_disk == rec
    assert rec["method"] == method and rec["family"] == METHODS[method].family
    assert rec["seed"] == 0 and rec["dtype"] == "float32" and rec["wall_seconds"] > 0
    merged = _load(out)
    assert set(merged) == set(base)              # tied lm_head stays tied: merged once, as the embedding
    if method == "ties_study":
        assert rec["trims_nothing"] == [False, False, True]
        assert rec["zero_delta_fraction"][2] > 0.8 and any("expert 2" in n for n in rec["notes"])
        expected = _dense_ties(base, experts, 0.2)
        for k in base:
            close(merged[k], expected[k], atol=1e-7)
    if method == "sce_study":
        expected, _ = merge_in_memory("sce_study", {}, base, experts)
        for k in base:
            close(merged[k], expected[k])
    if method in ("ta_dare_study", "ties_dare_study"):
        expected, _ = merge_in_memory(method, {}, base, experts, seed=0)
        for k in base:
            close(merged[k], expected[k])
    if method in ("task_arithmetic", "average"):
        for k in base:
            deltas = sum(e[k] - base[k] for e in experts)
            want = base[k] + deltas if method == "task_arithmetic" else sum(e[k] for e in experts) / 3
            close(merged[k], want, atol=1e-6)


@pytest.mark.parametrize("stock, study, params", [
    ("average", "average_study", {"weight": [1.0, 0.5, 2.0]}),
    ("task_arithmetic", "task_arithmetic_study", {"lambda": 0.3, "weight": [1.0, 0.5, 2.0]}),
])
def test_streamed_aliases_equal_mergekit_bitwise(checkpoints, stock, study, params, tmp_path):
    root, base, _ = checkpoints
    experts = [str(root / f"e{i}") for i in range(3)]
    recs = {m: run_merge_node(m, params, str(root / "base"), experts, str(tmp_path / m)) for m in (stock, study)}
    assert recs[stock]["engine"] == "mergekit" and recs[study]["engine"] == "mixmerge.merging.stream"
    assert recs[study]["device"] == "cpu"
    a, b = _load(tmp_path / stock), _load(tmp_path / study)
    assert set(a) == set(b) and all(torch.equal(a[k].view(torch.int32), b[k].view(torch.int32)) for k in a)
    cfg_a = json.loads((tmp_path / stock / "config.json").read_text())
    cfg_b = json.loads((tmp_path / study / "config.json").read_text())
    assert cfg_a["dtype"] == cfg_b["dtype"] == "float32"
    assert "mixmerge's streaming engine" in (tmp_path / study / "mergekit_config.yml").read_text()


def test_run_merge_node_study_and_stock_ties_differ(checkpoints, tmp_path):
    root, base, _ = checkpoints
    experts = [str(root / f"e{i}") for i in range(2)]
    for method in ("ties_study", "ties"):
        run_merge_node(method, {}, str(root / "base"), experts, str(tmp_path / method))
    study, stock = _load(tmp_path / "ties_study"), _load(tmp_path / "ties")
    assert any(not torch.equal(study[k], stock[k]) for k in base)


def test_run_merge_node_tie_rule_on_disk(tmp_path):
    """Exactly cancelling deltas (+-0.5 on a 1/16 grid) on 10% of entries, the rest elected
    negative: the study gives the tied entries the global majority sign (-), i.e. E0's -0.5."""
    base = _tiny(tmp_path / "base")
    with torch.no_grad():
        for p in base.parameters():
            p.copy_(torch.round(p * 16) / 16)
    base.save_pretrained(tmp_path / "base")
    signs = {}
    for i in range(2):
        expert = _tiny(tmp_path / f"e{i}", base)
        with torch.no_grad():
            for name, p in expert.named_parameters():
                tied = torch.arange(p.numel()).reshape(p.shape) % 10 == 0
                signs[name] = tied
                p.add_(torch.full_like(p, -0.5) if i == 0 else torch.where(tied, 0.5, -0.25))
        expert.save_pretrained(tmp_path / f"e{i}")
    rec = run_merge_node("ties_study", {"density": 1.0}, str(tmp_path / "base"),
                         [str(tmp_path / "e0"), str(tmp_path / "e1")], str(tmp_path / "out"))
    tg = rec["ties_global"]
    assert tg["global_majority_sign"] == -1 and tg["weights_negated_for_tie_rule"] and tg["exact"]
    assert tg["zero_sum_entries"] == sum(int(s.sum()) for s in signs.values())
    merged = _load(tmp_path / "out")
    for name, p in base.named_parameters():
        want = p.detach() + torch.where(signs[name], -0.5, -0.375)
        close(merged[name], want, atol=0)
