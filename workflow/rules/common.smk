# Helpers shared by the rules: config validation, the grid (nodes x benchmarks), paths and params.
import json
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir).parent / "src"))

from mixmerge import grid
from mixmerge.config import ConfigError, check_local_paths, load_yaml, validate as validate_config
from mixmerge.merging.methods import expand_merges
from mixmerge.training.trainer_args import eval_benchmarks, with_prompt_limit

try:
    # Snakemake's own loader keeps the last of two equal keys silently: read the files again, strictly.
    for _configfile in workflow.configfiles:
        load_yaml(_configfile)
    validate_config(config, check_paths=False)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
# Local paths: a warning here, so a dry run plans without the data; `mixmerge check-config` refuses them, and
# the job that reads a missing file stops naming it. A hub id is noted.
try:
    for _note in check_local_paths(config):
        print(f"mixmerge: {_note}", file=sys.stderr)
except ConfigError as err:
    print(f"mixmerge: WARNING: {err}", file=sys.stderr)

GRID = grid.Grid.from_config(config)
DOMAINS = list(GRID.domains)
MERGES = expand_merges(config["merges"])
EXPERTS = GRID.experts
SEEDS = list(GRID.seeds)
# Node ids are ``<name><tag>``: the tag is empty for the first training seed, ``.s<seed>`` for the others.
TAGS = [GRID.tag(seed) for seed in SEEDS]
BENCHMARKS = list(GRID.benchmarks)
NODES = GRID.nodes
REPO = Path(workflow.basedir).parent
LAUNCH = config.get("launch", {})
# With --sdm conda a rule's shell runs in its env (workflow/envs/): use that env's python, with mixmerge
# from this checkout; otherwise the interpreter running Snakemake.
USE_CONDA = "conda" in {str(m).lower() for m in workflow.deployment_settings.deployment_method}
PYTHON = ["env", f"PYTHONPATH={REPO / 'src'}", "python"] if USE_CONDA else [sys.executable]


class Untracked:
    """A command prefix passed as a param (``run=``, used as ``{params.run}``). Snakemake records only plain
    values for the ``params`` rerun trigger, so it leaves this one out: how a job is launched (interpreter,
    PYTHONPATH, GPU leases, accelerate config) is not what it computes, and a new venv, a moved checkout or a
    lease setting does not re-run finished models. Renders as its text in a shell command."""

    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text

    def __repr__(self):
        return f"Untracked({self.text!r})"


def command(parts):
    return " ".join(shlex.quote(p) for p in parts)


def launcher(stage, distributed=False, extra=()):
    """Command prefix for a stage on its GPUs (``gpus.<stage>``): leases devices locally, and with
    ``distributed`` runs N > 1 processes under ``accelerate launch`` with the ZeRO config; ``extra``: more
    launcher arguments."""
    parts = [*PYTHON, "-m", "mixmerge.compute.launch", "--gpus", str(config["gpus"][stage]), "--job", stage,
             "--lease-dir", LAUNCH.get("lease_dir", ".snakemake/gpu_leases"),
             "--lease-wait-s", str(LAUNCH.get("lease_wait_s", 600))]
    if distributed:
        parts += ["--accelerate-config", str(REPO / LAUNCH.get("accelerate_config", "config/accelerate/zero3.yaml"))]
    return Untracked(command([*parts, *extra]) + " --")


MIXMERGE = Untracked(command([*PYTHON, "-m", "mixmerge"]))  # the CPU stages: base, data, report


RUN_SFT = launcher("sft", distributed=True)
RUN_GRPO = launcher("grpo", distributed=True)
RUN_OPD = launcher("opd", distributed=True)
RUN_MERGE = launcher("merge")
RUN_EVAL = launcher("eval")


def model_output(path, stage):
    """A model directory output; write-protected once written when the stage runs on GPUs (or when
    ``launch.protect_models`` says so), so a finished GPU job is never silently overwritten."""
    protect = LAUNCH.get("protect_models")
    if protect is None:
        protect = config["gpus"][stage] > 0
    return protected(directory(path)) if protect else directory(path)

wildcard_constraints:
    domain="|".join(DOMAINS),
    node="|".join(n.replace(".", r"\.") for n in NODES),
    benchmark="|".join(BENCHMARKS),
    merge="|".join((m + t).replace(".", r"\.") for m in MERGES for t in TAGS),
    opd="|".join(f"opd{t}".replace(".", r"\.") for t in TAGS),


def as_json(obj):
    return json.dumps(obj)


model_dir = grid.model_dir


def sft_model(wildcards, input):
    """The SFT checkpoint grpo and merge jobs start from: their input ``sft`` (``node_model_input("sft")``) when
    SFT is trained, else the existing checkpoint ``sft.path`` (an HF id or path)."""
    return input.sft if config["sft"]["enabled"] else config["sft"]["path"]


def sft_path_param():
    """``sft.path`` when SFT is not trained, else None. ``sft_model`` reads the input, so Snakemake leaves it out
    of the params rerun trigger; this plain param keeps a new ``sft.path`` (no input file) a rerun trigger."""
    return None if config["sft"]["enabled"] else config["sft"]["path"]


def train_files(domains):
    return {d: grid.train_rows(d) for d in domains}


def train_args(domains):
    return " ".join(f"{d}={path}" for d, path in train_files(domains).items())


SFT_CHATS = grid.SFT_CHATS


def sft_inputs():
    """The tiny SFT trains on the domains' reference answers; with real data, on the SFT blend of chats."""
    return [SFT_CHATS] if config["data"]["source"] != "tiny" else list(train_files(DOMAINS).values())


def sft_data_args():
    return f"--chats {SFT_CHATS}" if config["data"]["source"] != "tiny" else f"--train {train_args(DOMAINS)}"


def rl_name(wildcards):
    """``rl-{rl}`` without its seed tag: ``math``, ``mixed``."""
    return GRID.split(f"rl-{wildcards.rl}")[0][len("rl-"):]


def rl_domains(wildcards):
    return DOMAINS if rl_name(wildcards) == "mixed" else [rl_name(wildcards)]


def merge_point(wildcards):
    """The merge grid point of ``merge-{merge}`` (method, params), whatever its seed."""
    return MERGES[GRID.split(f"merge-{wildcards.merge}")[0][len("merge-"):]]


def merge_experts(wildcards):
    """The experts a merge node merges: those of its own training seed; all of them, or the ones it names."""
    return [model_dir(e) for e in GRID.experts_for(f"merge-{wildcards.merge}")]


def opd_launcher(wildcards):
    """The opd job's launcher; with ``opd.teachers.backend: vllm_server`` it first starts one vLLM server per
    expert of the node on GPUs of the job (logs in ``logs/opd/<node>.teachers/``) and stops them when it ends."""
    teachers = config["opd"].get("teachers") or {}
    if teachers.get("backend", "local") != "vllm_server":
        return RUN_OPD
    spec = {"models": {d: model_dir(e) for d, e in GRID.teachers_of(wildcards.opd).items()}, "settings": teachers,
            "log_dir": f"logs/opd/{wildcards.opd}.teachers"}
    return launcher("opd", distributed=True, extra=["--teacher-servers", json.dumps(spec)])


def opd_teachers(wildcards):
    """``DOMAIN=MODEL`` of every expert the opd node distils (its own training seed's)."""
    return " ".join(f"{d}={model_dir(e)}" for d, e in GRID.teachers_of(wildcards.opd).items())


def base_is_built():
    """base.source "tiny": the base rule builds it; else it is an HF id or path used as is."""
    return config["base"]["source"] == "tiny"


def node_model_input(node):
    if node == "sft" and not config["sft"]["enabled"]:
        return []
    if node == "base" and not base_is_built():
        return []
    return model_dir(node)


def node_model_path(node):
    """Where a node's model is: its built directory, or the configured SFT/base model used as is."""
    if node == "sft" and not config["sft"]["enabled"]:
        return config["sft"]["path"]
    if node == "base" and not base_is_built():
        return config["base"]["source"]
    return model_dir(node)


def eval_model_path(wildcards):
    return node_model_path(wildcards.node)


def bench_file(benchmark):
    """A benchmark's rows: the tiny domain's held-out file, or the benchmark's own prepared file."""
    if config["data"]["source"] == "tiny":
        return grid.held_out_rows(config["benchmarks"][benchmark]["domain"])
    return grid.bench_rows(benchmark)


def eval_cell_args(node, benches):
    """The eval command's six options per benchmark, shell-quoted."""
    args = []
    for b in benches:
        args += ["--benchmark", b, "--bench", json.dumps(config["benchmarks"][b]), "--data", bench_file(b),
                 "--reward", json.dumps(bench_reward(b)), "--out-jsonl", grid.eval_records(node, b),
                 "--out-json", grid.eval_summary(node, b)]
    return " ".join(shlex.quote(str(arg)) for arg in args)


def bench_reward(benchmark):
    """The reward settings for one benchmark: the reward block with the benchmark's overrides."""
    return {**config["reward"], **config["benchmarks"][benchmark].get("reward", {})}


def bench_data_spec(benchmark):
    """A benchmark's entry as its data job reads it: whether a judge is set, not the judge's settings (a new judge
    prompt re-scores the eval cells without rebuilding the rows)."""
    spec = dict(config["benchmarks"][benchmark])
    if spec.get("judge"):
        spec["judge"] = True
    return spec


def blend_tokenizer():
    """Tokenizer for the prompt-length filter: data.rl_blend.tokenizer, else the base model's."""
    name = config["data"]["rl_blend"].get("tokenizer")
    return name or (model_dir("base") if base_is_built() else config["base"]["source"])


def blend_tokenizer_input():
    return [model_dir("base")] if blend_tokenizer() == model_dir("base") else []


def cache_arg():
    cache = config["data"].get("cache_dir")
    return f"--cache-dir {cache}" if cache else ""


def eval_outputs():
    return [grid.eval_summary(node, bench) for node, bench in GRID.cells()]


def report_outputs():
    return [grid.report_file(name) for name in grid.REPORT_FILES]


def rl_nodes():
    """Every GRPO-trained node, every seed."""
    return [n for n in GRID.nodes if n.startswith("rl-")]


def combined_models():
    """The models the analyses compare with the experts: rl-mixed, the merges and opd (first-seed ids)."""
    return [n for n in GRID.compared if n not in EXPERTS]


def records_of(names):
    """The per-item eval records of these nodes (names without seed tags), every seed, every benchmark."""
    return [grid.eval_records(node, bench) for node, bench in GRID.cells() if GRID.split(node)[0] in names]


def judged_models():
    """{node: model path} of the models that judge their own samples: SFT and the analyses' comparison set."""
    out = {n: model_dir(n) for n in GRID.compared}
    return {"sft": node_model_path("sft"), **out}


def judged_records():
    """{(node, benchmark): eval records} of every cell of a judging model."""
    return {(n, b): grid.eval_records(n, b) for n, b in GRID.cells() if n in judged_models()}


def stage_threads(stage):
    """Torch threads of a stage's jobs: config threads, one number or one per stage."""
    threads = config["threads"]
    return threads if isinstance(threads, int) else threads[stage]


def headroom_outputs():
    return [grid.HEADROOM] if config["headroom"]["enabled"] else []


def analysis_outputs():
    return [path for name in grid.ANALYSES for path in grid.analysis_outputs(name).values()]


def report_inputs():
    """Everything the report reads: per-item eval records and summaries, eval and node benchmark files, the
    trained and merged models (cards with the runs' own compute records, train logs, merge records) and the
    GRPO runs' TensorBoard event files (the reward curves)."""
    trained = (["sft"] if config["sft"]["enabled"] else []) + [n for n in GRID.nodes if n not in ("base", "sft")]
    return {
        "summaries": eval_outputs(),
        "records": [grid.eval_records(node, bench) for node, bench in GRID.cells()],
        "eval_benchmarks": [grid.eval_benchmark_file(node) for node in dict.fromkeys(n for n, _ in GRID.cells())],
        "node_benchmarks": [grid.benchmark_file(node) for node in trained],
        "models": [model_dir(node) for node in trained],
        "tensorboard": [grid.tensorboard_dir(node) for node in rl_nodes()],
        "analyses": analysis_outputs(),
        "headroom": headroom_outputs(),
    }


def report_spec():
    """The config slice the report uses."""
    return {"domains": config["domains"], "merges": config["merges"], "gpus": config["gpus"],
            "seed": config["seed"], "seeds": SEEDS,
            "benchmarks": {name: {"domain": spec["domain"]} for name, spec in config["benchmarks"].items()}}


def grpo_settings():
    """The grpo block without the step counts (each run gets its own), with the prompt limit its token budget
    needs."""
    return {key: value for key, value in with_prompt_limit(config, "grpo").items() if key != "steps"}


def opd_settings():
    """The opd block with the prompt limit its token budget needs."""
    return with_prompt_limit(config, "opd")


def grpo_eval_files(wildcards):
    """The validation rows (``grpo.eval``) of a GRPO run: the benchmarks of its own domains."""
    return {b: bench_file(b) for b in eval_benchmarks(config["grpo"], config["benchmarks"], rl_domains(wildcards))}


def grpo_eval_args(wildcards):
    files = grpo_eval_files(wildcards)
    return ("--eval " + " ".join(f"{b}={path}" for b, path in files.items())) if files else ""
