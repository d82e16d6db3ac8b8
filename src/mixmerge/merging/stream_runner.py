"""Study-exact methods: a runner from study.py driven over checkpoints or state dicts by the streaming engine."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mixmerge.merging.params import expert_weights
from mixmerge.merging.registry import MergeMethod, RunOptions, torch_dtype


@dataclass(frozen=True)
class StudyMethod(MergeMethod):
    """A study-exact method: `runner` names its function in study.py; `dare` applies the study's DARE to
    the experts as they stream (seeded; masks drawn in the study's order)."""

    runner: str = ""
    dare: bool = False

    def record(self) -> dict:
        return {**super().record(), "engine": "mixmerge.merging.stream"}

    def _stream(self, base, experts, names, params: dict, opts: RunOptions, n_dare: int | None = None):
        from mixmerge.merging.dare import DareMasks
        from mixmerge.merging.stream import Stream, resolve_device

        dt = torch_dtype(opts.dtype)
        stream = Stream(base, experts, names, dt, resolve_device(opts.device))
        for i, e in enumerate(experts):
            missing = sorted(set(names) - set(e.names))
            if missing:
                raise ValueError(f"expert {i} lacks tensors the base has: {missing[:5]}")
            for name in names:
                if tuple(e.meta(name)[0]) != tuple(base.meta(name)[0]):
                    raise ValueError(f"expert {i}: {name} has shape {e.meta(name)[0]}, base {base.meta(name)[0]}")
        if self.dare:
            numels = stream.numels if n_dare is None else stream.numels[:n_dare]
            stream.dare = DareMasks(numels, len(experts), params["drop"], opts.seed, dt)
        return stream

    def _run(self, stream, params: dict, sink) -> dict:
        from mixmerge.merging import study

        details = getattr(study, self.runner)(stream, params, sink)
        if stream.dare is not None:
            details["dare"] = {"drop": params["drop"], "rescale": f"/ (1 - {params['drop']})",
                               "generator": f"torch CPU generator seeded {stream.dare.seed}, experts in order, "
                                            "parameters in named_parameters() order",
                               "mask_stream": stream.dare.stream, "mask_bytes": stream.dare.nbytes()}
        return details

    def _names(self, base: str, reader) -> tuple[list[str], list[str], int]:
        """(tensors to merge, tensors copied from the base, how many of the first get DARE). Every
        floating-point tensor is merged; with DARE the model's parameters come first in
        `named_parameters()` order (the study's random order) and other stored floats (a stored tied
        duplicate) follow, merged without DARE."""
        floating = [n for n in reader.names if reader.meta(n)[1].is_floating_point]
        copied = [n for n in reader.names if not reader.meta(n)[1].is_floating_point]
        if not self.dare:
            return floating, copied, len(floating)
        from mixmerge.merging.checkpoints import parameter_order

        order = parameter_order(base, reader.names)
        in_order = set(order)
        return order + [n for n in floating if n not in in_order], copied, len(order)

    def merge_checkpoints(self, base: str, experts: Sequence[str], out: Path, params: dict,
                          opts: RunOptions) -> tuple[dict, dict]:
        from mixmerge.merging.checkpoints import CheckpointReader, CheckpointWriter

        out_dt = torch_dtype(opts.out_dtype or opts.dtype)
        with contextlib.ExitStack() as stack:
            b = stack.enter_context(CheckpointReader(base))
            readers = [stack.enter_context(CheckpointReader(e)) for e in experts]
            names, copied, n_dare = self._names(base, b)
            layout = [(n, b.meta(n)[0], out_dt) for n in names] + [(n, *b.meta(n)) for n in copied]
            stream = self._stream(b, readers, names, params, opts, n_dare)
            writer = CheckpointWriter(out, layout)
            details = self._run(stream, params, writer)
            for name in copied:
                writer.write(name, b.get(name))
            writer.close()
        _save_config(base, out, opts.out_dtype or opts.dtype)
        return self._record_fields(details), self.config(base, experts, params, opts)

    def merge_state_dicts(self, base, experts, params, opts):
        from mixmerge.merging.checkpoints import DictSink, DictSource

        dt = torch_dtype(opts.dtype)
        stream = self._stream(DictSource(base), [DictSource(e) for e in experts], list(base), params, opts)
        sink = DictSink([(n, tuple(t.shape), dt) for n, t in base.items()])
        return sink.tensors, self._run(stream, params, sink)

    @staticmethod
    def _record_fields(details: dict) -> dict:
        fields = {"notes": details.get("notes", [])}
        if "dare" in details:
            fields["dare"] = details.pop("dare")
        if "thresholds" in details:
            fields.update(ties_global=details, zero_delta_fraction=details["zero_delta_fraction"],
                          trims_nothing=details["trims_nothing"])
        return fields

    def config(self, base: str, experts: Sequence[str], params: dict, opts: RunOptions) -> dict:
        """A mergekit-style description of the merge (mergekit does not run it: see the record's engine)."""
        weights = expert_weights(params, len(experts))
        shared = {k: v for k, v in params.items() if k != "weight"}
        models = [{"model": str(p), "parameters": {"weight": w} if "weight" in params else {}}
                  for p, w in zip(experts, weights)]
        cfg = {"merge_method": self.name, "base_model": str(base), "models": models, "parameters": shared,
               "dtype": opts.dtype, "seed": opts.seed}
        if opts.out_dtype:
            cfg["out_dtype"] = opts.out_dtype
        return cfg


def _save_config(base: str, out: Path, dtype: str) -> None:
    """The base's config.json with the output dtype (what mergekit writes; no transformers import)."""
    config = json.loads((Path(base) / "config.json").read_text())
    config["dtype"] = dtype
    if "torch_dtype" in config:
        config["torch_dtype"] = dtype
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
