"""Bitwise fingerprints (sha256 per tensor) of every merge method on small deterministic checkpoints.

Builds, from fixed seeds, a tiny Qwen2 base + 4 experts (dense, dense, sparse, partly cancelling, a few
-0.0 base entries) and a second set whose deltas cancel exactly (the TIES tie rule), then runs every
method with default and non-default parameters through `run_merge_node` (on disk, float32 and a
bfloat16 output) and `merge_in_memory`. Save one run, change the code, and compare:

    PYTHONPATH=src python benchmarks/merge_checksums.py --out /tmp/before.json
    PYTHONPATH=src python benchmarks/merge_checksums.py --compare /tmp/before.json [--chunk 40] [--dtype bfloat16]

--chunk sets the streaming engine's chunk size (results must not change); --dtype the compute dtype.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch

ALT = {"lambda": 0.7, "density": 0.3, "drop": 0.3, "select_topk": 0.5, "weight": [1.0, 0.5, 0.8, 1.25]}


def _qwen(path: Path, base=None, seed=0, edit=None):
    import transformers

    cfg = transformers.Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                                   max_position_embeddings=32)
    torch.manual_seed(seed)
    model = transformers.Qwen2ForCausalLM(cfg)
    if base is not None:
        model.load_state_dict(base.state_dict())
    if edit is not None:
        with torch.no_grad():
            for name, p in model.named_parameters():
                edit(name, p)
    model.save_pretrained(path)
    return model


def build(root: Path) -> None:
    """Set 'mix': varied experts; set 'tie': exactly cancelling deltas on a 1/16 grid."""
    def neg_zero(name, p):
        if p.dim() == 1:
            p[:3] = -0.0
    base = _qwen(root / "mix" / "base", edit=neg_zero)
    deltas = {}

    def dense(seed, scale, keep=1.0):
        gen = torch.Generator().manual_seed(seed)

        def edit(name, p):
            step = torch.randn(p.shape, generator=gen) * scale * (torch.rand(p.shape, generator=gen) < keep)
            deltas.setdefault(seed, {})[name] = step
            p.add_(step)
        return edit

    _qwen(root / "mix" / "e0", base, edit=dense(1, 1e-2))
    _qwen(root / "mix" / "e1", base, edit=dense(2, 1e-2))
    _qwen(root / "mix" / "e2", base, edit=dense(3, 1e-2, keep=0.1))

    def cancel(name, p):   # minus e0's delta on every third entry, own noise elsewhere
        own = torch.randn(p.shape, generator=torch.Generator().manual_seed(4)) * 3e-3
        pick = torch.arange(p.numel()).reshape(p.shape) % 3 == 0
        p.add_(torch.where(pick, -deltas[1][name], own))
    _qwen(root / "mix" / "e3", base, edit=cancel)

    def grid(name, p):
        p.copy_(torch.round(p * 16) / 16)
    tbase = _qwen(root / "tie" / "base", edit=grid)
    for i, (on_tie, off_tie) in enumerate([(-0.5, -0.5), (0.5, -0.25), (0.0, -0.125), (0.0, 0.0625)]):
        def edit(name, p, on_tie=on_tie, off_tie=off_tie):
            tied = torch.arange(p.numel()).reshape(p.shape) % 10 == 0
            p.add_(torch.where(tied, on_tie, off_tie))
        _qwen(root / "tie" / f"e{i}", tbase, edit=edit)


def digest(tensors: dict) -> dict:
    out = {}
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        raw = t.view(torch.int16) if t.dtype == torch.bfloat16 else t
        out[name] = f"{t.dtype}:{tuple(t.shape)}:" + hashlib.sha256(raw.numpy().tobytes()).hexdigest()
    return out


def _state(path: Path) -> dict:
    from mixmerge.merging.checkpoints import CheckpointReader, parameter_order

    with CheckpointReader(path) as r:
        return {n: r.get(n).clone() for n in parameter_order(path, r.names)}


def _load_out(path: Path) -> dict:
    from mixmerge.merging.checkpoints import CheckpointReader

    with CheckpointReader(path) as r:
        return {n: r.get(n).clone() for n in r.names}


def cases(methods) -> list[tuple[str, str, str, dict, str | None]]:
    """(case id, checkpoint set, method, params, out_dtype)."""
    from mixmerge.merging.methods import METHODS

    out = []
    for m in methods:
        takes = getattr(METHODS[m], "param_names", METHODS[m].params)
        alt = {k: v for k, v in ALT.items() if k in takes}
        out += [(f"mix/{m}/default", "mix", m, {}, None), (f"mix/{m}/alt", "mix", m, alt, None),
                (f"mix/{m}/bf16out", "mix", m, {}, "bfloat16")]
        if "density" in takes:
            out += [(f"tie/{m}/density1", "tie", m, {"density": 1.0}, None),
                    (f"tie/{m}/density0.5", "tie", m, {"density": 0.5}, None)]
        else:
            out.append((f"tie/{m}/default", "tie", m, {}, None))
    return out


def run_all(root: Path, methods, dtype: str = "float32") -> dict:
    from mixmerge.merging.run import merge_in_memory, run_merge_node

    states = {s: (_state(root / s / "base"), [_state(root / s / f"e{i}") for i in range(4)]) for s in ("mix", "tie")}
    result = {}
    for case, cset, method, params, out_dtype in cases(methods):
        experts = [str(root / cset / f"e{i}") for i in range(4)]
        out = root / "out" / case.replace("/", "_")
        run_merge_node(method, dict(params), str(root / cset / "base"), experts, str(out), seed=0,
                       dtype=dtype, out_dtype=out_dtype)
        result[f"disk:{case}"] = digest(_load_out(out))
        if out_dtype is None:
            base, ex = states[cset]
            merged, _ = merge_in_memory(method, dict(params), base, ex, seed=0, dtype=dtype)
            result[f"mem:{case}"] = digest(merged)
    return result


def compare(before: dict, after: dict) -> int:
    differ = 0
    for case in sorted(set(before) | set(after)):
        b, a = before.get(case), after.get(case)
        if b is None or a is None:
            print(f"{case}: only in {'after' if b is None else 'before'}")
            continue
        bad = [n for n in b if a.get(n) != b[n]] + [n for n in a if n not in b]
        combined = hashlib.sha256(json.dumps(a, sort_keys=True).encode()).hexdigest()[:16]
        print(f"{case:45s} {'SAME' if not bad else f'DIFFERS in {len(bad)}/{len(b)} tensors'}  {combined}")
        differ += bool(bad)
    return differ


def main() -> int:
    from mixmerge.merging.methods import METHODS

    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--compare")
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--chunk", type=int, help="streaming chunk size (entries), to check chunking changes nothing")
    ap.add_argument("--dtype", default="float32", help="compute dtype of every merge")
    args = ap.parse_args()
    if args.chunk:
        from mixmerge.merging import stream
        stream.CHUNK = args.chunk
    with tempfile.TemporaryDirectory(prefix="merge-sums-") as tmp:
        root = Path(tmp)
        build(root)
        result = run_all(root, args.methods, args.dtype)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, sort_keys=True))
    if args.compare:
        return 1 if compare(json.loads(Path(args.compare).read_text()), result) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
