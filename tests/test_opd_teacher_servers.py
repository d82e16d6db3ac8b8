"""Teachers behind servers (``opd.teachers.backend: vllm_server``), on CPU: ``tests/fake_teacher_server.py`` stands
in for ``vllm serve`` and answers ``prompt_logprobs`` from the tiny experts of the opd tests. The servers' log-probs
equal the in-process teacher's, the study loss through the servers equals the local-teacher run's, a teacher that
exits or never becomes healthy fails fast naming its domain, command, port and log, no server process outlives its
job (success, failure, SIGTERM), and the launcher splits the job's GPUs between the teachers and training."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mixmerge.cli import main as mixmerge
from mixmerge.compute import launch
from mixmerge.compute.teacher_servers import URLS_ENV, TeacherServerError, TeacherServers, split_devices
from mixmerge.report.curves import event_scalars
from mixmerge.training.opd_loss import token_logps
from test_opd_run import DOMAINS, settings, tiny  # noqa: F401 (tiny: the student and the experts, a fixture)

FAKE = str(Path(__file__).with_name("fake_teacher_server.py"))
PY = sys.executable
SRC = str(Path(__file__).resolve().parents[1] / "src")


def fake(*serve_args, timeout=600, command=(PY, FAKE)) -> dict:
    return {"backend": "vllm_server", "serve_command": list(command), "serve_args": list(serve_args),
            "start_timeout_s": timeout}


def on_cpu(domains) -> dict:
    return {d: [] for d in domains}


def gone(pid: int) -> bool:
    """No process is left in the group the server led."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def served(tiny):  # noqa: F811
    models = {d: str(tiny / f"rl-{d}") for d in DOMAINS}
    with TeacherServers(models, fake(), tiny / "teacher-logs", on_cpu(DOMAINS)) as servers:
        yield servers
    assert all(gone(s.process.pid) for s in servers.servers)


def padded_batch(vocab: int):
    """Three rows: left-padded prompts, completions whose masks are prefixes of 5, 3 and 1 tokens."""
    generator = torch.Generator().manual_seed(0)
    prompt_ids = torch.randint(5, vocab, (3, 6), generator=generator)
    prompt_mask = torch.ones_like(prompt_ids)
    prompt_mask[1, :2] = 0
    prompt_mask[2, :4] = 0
    completion_ids = torch.randint(5, vocab, (3, 5), generator=generator)
    completion_mask = (torch.arange(5) < torch.tensor([[5], [3], [1]])).long()
    return (prompt_ids * prompt_mask, prompt_mask, completion_ids * completion_mask, completion_mask)


def test_server_logps_equal_the_in_process_teachers(tiny, served):  # noqa: F811
    from transformers import AutoModelForCausalLM

    from mixmerge.training.teacher_client import TeacherClient

    for domain in DOMAINS:
        model = AutoModelForCausalLM.from_pretrained(tiny / f"rl-{domain}", dtype="float32")
        prompt_ids, prompt_mask, completion_ids, mask = padded_batch(model.config.vocab_size)
        got = TeacherClient(served.urls[domain], domain).completion_logps(prompt_ids, prompt_mask, completion_ids,
                                                                         mask, temperature=0.7)
        with torch.no_grad():
            logits = model(input_ids=torch.cat([prompt_ids, completion_ids], 1),
                           attention_mask=torch.cat([prompt_mask, mask], 1)).logits[:, prompt_ids.size(1) - 1:-1]
        expected = token_logps(logits, completion_ids, temperature=0.7) * mask
        assert got.shape == expected.shape and got[mask == 0].eq(0).all()
        assert torch.allclose(got, expected, atol=1e-4), (domain, (got - expected).abs().max())
        assert (got[mask == 1] < 0).all()


def run_opd(root: Path, name: str, backend: str) -> dict:
    cfg = json.loads(settings("study", 1))
    cfg["teachers"] = {"backend": backend}
    mixmerge(["opd", "--node", "opd", "--model", str(root / "sft"),
              "--teachers", *(f"{d}={root / f'rl-{d}'}" for d in DOMAINS),
              "--train", *(f"{d}={root / d / 'train.parquet'}" for d in DOMAINS),
              "--settings", json.dumps(cfg), "--threads", "2", "--out", str(root / name),
              "--checkpoints", str(root / f"ckpt-{name}"), "--tensorboard", str(root / f"logs/tensorboard/{name}")])
    frame = event_scalars(root / f"logs/tensorboard/{name}")
    return dict(zip(frame["tag"], frame["value"]))


def test_study_loss_through_servers_equals_the_local_teachers_loss(tiny, served, monkeypatch):  # noqa: F811
    local = run_opd(tiny, "local-1", "local")
    monkeypatch.setenv(URLS_ENV, json.dumps(served.urls))
    remote = run_opd(tiny, "served-1", "vllm_server")
    assert remote["train/loss"] == pytest.approx(local["train/loss"], abs=1e-5)
    assert remote["train/entropy"] == pytest.approx(local["train/entropy"], rel=1e-4)
    for domain in DOMAINS:
        tag = f"train/opd/advantage/{domain}"
        assert remote[tag] == pytest.approx(local[tag], abs=1e-4) and local[tag] != 0
        assert f"train/opd/reverse_kl/{domain}" in local and f"train/opd/reverse_kl/{domain}" not in remote


def test_served_teachers_need_their_urls(tiny, monkeypatch):  # noqa: F811
    from mixmerge.config_checks import ConfigError

    monkeypatch.delenv(URLS_ENV, raising=False)
    with pytest.raises(ConfigError, match="no teacher server of domain 'math' was started"):
        run_opd(tiny, "no-urls", "vllm_server")


@pytest.mark.parametrize("code, reason, timeout", [
    ("import sys; print('cannot load the weights', flush=True); sys.exit(3)", "exited with code 3", 30),
    ("import time; print('loading the weights', flush=True); time.sleep(60)",
     r"did not answer GET http://127\.0\.0\.1:18123/health within 1 s", 1),
])
def test_a_teacher_that_does_not_come_up_fails_fast_naming_it(tmp_path, code, reason, timeout):
    settings_ = {**fake(timeout=timeout, command=(PY, "-c", code)), "port_base": 18123}
    servers = TeacherServers({"math": "/models/rl-math", "code": "/models/rl-code"}, settings_, tmp_path,
                             on_cpu(["math", "code"]))
    started = time.monotonic()
    with pytest.raises(TeacherServerError, match=reason) as failure:
        with servers:
            pytest.fail("the block ran without its teachers")
    assert time.monotonic() - started < timeout + 5
    message = str(failure.value)
    assert message.startswith("teacher server of domain 'code'")   # the first in domain order
    assert "/models/rl-code --host 127.0.0.1 --port 18123" in message and "port: 18123" in message
    assert f"log: {tmp_path / 'code.log'}" in message and "the weights" in message.splitlines()[-1]
    assert all(gone(s.process.pid) for s in servers.servers)


def test_devices_split_teachers_first_and_training_needs_one():
    teachers, training = split_devices(list("01234567"), ["math", "code", "science", "instruct"], 1)
    assert teachers == {"code": ["0"], "instruct": ["1"], "math": ["2"], "science": ["3"]}
    assert training == list("4567")
    teachers, training = split_devices(list("012345"), ["math", "code"], 2)
    assert teachers == {"code": ["0", "1"], "math": ["2", "3"]} and training == ["4", "5"]
    with pytest.raises(TeacherServerError, match=r"opd.teachers.gpus_per_teacher': 4 teachers x 1 GPU\(s\) = 4"):
        split_devices(list("0123"), ["math", "code", "science", "instruct"], 1)


@pytest.fixture
def restore_signals():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_launcher_serves_teachers_on_their_gpus_and_runs_the_stage_on_the_rest(tmp_path, monkeypatch, capfd,
                                                                               restore_signals):
    show = "import os; print('STAGE', os.environ['CUDA_VISIBLE_DEVICES'], os.environ['MIXMERGE_TEACHER_URLS'])"
    monkeypatch.setattr(launch, "build_command", lambda n, args, cfg: [PY, "-c", f"{show}; print('PROCS', {n})"])
    monkeypatch.setenv("MIXMERGE_GPU_POOL", "5")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    spec = {"models": {"math": "/m/rl-math", "code": "/m/rl-code"}, "settings": fake("--health-only"),
            "log_dir": str(tmp_path / "teachers")}
    assert launch.main(["--gpus", "3", "--lease-dir", str(tmp_path / "leases"), "--job", "opd",
                        "--teacher-servers", json.dumps(spec), "--", "opd"]) == 0
    out = capfd.readouterr().out
    stage = next(line for line in out.splitlines() if line.startswith("STAGE"))
    devices, urls = stage.split(" ", 2)[1:]
    assert devices == "2" and "PROCS 1" in out and sorted(json.loads(urls)) == ["code", "math"]
    for domain, device in (("code", "0"), ("math", "1")):
        log = (tmp_path / "teachers" / f"{domain}.log").read_text()
        assert f"serving /m/rl-{domain}" in log and f"CUDA_VISIBLE_DEVICES={device}" in log
        assert gone(int(log.split("pid ")[1].split()[0]))
    assert json.loads((tmp_path / "leases" / "leases.json").read_text() or "{}") == {}


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGKILL, -signal.SIGKILL)])
def test_teachers_starting_are_stopped_when_the_job_is_terminated_or_killed(tmp_path, sig, code):
    hang = "import os, time; print('pid', os.getpid(), flush=True); time.sleep(120)"
    spec = {"models": {"math": "/m/rl-math", "code": "/m/rl-code"}, "settings": fake(command=(PY, "-c", hang)),
            "log_dir": str(tmp_path)}
    env = {**os.environ, "PYTHONPATH": SRC, "MIXMERGE_GPU_POOL": "3"}
    env.pop("SLURM_JOB_ID", None)
    job = subprocess.Popen([PY, "-m", "mixmerge.compute.launch", "--gpus", "3", "--lease-dir", str(tmp_path / "l"),
                            "--teacher-servers", json.dumps(spec), "--", "opd"], env=env)
    logs = [tmp_path / f"{d}.log" for d in ("code", "math")]
    deadline = time.monotonic() + 300
    while not all(p.exists() and "pid" in p.read_text() for p in logs):
        assert time.monotonic() < deadline and job.poll() is None, "the teachers never started"
        time.sleep(0.2)
    job.send_signal(sig)
    assert job.wait(timeout=120) == code
    pids = [int(log.read_text().split()[1]) for log in logs]
    deadline = time.monotonic() + 60   # after SIGKILL the teachers get SIGTERM from the kernel (PDEATHSIG)
    while not all(gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(gone(pid) for pid in pids)


def test_a_teacher_dying_during_training_stops_the_stage(tmp_path, restore_signals):
    stage = f"import os, time; open({str(tmp_path / 'stage.pid')!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    with TeacherServers({"math": "/m/rl-math"}, fake("--health-only"), tmp_path, on_cpu(["math"])) as servers:
        servers.servers[0].process.kill()
        started = time.monotonic()
        with pytest.raises(TeacherServerError, match=r"teacher server of domain 'math' exited with code -9"):
            launch.run_stage([PY, "-c", stage], dict(os.environ), "opd", watch=servers.check_running,
                             watch_every_s=1.0)
        assert time.monotonic() - started < 10
    with pytest.raises(ProcessLookupError):   # the stage was stopped (and reaped) before the error came out
        os.kill(int((tmp_path / "stage.pid").read_text()), 0)


def test_configs_say_where_the_teachers_run_and_bad_settings_are_named(tmp_path):
    import copy

    import yaml

    from mixmerge.check_config import _opd_line, _without_gpu_only
    from mixmerge.config import ConfigError, validate

    root = Path(__file__).resolve().parents[1]
    assert yaml.safe_load((root / "config/config.yaml").read_text())["opd"]["teachers"] == {"backend": "local"}
    paper = yaml.safe_load((root / "config/paper.yaml").read_text())
    assert paper["opd"]["teachers"]["backend"] == "vllm_server" and paper["gpus"]["opd"] == 8
    validate(paper, check_paths=False)
    line = _opd_line(_without_gpu_only(paper, []), str(tmp_path))
    assert "on vLLM servers (4 of the job's 8 GPUs)" in line and "over 4 process(es)" in line
    edits = [(("opd", "loss"), "full_reverse_kl", r"'opd.loss': full_reverse_kl needs each teacher's whole"),
             (("gpus", "opd"), 4, r"'gpus.opd': 4 GPU\(s\) cannot hold 4 teacher servers x 1 GPU\(s\).* at least 5"),
             (("opd", "teachers", "gpus_per_teachers"), 2, r"'opd.teachers.gpus_per_teachers'"),
             (("opd", "teachers", "backend"), "vllm", r"'opd.teachers.backend'")]
    for (*parents, key), value, message in edits:
        bad = copy.deepcopy(paper)
        block = bad
        for name in parents:
            block = block[name]
        block[key] = value
        with pytest.raises(ConfigError, match=message):
            validate(bad, check_paths=False)


def test_paper_dry_run_serves_each_opd_nodes_own_experts(workflow_copy):
    import re
    import shlex

    import yaml

    from workflow_copy import run_snakemake

    paper = yaml.safe_load((workflow_copy / "config/paper.yaml").read_text())
    blend = workflow_copy / paper["data"]["rl_blend"]["source"]["path"]   # the study's hand-made file: a stand-in
    blend.parent.mkdir(parents=True, exist_ok=True)
    blend.touch()
    out = run_snakemake(workflow_copy, "-n", "-p", "--configfile", "config/paper.yaml", timeout=300)
    text = out.stdout + out.stderr
    match = re.search(r"mixmerge\.compute\.launch (--gpus .*?) -- opd --node opd ", text)
    assert match, "no opd launcher line in the dry run"
    args = shlex.split(match.group(1))
    assert args[:4] == ["--gpus", str(paper["gpus"]["opd"]), "--job", "opd"]
    spec = json.loads(args[args.index("--teacher-servers") + 1])
    assert spec == {"models": {d: f"results/models/rl-{d}" for d in paper["domains"]},
                    "settings": paper["opd"]["teachers"], "log_dir": "logs/opd/opd.teachers"}
    assert re.search(r"rule opd:\n(?:.*\n)*?\s+resources: .*gpu=8", text)
