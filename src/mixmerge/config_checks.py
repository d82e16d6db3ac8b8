"""Config checks beyond the schema: strict YAML (duplicate keys), sandbox settings, merge experts, local paths."""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import yaml
from yaml.constructor import ConstructorError

log = logging.getLogger(__name__)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name


class ConfigError(ValueError):
    pass


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:  # an unhashable key: let the base class report it
                    continue
                if first != key_node.start_mark.line + 1:
                    raise ConstructorError(None, None, f"duplicate key {key!r} (first defined on line {first})",
                                           key_node.start_mark)
        return super().construct_mapping(node, deep)


def load_yaml(path: str | Path) -> dict:
    """A config file, strictly: a syntax error or a duplicate key is a ConfigError naming the file and line."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    try:
        data = yaml.load(text, Loader=StrictLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise ConfigError(f"{path}: {where}: {err.problem or err.context}"
                          + (f" ({err.context})" if err.context and err.problem else "")) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data or {}


def check_reward(reward: dict, where: str = "reward") -> None:
    """A fusion backend needs its URL; sandbox limits below the floor would zero every correct program."""
    from mixmerge.verifiers.sandbox_types import LIMIT_FLOORS

    if reward.get("sandbox_backend") == "fusion" and not reward.get("fusion_url"):
        raise ConfigError(f"config key '{where}.fusion_url': sandbox_backend 'fusion' needs the server's URL")
    for key, value in (reward.get("sandbox_limits") or {}).items():
        floor = LIMIT_FLOORS.get(key)
        if floor is not None and value < floor:
            raise ConfigError(f"config key '{where}.sandbox_limits.{key}': {value} is below the floor {floor} "
                              "(a correct program could not pass; every code reward would be 0)")
    if reward.get("sandbox_backend") == "unsafe_local":
        log.warning("config key '%s.sandbox_backend' is 'unsafe_local': programs the model writes run with no "
                    "isolation", where)


def check_merge_experts(config: dict) -> None:
    if config.get("merges") and len(config["domains"]) < 2:
        first = next(iter(config["merges"]))
        raise ConfigError(f"config key 'merges.{first}': a merge needs at least two experts (one per domain), but "
                          f"'domains' has {len(config['domains'])}; add domains or remove the merges")
    for name, spec in (config.get("merges") or {}).items():
        for i, domain in enumerate(spec.get("experts") or []):
            if domain not in config["domains"]:
                raise ConfigError(f"config key 'merges.{name}.experts[{i}]': {domain!r} is not in 'domains'")


def check_opd_teachers(config: dict) -> None:
    """Teacher servers (``opd.teachers.backend: vllm_server``) score the study loss only, and their GPUs plus at
    least one training GPU fit in ``gpus.opd``."""
    from mixmerge.compute.teacher_servers import settings_with_defaults

    teachers = config["opd"].get("teachers") or {}
    if teachers.get("backend", "local") != "vllm_server":
        return
    if config["opd"]["loss"] == "full_reverse_kl":
        raise ConfigError("config key 'opd.loss': full_reverse_kl needs each teacher's whole next-token distribution "
                          "at every response token, but a teacher server (opd.teachers.backend: vllm_server) answers "
                          "the log-probs of given tokens (vLLM's prompt_logprobs: the token and the top-k); use "
                          "loss: study, or backend: local")
    per_teacher = settings_with_defaults(teachers)["gpus_per_teacher"]
    needed = len(config["domains"]) * per_teacher + 1
    if config["gpus"]["opd"] < needed:
        raise ConfigError(f"config key 'gpus.opd': {config['gpus']['opd']} GPU(s) cannot hold "
                          f"{len(config['domains'])} teacher servers x {per_teacher} GPU(s) "
                          f"(opd.teachers.gpus_per_teacher) and at least one training GPU; give at least {needed}")


def check_train_eval(config: dict) -> None:
    """``grpo.eval.benchmarks`` name benchmarks of the grid; each run evaluates those of its own domains."""
    spec = config["grpo"].get("eval") or {}
    for i, name in enumerate(spec.get("benchmarks") or []):
        if name not in config["benchmarks"]:
            raise ConfigError(f"config key 'grpo.eval.benchmarks[{i}]': {name!r} is not in 'benchmarks'")


def _model_refs(config: dict) -> list[tuple[str, str]]:
    refs = []
    if config["base"]["source"] != "tiny":
        refs.append(("base.source", config["base"]["source"]))
    if not config["sft"]["enabled"] and config["sft"].get("path"):
        refs.append(("sft.path", config["sft"]["path"]))
    tokenizer = (config["data"].get("rl_blend") or {}).get("tokenizer")
    if tokenizer:
        refs.append(("data.rl_blend.tokenizer", tokenizer))
    return refs


def _source_paths(config: dict) -> list[tuple[str, str]]:
    data = config["data"]
    found = []
    if data.get("rl_blend"):
        found.append(("data.rl_blend.source", data["rl_blend"]["source"]))
    for name, spec in ((data.get("sft_blend") or {}).get("sources") or {}).items():
        found.append((f"data.sft_blend.sources.{name}.source", spec["source"]))
    for name, bench in config["benchmarks"].items():
        if bench.get("source"):
            found.append((f"benchmarks.{name}.source", bench["source"]))
    return [(f"{key}.path", source["path"]) for key, source in found if source.get("path")]


def check_local_paths(config: dict, root: str | Path = ".") -> list[str]:
    """Every local path the config names must exist (relative to ``root``, where Snakemake runs); a model given
    as a hub id (``owner/name``, nothing local by that name) is noted as one to fetch. Returns the notes."""
    notes, missing = [], []
    for key, value in _source_paths(config):
        if not (Path(root) / Path(value).expanduser()).exists():
            missing.append(f"config key '{key}': {value!r} does not exist")
    for key, value in _model_refs(config):
        local = Path(root) / Path(value).expanduser()
        if local.exists():
            continue
        if HUB_ID.match(value) and not value.startswith((".", "/", "~")):
            notes.append(f"{key}: {value!r} is not a local path; it will be fetched from the Hugging Face hub")
        else:
            missing.append(f"config key '{key}': {value!r} does not exist (and is no hub id)")
    accelerate = (config.get("launch") or {}).get("accelerate_config")
    if accelerate and not (Path(root) / accelerate).exists():
        missing.append(f"config key 'launch.accelerate_config': {accelerate!r} does not exist")
    if missing:
        raise ConfigError("missing local paths (resolved from " + os.path.abspath(root) + "):\n  " +
                          "\n  ".join(missing))
    for note in notes:
        log.info("%s", note)
    return notes
