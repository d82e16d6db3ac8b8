"""The analyses' CLI sub-commands (``mixmerge weight-shift``, ``kl-neighbourhood``, ``skill-inheritance``,
``pairwise-merges``, ``self-verification``), registered on the ``mixmerge`` parser by ``add_commands``."""
from __future__ import annotations

import json


def key_values(items: list[str]) -> dict[str, str]:
    """``key=value`` arguments (``domain=path``, ``node=dir``) -> {key: value}, in order; for every sub-command."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not value:
            raise SystemExit(f"expected KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def cmd_weight_shift(a) -> None:
    from mixmerge.analysis.weight_shift_run import run_weight_shift

    record = run_weight_shift(a.sft, key_values(a.node), a.settings, key_values(a.out), a.threads)
    print(json.dumps({k: record[k] for k in ("n_params", "seconds")}))


def cmd_kl_neighbourhood(a) -> None:
    from mixmerge.analysis.kl_run import run_kl_neighbourhood

    table = run_kl_neighbourhood(a.spec, a.settings, key_values(a.model), key_values(a.bench), key_values(a.out), a.root,
                                 a.threads)
    print(table.to_string())


def cmd_self_verification(a) -> None:
    from mixmerge.analysis.self_verification_run import run_self_verification

    records = {}
    for item in a.records:
        cell, _, path = item.partition("=")
        model, _, bench = cell.partition(":")
        records[(model, bench)] = path
    table = run_self_verification(a.settings, a.eval_settings, key_values(a.model), key_values(a.bench), records,
                                  key_values(a.out), a.threads)
    print(table.to_string())


def cmd_skill_inheritance(a) -> None:
    from mixmerge.analysis.skill_inheritance import run_skill_inheritance

    print(run_skill_inheritance(a.spec, a.settings, key_values(a.out), a.root).to_string())


def cmd_pairwise_merges(a) -> None:
    from mixmerge.analysis.pairwise_merges import run_pairwise_merges

    print(run_pairwise_merges(a.spec, a.settings, key_values(a.out), a.root).to_string())


def add_commands(sub, as_json) -> None:
    s = sub.add_parser("weight-shift", help="changed-weight masks, overlap and shift direction vs SFT (study 6.1)")
    s.add_argument("--sft", required=True, help="the SFT checkpoint directory (the anchor)")
    s.add_argument("--node", nargs="+", required=True, metavar="NODE=DIR", help="the nodes compared, in order")
    s.add_argument("--settings", type=as_json, required=True, help="config analysis.weight_shift")
    s.add_argument("--out", nargs="+", required=True, metavar="KIND=PATH", help="table, density, figure, settings")
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(fn=cmd_weight_shift)
    s = sub.add_parser("kl-neighbourhood", help="KL(expert || rl-mixed) on the experts' eval samples (study 6.2)")
    s.add_argument("--spec", type=as_json, required=True, help="the grid slice (as for mixmerge report)")
    s.add_argument("--settings", type=as_json, required=True, help="config analysis.kl_neighbourhood")
    s.add_argument("--model", nargs="+", required=True, metavar="NODE=DIR", help="every expert and rl-mixed")
    s.add_argument("--bench", nargs="+", required=True, metavar="BENCHMARK=ROWS", help="each benchmark's rows")
    s.add_argument("--out", nargs="+", required=True, metavar="KIND=PATH", help="table, correlation, figure, settings")
    s.add_argument("--root", default=".", help="the directory holding results/")
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(fn=cmd_kl_neighbourhood)
    s = sub.add_parser("self-verification", help="each model judges its own eval samples (study 6.5)")
    s.add_argument("--settings", type=as_json, required=True, help="config analysis.self_verification")
    s.add_argument("--eval-settings", type=as_json, required=True, help="config eval (backend, batch size, vllm)")
    s.add_argument("--model", nargs="+", required=True, metavar="NODE=DIR")
    s.add_argument("--bench", nargs="+", required=True, metavar="BENCHMARK=ROWS")
    s.add_argument("--records", nargs="+", required=True, metavar="NODE:BENCHMARK=JSONL")
    s.add_argument("--out", nargs="+", required=True, metavar="KIND=PATH", help="table, figure, settings")
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(fn=cmd_self_verification)
    for name, fn, text in (("skill-inheritance", cmd_skill_inheritance, "per-item gain consistency (study 6.4)"),
                           ("pairwise-merges", cmd_pairwise_merges, "pairwise merges vs single expert (6.3)")):
        s = sub.add_parser(name, help=text)
        s.add_argument("--spec", type=as_json, required=True, help="the grid slice (as for mixmerge report)")
        s.add_argument("--settings", type=as_json, required=True, help=f"config analysis.{name.replace('-', '_')}")
        s.add_argument("--out", nargs="+", required=True, metavar="KIND=PATH", help="table, figure, settings")
        s.add_argument("--root", default=".", help="the directory holding results/")
        s.set_defaults(fn=fn)
