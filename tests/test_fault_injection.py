"""Kill anywhere, lose nothing: real SIGKILLs in real jobs (the ``mixmerge`` command, through tests/fault_driver.py)
on the CI-sized tiny model, then a rerun.

- SFT and GRPO killed at a seeded random step after a checkpoint: the rerun resumes and its final model equals
  an uninterrupted run's, bitwise (training here is deterministic on CPU: one thread, fixed seeds).
- A corrupt or truncated newest checkpoint is skipped, with a line saying why, and training resumes from the
  one before.
- A merge and an eval cell killed mid-write: no output looks complete, and the rerun writes it whole.
- A full disk during a save: a clear error, and nothing complete-looking left behind (a real tiny tmpfs as
  root, a simulated ENOSPC otherwise).
"""
import copy
import errno
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mixmerge import atomic
from mixmerge.config import overlay

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "tests" / "fault_driver.py"
CONFIG = overlay(yaml.safe_load((ROOT / "config/config.yaml").read_text()),
                 yaml.safe_load((ROOT / "tests/ci_config.yaml").read_text()))
RNG = random.Random(16)  # the kill steps are random, and the same on every run of the suite
SFT_KILL = RNG.choice([5, 7])   # SFT saves every 2 of 8 steps: at least two checkpoints before the kill
GRPO_KILL = RNG.choice([2, 3])  # GRPO saves every step of 4


def mixmerge(fault: dict, *args: str, wait: bool = True):
    """``mixmerge ARGS`` with ``fault`` injected (tests/fault_driver.py); a CompletedProcess, or the Popen."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, str(DRIVER), json.dumps(fault), "--", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return finish(proc) if wait else proc


def finish(proc) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=240)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def tensors(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    import torch

    ta, tb = tensors(a), tensors(b)
    assert ta.keys() == tb.keys()
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A CI-sized base model and the math domain's rows."""
    from mixmerge.data.tiny import prepare_tiny, tokenizer_texts
    from mixmerge.training.base_model import build_base

    root = tmp_path_factory.mktemp("tiny")
    spec = CONFIG["base"]["tiny"]
    build_base(tokenizer_texts(["math"], spec["tokenizer_texts_per_domain"], 0), spec, 0, root / "base")
    prepare_tiny("math", 200, 6, 0, root / "data" / "math")
    return root


def sft_args(tiny: Path, run: Path) -> list:
    cfg = copy.deepcopy(CONFIG["sft"])
    cfg["trl"].update(save_steps=2, logging_steps=1, save_total_limit=None)
    return ["sft", "--base", tiny / "base", "--train", f"math={tiny / 'data/math/train.parquet'}",
            "--settings", json.dumps(cfg), "--seed", 0, "--threads", 1, "--out", run / "model",
            "--checkpoints", run / "checkpoints"]


def grpo_args(tiny: Path, start: Path, run: Path) -> list:
    cfg = {k: v for k, v in copy.deepcopy(CONFIG["grpo"]).items() if k != "steps"}
    cfg["trl"].update(save_steps=1, logging_steps=1)
    return ["grpo", "--node", "rl-math", "--model", start, "--train", f"math={tiny / 'data/math/train.parquet'}",
            "--settings", json.dumps(cfg), "--reward", json.dumps(CONFIG["reward"]), "--steps", 4, "--seed", 0,
            "--threads", 1, "--out", run / "model", "--checkpoints", run / "checkpoints"]


@pytest.fixture(scope="module")
def sft_runs(tiny, tmp_path_factory):
    """The uninterrupted SFT and the first, killed, attempt of the same run, side by side."""
    ref, faulty = tmp_path_factory.mktemp("sft-ref"), tmp_path_factory.mktemp("sft-faulty")
    procs = [mixmerge({}, *sft_args(tiny, ref), wait=False),
             mixmerge({"kill_at_step": SFT_KILL}, *sft_args(tiny, faulty), wait=False)]
    done, killed = (finish(p) for p in procs)
    assert done.returncode == 0, done.stderr[-3000:]
    return ref, faulty, killed


def test_sft_killed_after_a_checkpoint_resumes_to_the_same_model(tiny, sft_runs):
    ref, faulty, killed = sft_runs
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert not (faulty / "model").exists(), "a killed run left a complete-looking model"
    saved = sorted(int(p.name.split("-")[1]) for p in (faulty / "checkpoints").glob("checkpoint-*"))
    assert saved == [s for s in (2, 4, 6) if s < SFT_KILL]
    # The newest checkpoint is damaged too (a disk error while it was written): it must be skipped.
    newest = faulty / "checkpoints" / f"checkpoint-{saved[-1]}"
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    rerun = mixmerge({}, *sft_args(tiny, faulty))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"skipping checkpoint {newest}: model.safetensors:" in rerun.stderr and "truncated" in rerun.stderr
    assert f"resuming from {faulty / 'checkpoints' / f'checkpoint-{saved[-2]}'}" in rerun.stderr
    assert_same_weights(ref / "model", faulty / "model")
    assert json.loads((faulty / "model/mixmerge_card.json").read_text())["global_step"] == 8


@pytest.fixture(scope="module")
def grpo_runs(tiny, sft_runs, tmp_path_factory):
    start = sft_runs[0] / "model"
    ref, faulty = tmp_path_factory.mktemp("grpo-ref"), tmp_path_factory.mktemp("grpo-faulty")
    procs = [mixmerge({}, *grpo_args(tiny, start, ref), wait=False),
             mixmerge({"kill_at_step": GRPO_KILL}, *grpo_args(tiny, start, faulty), wait=False)]
    done, killed = (finish(p) for p in procs)
    assert done.returncode == 0, done.stderr[-3000:]
    return ref, faulty, killed


def test_grpo_killed_after_a_checkpoint_resumes_to_the_same_model(tiny, sft_runs, grpo_runs):
    ref, faulty, killed = grpo_runs
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert not (faulty / "model").exists()
    rerun = mixmerge({}, *grpo_args(tiny, sft_runs[0] / "model", faulty))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resuming from {faulty / 'checkpoints' / f'checkpoint-{GRPO_KILL - 1}'}" in rerun.stderr
    assert_same_weights(ref / "model", faulty / "model")


@pytest.mark.parametrize("nth", [1, 3])
def test_merge_killed_mid_write_never_looks_complete(tiny, sft_runs, grpo_runs, tmp_path, nth):
    out = tmp_path / "merge-average"
    args = ["merge", "--method", "average", "--base", tiny / "base", "--experts", sft_runs[0] / "model",
            grpo_runs[0] / "model", "--out", out]
    killed = mixmerge({"kill_on_open": [".partial", nth]}, *args)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert not out.exists(), "a killed merge left a complete-looking output"
    rerun = mixmerge({}, *args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert not atomic.partial_path(out).exists()
    assert {"config.json", "model.safetensors", "merge_record.json", "mergekit_config.yml"} <= set(os.listdir(out))
    assert len(tensors(out)) == len(tensors(tiny / "base"))


def test_eval_cell_killed_mid_write_is_redone(tiny, sft_runs, tmp_path):
    bench = {"domain": "math", "k": 2, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 12}
    out = tmp_path / "eval" / "sft"
    args = ["eval", "--model", sft_runs[0] / "model", "--node", "sft", "--benchmark", "math", "--bench",
            json.dumps(bench), "--data", tiny / "data/math/eval.parquet", "--eval-settings",
            json.dumps({"backend": "hf", "batch_size": 64, "seed": 0}), "--reward", json.dumps(CONFIG["reward"]),
            "--out-jsonl", out / "math.jsonl", "--out-json", out / "math.json"]
    killed = mixmerge({"kill_on_open": ["math.json.partial", 1]}, *args)  # records written, summary not
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert not (out / "math.json").exists(), "the cell's summary (its completion mark) exists after a kill"
    first = (out / "math.jsonl").read_text()
    rerun = mixmerge({}, *args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (out / "math.jsonl").read_text() == first  # the same records again (seeded sampling)
    assert json.loads((out / "math.json").read_text())["n"] == 6
    assert sorted(os.listdir(out)) == ["math.json", "math.jsonl"]


# ------------------------------------------------------------------------------------------- a full disk
class _FakeTrainer:
    """Enough of a Trainer for save_final, whose save_model fills the disk halfway through."""

    class state:
        global_step = 3
        log_history: list = []

    def save_model(self, path):
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "model.safetensors").write_bytes(b"x" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    def is_world_process_zero(self):
        return True


def test_full_disk_during_final_save_is_a_clear_error(tmp_path):
    from mixmerge.training.save_resume import save_final

    out = tmp_path / "model"
    with pytest.raises(atomic.DiskFullError, match=rf"no space left on device while writing {out} .*nothing was "
                                                   "written under that name"):
        save_final(_FakeTrainer(), None, out, {}, 0.0)
    assert os.listdir(tmp_path) == []


def test_full_disk_during_merge_and_eval_writes(tmp_path, monkeypatch):
    with pytest.raises(atomic.DiskFullError, match="merge-x"):
        with atomic.partial_dir(tmp_path / "merge-x") as out:
            (out / "model.safetensors").write_bytes(b"x")
            raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(atomic.DiskFullError, match="math.json"):
        atomic.write_text(tmp_path / "math.json", "{}")
    assert os.listdir(tmp_path) == []


FULL_DISK_SAVE = """
import sys
from pathlib import Path
from transformers import AutoModelForCausalLM, AutoTokenizer
from mixmerge.training.save_resume import save_final

model_dir, out = sys.argv[1], Path(sys.argv[2])
model, tokenizer = AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)

class Trainer:
    class state:
        global_step, log_history = 8, []
    def save_model(self, path):
        model.save_pretrained(path)
    def is_world_process_zero(self):
        return True

try:
    save_final(Trainer(), tokenizer, out, {}, 0.0)
except OSError as err:
    print(type(err).__name__, err)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="mounting a tiny tmpfs needs root")
def test_full_disk_on_a_real_tiny_file_system(tiny, tmp_path):
    """The final model saved onto a 64 KiB tmpfs (in a private mount namespace): safetensors' own I/O error."""
    disk = tmp_path / "disk"
    disk.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    script = f"mount -t tmpfs -o size=64k tmpfs {disk} && exec {sys.executable} -c \"$0\" \"$@\""
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, FULL_DISK_SAVE,
                          str(tiny / "base"), str(disk / "model")], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith(f"DiskFullError [Errno 28] no space left on device while writing {disk / 'model'} ("), \
        out.stdout


def _checkpoint(root: Path, step: int) -> Path:
    import torch
    from safetensors.torch import save_file

    ckpt = root / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    save_file({"w": torch.ones(64)}, str(ckpt / "model.safetensors"))
    torch.save({"state": torch.zeros(64)}, ckpt / "optimizer.pt")
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return ckpt


@pytest.mark.parametrize("damage, reason", [
    (lambda c: (c / "trainer_state.json").unlink(), "no trainer_state.json"),
    (lambda c: (c / "trainer_state.json").write_text('{"global_st'), "trainer_state.json is truncated"),
    (lambda c: (c / "optimizer.pt").write_bytes((c / "optimizer.pt").read_bytes()[:200]), "optimizer.pt: truncated"),
    (lambda c: (c / "model.safetensors").write_bytes(b"\x10"), "model.safetensors: shorter than its header"),
    (lambda c: (c / "model.safetensors").unlink(), "no model weights"),
])
def test_damaged_newest_checkpoint_is_skipped_with_a_line(tmp_path, capsys, damage, reason):
    from mixmerge.training.save_resume import last_checkpoint

    good = _checkpoint(tmp_path, 2)
    damage(_checkpoint(tmp_path, 4))
    assert last_checkpoint(tmp_path) == str(good)
    assert f"skipping checkpoint {tmp_path / 'checkpoint-4'}: {reason}" in capsys.readouterr().err


def test_full_disk_while_training_saves_a_checkpoint(tmp_path):
    from mixmerge.training.save_resume import train

    class Full:
        def train(self, resume_from_checkpoint=None):
            raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")

    class Broken:
        def train(self, resume_from_checkpoint=None):
            raise RuntimeError("shapes do not match")

    with pytest.raises(atomic.DiskFullError, match=rf"saved a checkpoint under {tmp_path}; the incomplete"):
        train(Full(), None, tmp_path)
    with pytest.raises(RuntimeError, match="shapes do not match"):
        train(Broken(), None, tmp_path)
