"""config/paper.yaml against the study's settings (study.md section 2.1 GRPO recipe, section 3 merges), key by
key, and the study DAG rendered by ``snakemake -n --configfile config/paper.yaml``."""
import re
import time
from pathlib import Path

import pytest
import yaml

from mixmerge.config import ConfigError, validate
from mixmerge import grid
from mixmerge.grid import Grid
from mixmerge.merging.methods import expand_merges
from workflow_copy import run_snakemake, snakemake_env

ROOT = Path(__file__).resolve().parents[1]
PAPER = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())

# study.md section 2.1 (and 2.3 for the steps of paper v1)
# study.md section 3 / Appendix C: the paper's merge table with the study's semantics
STUDY_MERGES = {
    "average": ("average", {}),
    "ta": ("task_arithmetic", {"lambda": 1.0}),
    "ta_dare": ("ta_dare_study", {"lambda": 1.0, "drop": 0.2}),
    "ties": ("ties_study", {"lambda": 1.0, "density": 0.2}),
    "ties_dare": ("ties_dare_study", {"lambda": 1.0, "drop": 0.2, "density": 0.2}),
    "sce": ("sce_study", {"select_topk": 1.0}),
}
STUDY_BENCHMARKS = {"aime24": "math", "aime25": "math", "lcb_v5": "code", "lcb_v6": "code", "hle": "science",
                    "gpqa_diamond": "science", "ifeval": "instruct", "ifbench": "instruct", "mmlu_redux": "science"}


def test_paper_config_is_valid():
    validate(PAPER, check_paths=False)  # its RL blend is a local file made by hand (data/...), absent here
    with pytest.raises(ConfigError, match=r"config key 'data.rl_blend.source.path': .*does not exist"):
        validate(PAPER)


@pytest.mark.parametrize("name", list(STUDY_MERGES))
def test_merges_match_study(name):
    method, params = STUDY_MERGES[name]
    point = expand_merges(PAPER["merges"])[name]
    assert point["method"] == method
    for key, value in params.items():
        assert point["params"][key] == value


def test_setup_matches_study():
    assert PAPER["base"]["source"] == "Qwen/Qwen3-4B-Base"
    assert PAPER["domains"] == ["math", "code", "science", "instruct"]
    blend = PAPER["data"]["rl_blend"]
    assert blend["max_prompt_tokens"] == 2048
    assert blend["subsets"]["nano_v3_sft_profiled_structured_outputs"] == "drop"
    assert {s: d for s, d in blend["subsets"].items() if d != "drop"} == {
        "nano_v3_sft_profiled_dapo17k": "math", "nano_v3_sft_profiled_skywork_no_omni": "math",
        "nano_v3_sft_profiled_stem_mcqa": "science", "nano_v3_sft_profiled_instruction_following": "instruct",
        "nano_v3_sft_profiled_comp_coding_50tests": "code"}
    reward = PAPER["reward"]
    assert (reward["require_think"], reward["math_timeout_s"], reward["max_tests"]) == (True, 10, 20)
    assert {b: spec["domain"] for b, spec in PAPER["benchmarks"].items()} == STUDY_BENCHMARKS
    assert PAPER["benchmarks"]["ifeval"]["loader"] == "ifeval"


def test_sft_blend_matches_study():
    blend = PAPER["data"]["sft_blend"]
    assert blend["seed"] == 42
    targets = {name: spec["target"] for name, spec in blend["sources"].items()}
    assert targets == {"math_proofs": 335122, "math": 2950525, "science": 2263340, "code": 3927984,
                       "chat": 4309780, "agent": 335122}
    assert sum(targets.values()) == 14121873  # study.md §1.2, Table 1


def test_sft_from_data_renders_its_nodes(tmp_path, workflow_copy):
    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    cfg["sft"]["enabled"] = True
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    text, _ = dry_run(workflow_copy, "--configfile", str(tmp_path / "cfg.yaml"))
    counts = job_counts(text)
    assert counts["sft_blend"] == 1 and counts["sft"] == 1
    assert re.search(r"rule sft:.*?--chats results/data/sft/train.parquet", text, re.DOTALL)
    del cfg["data"]["sft_blend"]
    with pytest.raises(ConfigError, match=r"config key 'data.sft_blend'"):
        validate(cfg, check_paths=False)


def test_bad_source_is_named():
    bad = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    bad["benchmarks"]["aime24"]["source"] = {"hub_id": "math-ai/aime24", "splt": "test"}
    with pytest.raises(ConfigError, match=r"benchmarks.aime24.source.splt"):
        validate(bad, check_paths=False)
    del bad["benchmarks"]["lcb_v5"]["release"]
    with pytest.raises(ConfigError, match=r"benchmarks.lcb_v5': 'release' is a required property"):
        validate(bad, check_paths=False)


def dry_run(root: Path, *args: str):
    """``snakemake -n ARGS`` in the workflow copy at ``root``; (output, seconds). The study's hand-made RL blend
    file is put in place first (an empty stand-in): every local path a config names must exist to plan."""
    blend = root / PAPER["data"]["rl_blend"]["source"]["path"]
    blend.parent.mkdir(parents=True, exist_ok=True)
    blend.touch()
    started = time.perf_counter()
    out = run_snakemake(root, "-n", *args, timeout=60)
    return out.stdout + out.stderr, time.perf_counter() - started


def job_counts(text: str) -> dict:
    stats = text.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.MULTILINE)}


def test_paper_dag_renders_every_cell_fast(workflow_copy):
    from mixmerge.training.trainer_args import trainer_fields

    trainer_fields()  # the first call on a machine imports TRL (about 11 s) and caches the field names
    text, seconds = dry_run(workflow_copy, "--configfile", "config/paper.yaml")
    print(f"paper dry run: {seconds:.1f} s")
    assert seconds < 60, f"dry run took {seconds:.1f} s"   # a guard against a hang, not a speed target
    merges = [f"merge-{m}" for m in expand_merges(PAPER["merges"])]
    cells = Grid.from_config(PAPER).cells()   # a merge of named experts: on their domains' benchmarks only
    assert {b for _, b in cells} == set(STUDY_BENCHMARKS)
    assert {n for n, _ in cells} >= {"opd", "rl-mixed"}
    for node, bench in cells:
        assert f"results/eval/{node}/{bench}.json" in text
    for node in ["rl-math", "rl-code", "rl-science", "rl-instruct", "rl-mixed", "opd", *merges]:
        assert f"results/models/{node}" in text
    for bench in STUDY_BENCHMARKS:
        assert f"results/data/bench/{bench}.parquet" in text
    counts = job_counts(text)
    analyses = dict.fromkeys(grid.ANALYSES, 1)
    evals = {name: len(nodes) for name, _, nodes in Grid.from_config(PAPER).eval_rules()}   # one job per node
    assert counts == {"rl_blend": 1, "bench_prep": 9, "grpo": 4, "grpo_mixed": 1, "opd": 1, "merge": len(merges), "headroom": 1,
                      **evals, **analyses, "report": 1, "all": 1,
                      "total": 19 + len(analyses) + len(merges) + sum(evals.values())}
    resources = re.findall(r"rule (\w+):.*?resources: ([^\n]*)", text, re.DOTALL)
    gpus = {rule: res for rule, res in resources}
    assert "gpu=8" in gpus["grpo"] and "gpu=1" in gpus["evaluate"] and "gpu=0" in gpus["merge"]
    assert f"gpu={PAPER['gpus']['opd']}" in gpus["opd"]
    for name in analyses:
        assert f"results/analysis/{name}/table.csv" in text and f"results/analysis/{name}/figure.png" in text
    assert "gpu=1" in gpus["kl_neighbourhood"] and "gpu=1" in gpus["self_verification"]   # they run the models
    assert "gpu" not in gpus["weight_shift"] and "gpu" not in gpus["skill_inheritance"]


def test_tiny_dag_has_every_node_and_cell(workflow_copy):
    tiny = yaml.safe_load((workflow_copy / "config/config.yaml").read_text())
    cells = Grid.from_config(tiny).cells()
    assert len({n for n, _ in cells}) == 2 + len(tiny["domains"]) + 1 + 1 + len(tiny["merges"])   # with opd
    text, _ = dry_run(workflow_copy)
    # base, 4 data preps, sft, headroom, 5 GRPO runs, opd, merges, one eval job per node, 5 analyses, report, all
    counts = job_counts(text)
    nodes = len({n for n, _ in cells})
    assert counts["total"] == 1 + 4 + 1 + 1 + 5 + 1 + len(tiny["merges"]) + nodes + len(grid.ANALYSES) + 2
    assert all(counts[name] == 1 for name in grid.ANALYSES)
    assert any(n.startswith("merge-") and len(Grid.from_config(tiny).domains_of(n)) == 2 for n, _ in cells)


def test_real_data_rules_run_on_fixtures(tmp_path, workflow_copy):
    """The study config with its sources pointed at fixture files: the data rules run and write cards."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    fixtures = ROOT / "tests" / "fixtures"
    tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    fast.chat_template = "{% for m in messages %}{{ m.content }} {% endfor %}"
    fast.save_pretrained(tmp_path / "tok")
    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    cfg["data"]["rl_blend"].update(source={"path": str(fixtures / "nemotron_blend.jsonl")},
                                   tokenizer=str(tmp_path / "tok"), max_prompt_tokens=200)
    cfg["benchmarks"]["aime24"]["source"] = {"path": str(fixtures / "aime24.jsonl")}
    cfg["benchmarks"]["hle"]["source"] = {"path": str(fixtures / "hle.jsonl")}
    cfg["sft"]["enabled"] = True
    cfg["data"]["sft_blend"].update(num_proc=1, sources={
        name: {"source": {"path": str(fixtures / "sft_blend" / f"{name}.jsonl")}, "target": 2}
        for name in ("math", "code", "chat")})
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run_snakemake(workflow_copy, "--configfile", str(tmp_path / "cfg.yaml"), "--cores", "1",
                  "results/data/bench/aime24.parquet", "results/data/bench/hle.parquet",
                  "results/data/math/train.parquet",
                  "results/data/sft/train.parquet",
                  env=snakemake_env(workflow_copy, HF_DATASETS_CACHE=str(tmp_path / "cache")), timeout=300)
    card = json.loads((workflow_copy / "results/data/math/train.card.json").read_text())
    assert card["rows"] == 3 and card["filters"]["dropped_prompt_too_long"] == 1
    assert card["blend"]["source"]["files"][0]["sha256"]
    assert json.loads((workflow_copy / "results/data/bench/aime24.card.json").read_text())["rows"] == 2
    hle = json.loads((workflow_copy / "results/data/bench/hle.card.json").read_text())
    assert (hle["judge"], hle["rows_judged"]) == (True, 1)   # the free-form item kept for the judge
    sft = json.loads((workflow_copy / "results/data/sft/train.card.json").read_text())
    assert sft["rows_per_source"] == {"math": 2, "code": 2, "chat": 2}


def test_opd_matches_study():
    # study.md section 2.4: MT-OPD
    opd = PAPER["opd"]
    assert (opd["loss"], opd["epsilon"], opd["prompts_per_step"], opd["samples_per_prompt"], opd["steps"]) == \
        ("study", 0.2, 256, 4, 200)
    trl = opd["trl"]
    assert (trl["learning_rate"], trl["lr_scheduler_type"], trl["weight_decay"], trl["adam_beta1"],
            trl["adam_beta2"]) == (1e-6, "constant", 0.1, 0.9, 0.98)
    assert (trl["max_completion_length"], trl["temperature"], trl["top_p"], trl["top_k"]) == (16384, 1.0, 1.0, 0)


def five_domain_config(root: Path) -> dict:
    from mixmerge.config_checks import load_yaml
    from snakemake.utils import update_config

    config = load_yaml(root / "config/paper.yaml")
    update_config(config, load_yaml(root / "config/paper-5domain.yaml"))
    return config


def test_paper_5domain_dag_lists_every_agent_node_and_cell(workflow_copy):
    text, _ = dry_run(workflow_copy, "--configfile", "config/paper.yaml", "config/paper-5domain.yaml")
    config = five_domain_config(workflow_copy)
    assert config["domains"][-1] == "agent" and PAPER["domains"] == ["math", "code", "science", "instruct"]
    cells = Grid.from_config(config).cells()
    agent_cells = [(n, b) for n, b in cells if b == "agent_workplace"]
    merges = [f"merge-{m}" for m in expand_merges(config["merges"]) if not config["merges"][m].get("experts")]
    assert {n for n, _ in agent_cells} >= {"sft", "rl-agent", "rl-mixed", "opd", *merges}
    for node, bench in cells:
        assert f"results/eval/{node}/{bench}.json" in text
    assert "results/models/rl-agent" in text and "results/data/bench/agent_workplace.parquet" in text
    assert "--train math=results/data/math/train.parquet code=results/data/code/train.parquet " \
           "science=results/data/science/train.parquet instruct=results/data/instruct/train.parquet " \
           "agent=results/data/agent/train.parquet" in text   # rl-mixed and opd: all five domains
    counts = job_counts(text)
    assert counts["grpo"] == 5 and counts["bench_prep"] == 10 and counts["opd"] == 1
    assert "rl-agent" in re.search(r"--teachers[^\n]*", text.split("rule opd:")[1]).group(0)
