import copy
from pathlib import Path

import pytest
import yaml

from mixmerge.config import ConfigError, validate
from workflow_copy import run_snakemake

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def test_default_config_is_valid():
    validate(copy.deepcopy(DEFAULT))


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda c: c.update(unknown_key=1), "unknown_key"),
        (lambda c: c["grpo"]["trl"].update(lerning_rate=1e-3), "grpo.trl.lerning_rate"),
        (lambda c: c["grpo"].update(learning_rate=1e-3), "grpo.learning_rate"),
        (lambda c: c.update(domains=["math", "poetry"]), "domains[1]"),
        (lambda c: c["grpo"]["steps"].update(math=-5), "grpo.steps.math"),
        (lambda c: c["sft"]["trl"].update(warmup_ratio=0.1), "sft.trl.warmup_ratio"),
        (lambda c: c["merges"].update(bad={"method": "frankenmerge"}), "merges.bad.method"),
        (lambda c: c["merges"].update(t={"method": "ties", "params": {"dnsity": 0.2}}), "merges"),
        (lambda c: c["benchmarks"]["math"].update(domain="chemistry"), "benchmarks.math.domain"),
        (lambda c: c["grpo"]["steps"].update(poetry=5), "grpo.steps.poetry"),
    ],
)
def test_bad_config_names_the_key(edit, key):
    config = copy.deepcopy(DEFAULT)
    edit(config)
    with pytest.raises(ConfigError) as err:
        validate(config)
    assert f"'{key}" in str(err.value)


def test_missing_step_count_for_a_domain():
    config = copy.deepcopy(DEFAULT)
    del config["grpo"]["steps"]["code"]
    with pytest.raises(ConfigError, match="grpo.steps.code"):
        validate(config)


def test_snakemake_stops_before_any_job(tmp_path, workflow_copy):
    config = copy.deepcopy(DEFAULT)
    config["grpo"]["steps"]["math"] = -3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = run_snakemake(workflow_copy, "--cores", "1", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    assert "grpo.steps.math" in proc.stdout + proc.stderr
    assert not (workflow_copy / "results").exists()  # stopped before any job
