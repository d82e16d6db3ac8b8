"""Load and validate the configuration; every error names the offending key."""
from __future__ import annotations

from pathlib import Path

import yaml

from mixmerge.config_checks import (ConfigError, check_local_paths, check_merge_experts,  # noqa: F401
                                    check_opd_teachers, check_reward, check_train_eval, load_yaml)

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def _key_path(error) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        # jsonschema reports the parent; name the unexpected key itself.
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        if extra and isinstance(error.schema.get("additionalProperties"), bool):
            parts.append(extra[0])
    return ".".join(parts) or "<top level>"


def validate(config: dict, schema_path: str | Path = SCHEMA, *, check_paths: bool = True, root: str | Path = ".") -> dict:
    """Check config against the JSON schema and the cross-key rules; raise ConfigError naming the key. With
    ``check_paths``, every local path it names must exist (relative to ``root``, where the workflow runs)."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"config key '{_key_path(e)}': {e.message}" for e in errors]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    _check_domains(config)
    _check_trainer_fields(config)
    check_reward(config.get("reward") or {})
    check_merge_experts(config)
    check_train_eval(config)
    check_opd_teachers(config)
    for name, bench in config["benchmarks"].items():
        if bench["domain"] not in config["domains"]:
            raise ConfigError(f"config key 'benchmarks.{name}.domain': {bench['domain']!r} is not in 'domains'")
        if bench.get("judge"):
            from mixmerge.evaluation.judge import check_settings

            try:
                check_settings(bench["judge"], f"benchmarks.{name}.judge")
            except ValueError as err:
                raise ConfigError(str(err)) from None
    if config["sft"]["enabled"] and config["data"]["source"] != "tiny" and not config["data"].get("sft_blend"):
        raise ConfigError("config key 'data.sft_blend': sft.enabled with real data needs the SFT chats to train "
                          "on; give data.sft_blend, or set sft.enabled: false and sft.path to an SFT checkpoint")
    if not config["sft"]["enabled"] and not config["sft"].get("path"):
        raise ConfigError("config key 'sft.path': sft.enabled is false, so sft.path must name an SFT checkpoint")
    from mixmerge.merging.methods import expand_merges

    try:
        expand_merges(config["merges"])
    except ValueError as err:
        raise ConfigError(f"config key 'merges': {err}") from err
    if check_paths:
        check_local_paths(config, root)
    return config


def _check_domains(config: dict) -> None:
    from mixmerge.domains import domain_names

    known = domain_names()
    for i, name in enumerate(config["domains"]):
        if name not in known:
            raise ConfigError(f"config key 'domains[{i}]': unknown domain {name!r}; registered: {known}")
    missing = [d for d in config["domains"] if d not in config["grpo"]["steps"]]
    if missing:
        raise ConfigError(f"config key 'grpo.steps.{missing[0]}': no step count for domain {missing[0]!r}")
    extra = sorted(set(config["grpo"]["steps"]) - {*config["domains"], "mixed"})
    if extra:
        raise ConfigError(f"config key 'grpo.steps.{extra[0]}': {extra[0]!r} is not in 'domains'")
    subsets = config["data"].get("rl_blend", {}).get("subsets") or {}
    for subset, domain in subsets.items():
        if domain != "drop" and domain not in known:
            raise ConfigError(f"config key 'data.rl_blend.subsets.{subset}': unknown domain {domain!r}")


def _check_trainer_fields(config: dict) -> None:
    from mixmerge.training.trainer_args import TrainerFieldError, check_fields

    for kind in ("sft", "grpo", "opd"):
        try:
            check_fields(kind, config[kind]["trl"])
        except TrainerFieldError as err:
            raise ConfigError(str(err)) from None


def load(path: str | Path) -> dict:
    return validate(load_yaml(path))


def overlay(base: dict, changes: dict) -> dict:
    """A copy of ``base`` with ``changes`` merged in key by key (nested dicts merged, other values replaced)."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = overlay(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out
