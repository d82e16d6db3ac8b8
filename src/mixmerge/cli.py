"""One entry point, one sub-command per stage: ``mixmerge <stage> ...`` (or ``python -m mixmerge``).
Snakemake rules call these; each runs without Snakemake too."""
from __future__ import annotations

import argparse
import json
import sys

from mixmerge.analysis.commands import key_values


def _json(text: str):
    return json.loads(text)


def cmd_base(a) -> None:
    from mixmerge.training.base_model import build_base
    from mixmerge.data.tiny import tokenizer_texts

    spec = a.spec
    texts = tokenizer_texts(a.domains, spec.get("tokenizer_texts_per_domain", 3000), a.seed)
    print(json.dumps(build_base(texts, spec, a.seed, a.out)))


def cmd_data(a) -> None:
    from mixmerge.data.tiny import prepare_tiny

    print(json.dumps(prepare_tiny(a.domain, a.train_n, a.eval_n, a.seed, a.out)))


def cmd_data_blend(a) -> None:
    from mixmerge.data.sources.blend import prepare_blend

    _log_info()
    cards = prepare_blend(a.spec, a.domains, a.tokenizer, a.out_dir, cache_dir=a.cache_dir)
    print(json.dumps({d: c["rows"] for d, c in cards.items()}))


def cmd_data_sft(a) -> None:
    from mixmerge.data.sources.sft_blend import prepare_sft_blend

    _log_info()
    card = prepare_sft_blend(a.spec, a.out, cache_dir=a.cache_dir)
    print(json.dumps(card["rows_per_source"]))


def cmd_data_bench(a) -> None:
    from mixmerge.data.sources.benchmarks import prepare_benchmark

    _log_info()
    card = prepare_benchmark(a.name, a.spec, a.out, cache_dir=a.cache_dir)
    print(json.dumps({"benchmark": a.name, "rows": card["rows"], "drops": card["drops"]}))


def _log_info() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def cmd_sft(a) -> None:
    from mixmerge.training.sft import train_sft

    train_sft(a.base, a.settings, a.seed, a.threads, a.out, a.checkpoints,
              train_files=key_values(a.train) if a.train else None, chats=a.chats, tensorboard_dir=a.tensorboard)


def cmd_grpo(a) -> None:
    from mixmerge.training.grpo import train_grpo

    train_grpo(a.node, a.model, key_values(a.train), a.settings, a.reward, a.steps, a.seed, a.threads, a.out,
               a.checkpoints, tensorboard_dir=a.tensorboard, eval_files=key_values(a.eval) if a.eval else None)


def cmd_opd(a) -> None:
    from mixmerge.training.opd import train_opd

    train_opd(a.node, a.model, key_values(a.teachers), key_values(a.train), a.settings, a.seed, a.threads, a.out,
              a.checkpoints, tensorboard_dir=a.tensorboard)


def cmd_merge(a) -> None:
    from mixmerge.merging.run import run_merge_node

    record = run_merge_node(a.method, a.params, a.base, a.experts, a.out, seed=a.seed, dtype=a.dtype,
                            device=a.device)
    print(json.dumps(record, default=str))


def cmd_eval(a) -> None:
    from mixmerge.evaluation.avgk import evaluate_node

    per_cell = (a.benchmark, a.bench, a.data, a.reward, a.out_jsonl, a.out_json)
    if len({len(values) for values in per_cell}) != 1:
        sys.exit("eval: give --benchmark, --bench, --data, --reward, --out-jsonl and --out-json once per benchmark")
    keys = ("benchmark", "bench", "data", "reward", "out_jsonl", "out_json")
    cells = [dict(zip(keys, values)) for values in zip(*per_cell)]
    for summary in evaluate_node(a.model, a.node, cells, a.eval_settings, a.threads):
        print(json.dumps(summary))


def cmd_headroom(a) -> None:
    from mixmerge.evaluation.generation import make_backend
    from mixmerge.evaluation.headroom import headroom

    cfg = a.eval_settings
    backend = make_backend(cfg["backend"], a.model, cfg["batch_size"], cfg["seed"], a.threads, cfg.get("vllm"))
    headroom(backend, key_values(a.train), a.settings, a.reward, a.out)


def cmd_config(a) -> None:
    import yaml

    from mixmerge.config import load_yaml, overlay, validate

    merged = load_yaml(a.base)
    for path in a.overlay:
        merged = overlay(merged, load_yaml(path))
    validate(merged)
    with open(a.out, "w") as f:
        yaml.safe_dump(merged, f, sort_keys=False)


def cmd_check_config(a) -> None:
    from mixmerge.check_config import main as check_main

    sys.exit(check_main(a.files, check_paths=not a.no_paths))


def cmd_report(a) -> None:
    from mixmerge.report.tables import build_report

    build_report(a.spec, a.out, a.root)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mixmerge", description=__doc__)
    sub = p.add_subparsers(dest="stage", required=True)
    _data_commands(sub)
    _training_commands(sub)
    _grid_commands(sub)
    from mixmerge.analysis.commands import add_commands

    add_commands(sub, _json)
    return p


def _data_commands(sub) -> None:
    s = sub.add_parser("base", help="build the tiny tokenizer + model")
    s.add_argument("--spec", type=_json, required=True)
    s.add_argument("--domains", nargs="+", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_base)

    s = sub.add_parser("data", help="prepare one domain's train/eval rows")
    s.add_argument("--domain", required=True)
    s.add_argument("--train-n", type=int, required=True)
    s.add_argument("--eval-n", type=int, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_data)

    s = sub.add_parser("data-blend", help="RL training rows per domain from the Nemotron RL blend")
    s.add_argument("--spec", type=_json, required=True, help="config data.rl_blend")
    s.add_argument("--domains", nargs="+", required=True)
    s.add_argument("--tokenizer", required=True, help="tokenizer (with chat template) for the length filter")
    s.add_argument("--cache-dir", default=None)
    s.add_argument("--out-dir", required=True)
    s.set_defaults(fn=cmd_data_blend)

    s = sub.add_parser("data-bench", help="one benchmark's rows (config benchmarks.<name>)")
    s.add_argument("--name", required=True)
    s.add_argument("--spec", type=_json, required=True)
    s.add_argument("--cache-dir", default=None)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_data_bench)

    s = sub.add_parser("data-sft", help="the SFT blend of chats (config data.sft_blend)")
    s.add_argument("--spec", type=_json, required=True)
    s.add_argument("--cache-dir", default=None)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_data_sft)



def _training_commands(sub) -> None:
    s = sub.add_parser("sft", help="SFT warm-up (TRL SFTTrainer)")
    s.add_argument("--base", required=True)
    data = s.add_mutually_exclusive_group(required=True)
    data.add_argument("--train", nargs="+", metavar="DOMAIN=PATH", help="tiny domains' training rows")
    data.add_argument("--chats", metavar="PATH", help="the prepared SFT blend (mixmerge data-sft)")
    s.add_argument("--settings", type=_json, required=True)
    _training_args(s)
    s.set_defaults(fn=cmd_sft)

    s = sub.add_parser("grpo", help="GRPO on one domain or the mixed blend (TRL GRPOTrainer)")
    s.add_argument("--node", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--train", nargs="+", required=True, metavar="DOMAIN=PATH")
    s.add_argument("--settings", type=_json, required=True)
    s.add_argument("--reward", type=_json, required=True)
    s.add_argument("--steps", type=int, required=True)
    s.add_argument("--eval", nargs="+", metavar="BENCHMARK=PATH", help="validation rows (config grpo.eval)")
    _training_args(s)
    s.set_defaults(fn=cmd_grpo)

    s = sub.add_parser("opd", help="multi-teacher on-policy distillation of the experts into SFT (TRL "
                                   "DistillationTrainer, one teacher per domain)")
    s.add_argument("--node", required=True)
    s.add_argument("--model", required=True, help="the student (the SFT model)")
    s.add_argument("--teachers", nargs="+", required=True, metavar="DOMAIN=MODEL", help="each domain's expert")
    s.add_argument("--train", nargs="+", required=True, metavar="DOMAIN=PATH")
    s.add_argument("--settings", type=_json, required=True, help="the opd config block")
    _training_args(s)
    s.set_defaults(fn=cmd_opd)



def _training_args(s) -> None:
    """What every training sub-command (sft, grpo, opd) takes: seed, threads, where the model, checkpoints and
    TensorBoard events go."""
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--out", required=True)
    s.add_argument("--checkpoints", required=True)
    s.add_argument("--tensorboard", default=None, help="TRL's TensorBoard event files go here (report_to)")


def _grid_commands(sub) -> None:
    s = sub.add_parser("merge", help="merge the experts onto the base (mergekit)")
    s.add_argument("--method", required=True)
    s.add_argument("--params", type=_json, default={})
    s.add_argument("--base", required=True)
    s.add_argument("--experts", nargs="+", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--dtype", default="float32")
    s.add_argument("--device", default="cpu", help="where the arithmetic runs: cpu, cuda, cuda:1 (the rule passes "
                                                   "cuda when gpus.merge > 0)")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_merge)

    s = sub.add_parser("eval", help="avg@k of one model on its benchmarks (each cell's six options once per "
                                    "benchmark, in the same order)")
    s.add_argument("--model", required=True)
    s.add_argument("--node", required=True)
    s.add_argument("--eval-settings", type=_json, required=True)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--benchmark", action="append", required=True)
    for name in ("--bench", "--reward"):
        s.add_argument(name, type=_json, action="append", required=True)
    for name in ("--data", "--out-jsonl", "--out-json"):
        s.add_argument(name, action="append", required=True)
    s.set_defaults(fn=cmd_eval)

    s = sub.add_parser("headroom", help="after SFT: avg@k, pass@k and format share on a training slice")
    s.add_argument("--model", required=True)
    s.add_argument("--train", nargs="+", required=True, metavar="DOMAIN=PATH")
    for name in ("--settings", "--eval-settings", "--reward"):
        s.add_argument(name, type=_json, required=True)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_headroom)

    s = sub.add_parser("config", help="write a complete config: a base file with overlays merged in, validated")
    s.add_argument("--base", default="config/config.yaml")
    s.add_argument("--overlay", action="append", default=[])
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_config)

    s = sub.add_parser("check-config", help="build every trainer config, merge plan and eval setting; no model")
    s.add_argument("files", nargs="+", help="config files, later ones overlaid on earlier ones")
    s.add_argument("--no-paths", action="store_true",
                   help="do not require the local paths the config names to exist (a machine without the data)")
    s.set_defaults(fn=cmd_check_config)

    s = sub.add_parser("report", help="the HTML report: tables with CIs, paired tests, figures, compute")
    s.add_argument("--spec", type=_json, required=True,
                   help="domains, merges, benchmarks (with domain), gpus, seed, seeds")
    s.add_argument("--root", default=".", help="the directory holding results/ and benchmarks/")
    s.add_argument("--out", default="results/report")
    s.set_defaults(fn=cmd_report)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
