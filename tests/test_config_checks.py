"""Config checks before any job: strict YAML (duplicate keys, syntax errors, with the line), the sandbox settings,
merges with too few experts, and local paths that must exist (a hub id is noted as one to fetch). Each message
names the key, the file or the line."""
import copy
import logging
from pathlib import Path

import pytest
import yaml

from mixmerge.check_config import load_layers, main as check_config_main
from mixmerge.config import ConfigError, load_yaml, validate
from workflow_copy import run_snakemake

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def test_duplicate_key_names_the_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("seed: 0\nreward:\n  max_tests: 20\n  test_seed: 0\n  max_tests: 5\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml: line 5, column 3: duplicate key 'max_tests' "
                                          r"\(first defined on line 3\)"):
        load_yaml(path)
    with pytest.raises(ConfigError, match="line 5"):
        load_layers([str(path)])
    assert check_config_main([str(path)]) == 1


def test_same_key_in_different_mappings_is_fine(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("a: {k: 1}\nb: {k: 2}\n")
    assert load_yaml(path) == {"a": {"k": 1}, "b": {"k": 2}}


@pytest.mark.parametrize("text, where", [
    ("seed: 0\nreward: {max_tests: 20\n", "line 3"),
    ("seed: 0\n  threads: 2\n", "line 2"),
    ("- a\n- b\n", "expected a mapping"),
])
def test_yaml_syntax_error_names_file_and_line(tmp_path, text, where):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"bad\.yaml: .*{where}"):
        load_yaml(path)


def _edited(edit) -> dict:
    config = copy.deepcopy(DEFAULT)
    edit(config)
    return config


@pytest.mark.parametrize("edit, key", [
    (lambda c: c["reward"].update(sandbox_backend="fusion", fusion_url=None), "reward.fusion_url"),
    (lambda c: c["reward"].update(sandbox_limits={"memory_mb": 1}), "reward.sandbox_limits.memory_mb"),
    (lambda c: c["reward"].update(sandbox_limits={"cpu_s": 0.0001}), "reward.sandbox_limits.cpu_s"),
    (lambda c: c["reward"].update(sandbox_limits={"wall_s": 0.01}), "reward.sandbox_limits.wall_s"),
    (lambda c: c["reward"].update(sandbox_backend="audit"), "reward.sandbox_backend"),
    (lambda c: c.update(domains=["math"], grpo={**c["grpo"], "steps": {"math": 1, "mixed": 1}},
                        benchmarks={"math": c["benchmarks"]["math"]}), "merges.average"),
])
def test_bad_settings_are_named(edit, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(_edited(edit))


def test_unsafe_local_is_allowed_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        validate(_edited(lambda c: c["reward"].update(sandbox_backend="unsafe_local")))
    assert "no isolation" in caplog.text


@pytest.mark.parametrize("edit, key", [
    (lambda c: c["sft"].update(enabled=False, path="results/checkpoints/no-such-sft"), "sft.path"),
    (lambda c: c["sft"].update(enabled=False, path="./no-such-sft"), "sft.path"),
    (lambda c: c["sft"].update(enabled=False, path="/no/such/sft"), "sft.path"),
    (lambda c: c["base"].update(source="./models/no-such-base"), "base.source"),
    (lambda c: c["benchmarks"]["math"].update(loader="aime", source={"path": "/no/such/aime.jsonl"}),
     "benchmarks.math.source.path"),
])
def test_missing_local_paths_are_named(edit, key):
    with pytest.raises(ConfigError, match=rf"config key '{key}': .* does not exist"):
        validate(_edited(edit))
    validate(_edited(edit), check_paths=False)


def test_hub_ids_are_noted_as_fetched(caplog, tmp_path):
    config = _edited(lambda c: c["sft"].update(enabled=False, path="Jackwang111/M2RL-SFT"))
    with caplog.at_level(logging.INFO):
        validate(config)
    assert "sft.path: 'Jackwang111/M2RL-SFT' is not a local path; it will be fetched" in caplog.text
    (tmp_path / "Jackwang111" / "M2RL-SFT").mkdir(parents=True)  # a local directory of that name wins
    caplog.clear()
    with caplog.at_level(logging.INFO):
        validate(config, root=tmp_path)
    assert "fetched" not in caplog.text


def test_snakefile_refuses_a_duplicate_key_before_any_job(workflow_copy):
    text = (workflow_copy / "config/config.yaml").read_text()
    (workflow_copy / "dup.yaml").write_text(text + "\nthreads: 4\n")
    out = run_snakemake(workflow_copy, "-n", "--configfile", "dup.yaml", timeout=60, check=False)
    assert out.returncode != 0
    dup_line = text.count("\n") + 2 + (not text.endswith("\n"))
    first = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("threads:"))
    assert (f"dup.yaml: line {dup_line}, column 1: duplicate key 'threads' (first defined on line {first})"
            in out.stdout + out.stderr)
    missing = yaml.safe_load(text)
    missing["sft"].update(enabled=False, path="no/such/dir/sft")
    (workflow_copy / "missing.yaml").write_text(yaml.safe_dump(missing))
    # a dry run plans without the data and warns; check-config refuses it
    out = run_snakemake(workflow_copy, "-n", "--configfile", "missing.yaml", timeout=60, check=False)
    assert "WARNING" in out.stderr and "config key 'sft.path'" in out.stderr
    hub = yaml.safe_load(text)
    hub["sft"].update(enabled=False, path="Jackwang111/M2RL-SFT")
    (workflow_copy / "hub.yaml").write_text(yaml.safe_dump(hub))
    out = run_snakemake(workflow_copy, "-n", "--configfile", "hub.yaml", timeout=60)
    assert "mixmerge: sft.path: 'Jackwang111/M2RL-SFT' is not a local path; it will be fetched" in out.stderr
