"""Merge engine pieces: fast kernels vs the reference ones, SCE weights in double, DARE masks, I/O, chunking."""

import json

import numpy as np
import pytest
import torch

from mixmerge.merging import dare, fastops, kernels
from mixmerge.merging.checkpoints import CheckpointReader, CheckpointWriter, DictSink, DictSource
from mixmerge.merging.run import merge_in_memory
from mixmerge.merging.selection import global_thresholds
from mixmerge.merging.stream import Stream


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.int32)


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equality (tells -0.0 from 0.0)."""
    return a.shape == b.shape and torch.equal(bits(a), bits(b))


def _awkward(n: int, size: int, seed: int):
    """Base and experts on a 1/8 grid (exact cancellations), with zero deltas, -0.0 and tiny values."""
    g = torch.Generator().manual_seed(seed)
    b = torch.round(torch.randn(size, generator=g) * 8) / 8
    b[::7] = -0.0
    experts = []
    for i in range(n):
        d = torch.round(torch.randn(size, generator=g) * 4) / 8
        d[torch.rand(size, generator=g) < 0.3] = 0.0
        d[::11] = 1e-40 * (i + 1)
        experts.append(b + d)
    experts[1][::5] = b[::5] - (experts[0][::5] - b[::5])      # exact cancellation with expert 0
    return b, experts


# ------------------------------------------------------------------ fast kernels == reference kernels
@pytest.mark.parametrize("n", [2, 4, 5])
@pytest.mark.parametrize("weights_kind", ["ones", "mixed", "signs"])
@pytest.mark.parametrize("lam", [1.0, 0.7])
def test_fast_ties_matches_reference(n, weights_kind, lam):
    b, experts = _awkward(n, 997, seed=n)
    weights = {"ones": [1.0] * n, "mixed": [1.0, 0.5, 2.0, 0.25, 3.0][:n],
               "signs": [1.0, -1.0, 0.5, 0.0, 2.0][:n]}[weights_kind]
    taus = [0.0, 0.25, 0.5, 0.125, 0.375][:n]
    nothing = [False] * n
    nothing[-1] = True
    # the tensor's keep count only decides the special cases: 0 (nothing kept), numel (all kept), else some
    counts = [0 if skip else 997 if tau == 0 else 5 for tau, skip in zip(taus, nothing)]
    ref = torch.stack([kernels.trim(e - b, tau, c, 997) for e, tau, c in zip(experts, taus, counts)])
    trimmed, kept = fastops.ties_trim(b, experts, taus, nothing)
    assert same(trimmed, ref)
    assert torch.equal(kept > 0, (ref != 0).any(dim=0))
    weighted, w, elected = kernels.ties_elect(ref.clone(), weights)
    want, want_cancel = kernels.ties_combine(b, weighted, w, elected, lam)
    got, got_elected, got_cancel = fastops.ties_merge(b, trimmed, weights, lam)
    assert same(got, want) and same(got_elected, elected)
    assert (got_cancel is None) == (weights_kind != "signs")
    if got_cancel is not None:
        assert torch.equal(got_cancel, want_cancel)


def test_fast_task_arithmetic_and_dare_match_reference():
    b, experts = _awkward(4, 1001, seed=9)
    for weights, lam in (([1.0] * 4, 1.0), ([0.5, 1.0, 2.0, 0.3], 0.25)):
        want = kernels.task_arithmetic(b, experts, weights, lam)
        assert same(fastops.task_arithmetic(b, experts, weights, lam), want)
    dropped = torch.bernoulli(torch.full((1001,), 0.3), generator=torch.Generator().manual_seed(1))
    for p in (0.3, 1.0):
        assert same(fastops.dare_expert(b, experts[0], 1 - dropped, p, 0), dare.dare_expert(b, experts[0], dropped, p))
    b16, e16, d16 = b.to(torch.bfloat16), experts[2].to(torch.bfloat16), dropped.to(torch.bfloat16)
    got, want = fastops.dare_expert(b16, e16, 1 - d16, 0.3, 0), dare.dare_expert(b16, e16, d16, 0.3)
    assert torch.equal(got.view(torch.int16), want.view(torch.int16))


def test_expert_sum_is_torch_sum_up_to_four_experts():
    for n in (1, 2, 3, 4):
        for m in (1, 7, 33, 4097):
            x = torch.randn(n, m) * torch.logspace(-8, 0, n).reshape(-1, 1)
            assert same(kernels.expert_sum(x), x.sum(dim=0))
    x = torch.full((3, 5), -0.0)
    assert same(kernels.expert_sum(x), x.sum(dim=0))                  # +0.0: sums start from +0


# ------------------------------------------------------------------ SCE weights: the study's doubles
SCE_D1 = torch.tensor([-0.25, 0.375, 0.125])
SCE_D2 = torch.tensor([-0.125, 1.125, -1.0])


def _float32_weights(deltas: torch.Tensor) -> torch.Tensor:
    """What the previous sce_study did: mean(d^2) and its normalisation in float32."""
    w = deltas.square().reshape(deltas.shape[0], -1).mean(dim=1)
    return w / w.sum()


def _study_sce(base: torch.Tensor, experts: list[torch.Tensor]) -> torch.Tensor:
    """The study's sce_merging for one tensor (select_topk 1), transcribed from its code."""
    deltas = torch.stack([e - base for e in experts], dim=0)
    weights = [torch.sum(delta ** 2).item() / delta.numel() for delta in deltas]
    total = sum(weights)
    weights = [1.0 / len(weights)] * len(weights) if total == 0 else [x / total for x in weights]
    weights = torch.tensor(weights, dtype=deltas.dtype).unsqueeze(-1)
    sign = deltas.sign()
    majority = (deltas.sum(dim=0) >= 0).to(deltas.dtype) * 2 - 1
    erased = weights * (sign == majority)
    mixed = (deltas * erased).sum(dim=0)
    divisor = erased.sum(dim=0)
    divisor[divisor == 0] = 1
    mixed /= divisor
    return (base + mixed).to(base.dtype)


def test_sce_weights_are_computed_in_double():
    deltas = torch.stack([SCE_D1, SCE_D2])
    scores = [kernels.sce_score(d) for d in deltas]
    assert scores == [fastops.sce_score_(d.clone()) for d in deltas]
    got = kernels.sce_weights(scores, torch.float32)
    # 0.21875/3 and 2.28125/3 -> 0.0875 and 0.9125, rounded once to float32
    assert torch.equal(got, torch.tensor([0.0875, 0.9125], dtype=torch.float32))
    float32_path = _float32_weights(deltas)
    assert not torch.equal(got, float32_path)        # the float32 computation is an ULP off here
    assert torch.equal(float32_path, torch.tensor([0.08749999105930328, 0.9124999642372131]))


def test_sce_study_merge_matches_the_study_code_not_float32():
    base = {"a": torch.zeros(3)}
    merged, _ = merge_in_memory("sce_study", {}, base, [{"a": SCE_D1}, {"a": SCE_D2}])
    assert same(merged["a"], _study_sce(base["a"], [SCE_D1, SCE_D2]))
    float32_merge = kernels.sce(base["a"], [SCE_D1, SCE_D2], _float32_weights(torch.stack([SCE_D1, SCE_D2])))
    assert float(merged["a"][0]) == -0.13593749701976776 != float(float32_merge[0])   # entry 0 keeps both


def test_sce_study_selection_shapes_only_the_weights():
    g = torch.Generator().manual_seed(0)
    base = {"a": torch.randn(6, 5, generator=g)}
    experts = [{"a": base["a"] + torch.randn(6, 5, generator=g) * 0.1} for _ in range(3)]
    merged, _ = merge_in_memory("sce_study", {"select_topk": 0.4}, base, experts)
    deltas = torch.stack([e["a"] - base["a"] for e in experts])
    mask = kernels.sce_select(deltas, 0.4)
    weights = kernels.sce_weights([kernels.sce_score(d * mask) for d in deltas], torch.float32)
    assert same(merged["a"], kernels.sce(base["a"], [e["a"] for e in experts], weights))
    assert mask.sum() == int(0.4 * 30)


# ------------------------------------------------------------------ DARE masks
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dare_masks_follow_the_study_random_order(dtype):
    numels = [37, 0, 4096 + 5, 64]
    masks = dare.DareMasks(numels, 3, 0.3, seed=7, dtype=dtype, piece=64)
    assert masks.stream == "_NumpyStream"
    gen = torch.Generator().manual_seed(7)
    for i in range(3):
        for t, n in enumerate(numels):
            want = torch.bernoulli(torch.full((n,), 0.3, dtype=dtype), generator=gen)
            assert torch.equal(masks.dropped(i, t, 0, n), want)
            if n > 16:
                assert torch.equal(masks.dropped(i, t, 8, n - 3), want[8:n - 3])


def test_dare_falls_back_to_torch_when_the_fast_stream_disagrees(monkeypatch):
    monkeypatch.setattr(dare._NumpyStream, "draw", lambda self, n: np.zeros(n, dtype=bool))
    masks = dare.DareMasks([100], 2, 0.5, seed=3)
    assert masks.stream == "_TorchStream"
    gen = torch.Generator().manual_seed(3)
    for i in range(2):
        assert torch.equal(masks.dropped(i, 0, 0, 100), torch.bernoulli(torch.full((100,), 0.5), generator=gen))


# ------------------------------------------------------------------ checkpoint I/O
def test_writer_reader_round_trip_shards_ranges_and_patches(tmp_path):
    from safetensors import safe_open

    tensors = {"w": torch.randn(30, 7), "b": torch.randn(5).to(torch.bfloat16), "i": torch.arange(4)}
    layout = [(n, tuple(t.shape), t.dtype) for n, t in tensors.items()]
    writer = CheckpointWriter(tmp_path, layout, shard_bytes=400)
    writer.write("w", tensors["w"].reshape(-1)[100:], start=100)
    writer.write("w", tensors["w"].reshape(-1)[:100])
    writer.write("b", tensors["b"])
    writer.write("i", tensors["i"])
    writer.patch("w", torch.tensor([3, 150]), torch.tensor([9.0, -9.0]))
    writer.close()
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) == 2          # w alone (over 400 bytes), then b and i
    want = dict(tensors)
    want["w"] = want["w"].clone()
    want["w"].view(-1)[[3, 150]] = torch.tensor([9.0, -9.0])
    with CheckpointReader(tmp_path) as r:
        assert set(r.names) == set(want)
        for name, t in want.items():
            assert torch.equal(r.get(name), t) and r.meta(name) == (tuple(t.shape), t.dtype)
        assert torch.equal(r.get_range("w", 20, 45), want["w"].reshape(-1)[20:45])
    for file in set(index["weight_map"].values()):
        with safe_open(str(tmp_path / file), "pt") as f:         # the files are valid safetensors
            for name in f.keys():
                assert torch.equal(f.get_tensor(name), want[name])


# ------------------------------------------------------------------ streaming: chunks and threads change nothing
def _study_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    base = {"emb": torch.randn(40, 9, generator=g), "bias": torch.zeros(9), "norm": torch.ones(13)}
    base["bias"][::2] = -0.0
    experts = []
    for i in range(4):
        e = {k: v + torch.round(torch.randn(v.shape, generator=g) * 16) / 512 for k, v in base.items()}
        experts.append(e)
    return base, experts


STUDY_PARAMS = {"average_study": {}, "task_arithmetic_study": {"lambda": 0.5},
                "ta_dare_study": {"lambda": 0.5, "drop": 0.3}, "ties_study": {"lambda": 0.5, "density": 0.3},
                "ties_dare_study": {"lambda": 0.5, "density": 0.3, "drop": 0.3}, "sce_study": {}}


@pytest.mark.parametrize("method", list(STUDY_PARAMS))
def test_chunk_size_and_workers_change_nothing(method, monkeypatch):
    from mixmerge.merging import stream

    base, experts = _study_inputs()
    want, _ = merge_in_memory(method, STUDY_PARAMS[method], base, experts, seed=3)
    for chunk, workers in ((8, 1), (16, 2), (1 << 20, 3)):
        monkeypatch.setattr(stream, "CHUNK", chunk)
        monkeypatch.setattr(stream.Stream, "__post_init__", _with_workers(stream.Stream.__post_init__, workers))
        got, _ = merge_in_memory(method, STUDY_PARAMS[method], base, experts, seed=3)
        monkeypatch.undo()
        assert all(same(got[k], want[k]) for k in base), (chunk, workers)


def _with_workers(init, workers):
    def wrapped(self):
        self.workers = workers
        init(self)
    return wrapped


def test_thresholds_exact_in_bfloat16_with_denormals_and_zeros():
    g = torch.Generator().manual_seed(5)
    base = {"a": torch.randn(500, generator=g).to(torch.bfloat16)}
    base["a"][300:320] = 0.0
    e = base["a"].clone()
    e[:300] += (torch.randn(300, generator=g) * 1e-2).to(torch.bfloat16)
    e[300:310] = 1e-39                                                # subnormal deltas in bfloat16
    src = Stream(DictSource(base), [DictSource({"a": e})], ["a"], dtype=torch.bfloat16, chunk=64)
    for density in (0.2, 0.5, 0.9, 1.0):
        pre = global_thresholds(src, density)
        flat = (e.to(torch.bfloat16) - base["a"]).abs().float()
        k = int(500 * (1 - density))
        want = 0.0 if k == 0 or int((flat == 0).sum()) >= k else float(flat.kthvalue(k).values)
        assert pre.thresholds[0] == want and pre.kept[0] == int((flat >= want).sum())


def test_dict_sink_and_device_option():
    base, experts = _study_inputs(1)
    sink = DictSink([("x", (3,), torch.float32)])
    sink.write("x", torch.tensor([1.0, 2.0]), 1)
    sink.patch("x", torch.tensor([0]), torch.tensor([5.0]))
    assert sink.tensors["x"][0] == 5.0 and sink.tensors["x"][2] == 2.0
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            merge_in_memory("ties_study", {}, base, experts, device="cuda")
