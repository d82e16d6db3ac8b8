"""Run one stage on its GPUs: ``python -m mixmerge.compute.launch --gpus N [--accelerate-config CFG] -- <stage> ...``.

* Locally, lease N concrete devices (``mixmerge.compute.gpu_lease``) and set ``CUDA_VISIBLE_DEVICES`` to them, so
  concurrent jobs never share a GPU; a job configured for 0 GPUs gets none (``CUDA_VISIBLE_DEVICES=""``).
  Under SLURM (``SLURM_JOB_ID`` set) the scheduler already isolates the job's GPUs: no lease.
* With N > 1 and an accelerate config, the stage runs under ``accelerate launch`` with N processes (DeepSpeed
  ZeRO configs ship in ``config/accelerate/``); otherwise as one plain ``python -m mixmerge`` process.
* With ``--teacher-servers`` (opd, ``opd.teachers.backend: vllm_server``), the first of the job's devices serve the
  teachers (``mixmerge.compute.teacher_servers``) while the stage runs on the rest with their URLs in
  ``MIXMERGE_TEACHER_URLS``; a teacher that does not come up, or exits, ends the job with a message naming it.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

from mixmerge.compute import gpu_lease, teacher_servers


def free_port() -> int:
    """A TCP port free right now, for torch.distributed's rendezvous (two jobs on a node must not share 29500)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_command(n_gpus: int, stage_args: list[str], accelerate_config: str | None = None,
                  python: str = sys.executable, port: int | None = None) -> list[str]:
    """The argv that runs ``mixmerge <stage_args>`` on ``n_gpus`` devices."""
    if n_gpus <= 1 or accelerate_config is None:
        return [python, "-m", "mixmerge", *stage_args]
    return [python, "-m", "accelerate.commands.launch",
            "--config_file", accelerate_config,
            "--num_processes", str(n_gpus),
            "--num_machines", "1",
            "--machine_rank", "0",
            "--main_process_port", str(free_port() if port is None else port),
            "-m", "mixmerge", *stage_args]


def under_slurm(env: dict) -> bool:
    return "SLURM_JOB_ID" in env


def device_env(n_gpus: int, env: dict, lease_dir: str, job: str, wait_s: float) -> tuple[dict, list[str]]:
    """The child's environment and the devices leased for it (empty when nothing was leased)."""
    env = dict(env)
    if under_slurm(env):
        return env, []
    if n_gpus == 0:
        env["CUDA_VISIBLE_DEVICES"] = ""
        return env, []
    devices = gpu_lease.acquire(n_gpus, gpu_lease.device_pool(env), lease_dir, job=job, wait_s=wait_s)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    return env, devices


LEASE_WAIT_ENV = "MIXMERGE_LEASE_WAIT_S"  # the stage records it apart from its own wall time (training.attempts)


def run(n_gpus: int, stage_args: list[str], accelerate_config: str | None, lease_dir: str, job: str,
        wait_s: float, teacher_servers_spec: dict | None = None) -> int:
    asked = time.monotonic()
    env, devices = device_env(n_gpus, dict(os.environ), lease_dir, job, wait_s)
    env[LEASE_WAIT_ENV] = f"{time.monotonic() - asked:.3f}"
    env.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")  # vLLM inside a Python process that used CUDA
    try:
        if teacher_servers_spec is None:
            return run_stage(build_command(n_gpus, stage_args, accelerate_config), env, job)
        return run_with_teachers(teacher_servers_spec, stage_args, accelerate_config, env, job)
    finally:
        if devices:
            gpu_lease.release(devices, lease_dir)


def job_devices(env: dict) -> list[str]:
    """The devices this job may use: those leased (or given by SLURM) in ``CUDA_VISIBLE_DEVICES``, else the pool."""
    visible = env.get("CUDA_VISIBLE_DEVICES")
    return [d.strip() for d in visible.split(",") if d.strip()] if visible is not None else gpu_lease.device_pool(env)


def run_with_teachers(spec: dict, stage_args: list[str], accelerate_config: str | None, env: dict, job: str) -> int:
    """Start the teacher servers of ``spec`` ({"models": domain -> model dir, "settings": opd.teachers, "log_dir"})
    on the first of the job's devices, then the stage on the rest, with the servers' URLs in
    ``MIXMERGE_TEACHER_URLS``; the servers stop when the stage ends (or when one of them exits)."""
    settings = teacher_servers.settings_with_defaults(spec["settings"])
    teacher_devices, training = teacher_servers.split_devices(job_devices(env), sorted(spec["models"]),
                                                              settings["gpus_per_teacher"])
    print(f"[launch] job {job!r}: teacher servers on {teacher_devices}, logs in {spec['log_dir']}", file=sys.stderr,
          flush=True)
    with teacher_servers.TeacherServers(spec["models"], settings, spec["log_dir"], teacher_devices, env) as servers:
        child_env = {**env, "CUDA_VISIBLE_DEVICES": ",".join(training),
                     teacher_servers.URLS_ENV: json.dumps(servers.urls)}
        return run_stage(build_command(len(training), stage_args, accelerate_config), child_env, job,
                         watch=servers.check_running)


def run_stage(cmd: list[str], env: dict, job: str, watch=None, watch_every_s: float = 5.0) -> int:
    """Run ``cmd`` to its end, forwarding SIGTERM/SIGINT to it; ``watch()`` (if given) is called every
    ``watch_every_s``, and an exception from it stops the stage and propagates."""
    print(f"[launch] job {job!r}: CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', '<unset>')} "
          f"(slurm={under_slurm(env)}): {' '.join(cmd)}", file=sys.stderr, flush=True)
    child = subprocess.Popen(cmd, env=env, preexec_fn=teacher_servers.die_with_parent)

    def forward(signum, _frame):
        child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    while True:
        try:
            return child.wait(timeout=watch_every_s if watch else None)
        except subprocess.TimeoutExpired:
            pass
        try:
            watch()
        except BaseException:
            child.terminate()
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            raise


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mixmerge.compute.launch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpus", type=int, required=True, help="GPUs this job uses (the rule's resources.gpu)")
    p.add_argument("--accelerate-config", help="accelerate/DeepSpeed config for multi-GPU training")
    p.add_argument("--lease-dir", default=gpu_lease.DEFAULT_DIR)
    p.add_argument("--lease-wait-s", type=float, default=600.0)
    p.add_argument("--job", default="", help="a name for logs and the lease records")
    p.add_argument("--teacher-servers", type=json.loads, help="JSON {models: {domain: model dir}, settings: "
                   "opd.teachers, log_dir}: serve each teacher on its own GPUs while the stage runs on the rest")
    p.add_argument("stage_args", nargs=argparse.REMAINDER, help="-- <stage> <stage arguments>")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    stage_args = args.stage_args[1:] if args.stage_args[:1] == ["--"] else args.stage_args
    if not stage_args:
        raise SystemExit("no stage given: python -m mixmerge.compute.launch --gpus N -- <stage> ...")
    try:
        return run(args.gpus, stage_args, args.accelerate_config, args.lease_dir, args.job or stage_args[0],
                   args.lease_wait_s, args.teacher_servers)
    except teacher_servers.TeacherServerError as err:
        print(f"[launch] job {args.job or stage_args[0]!r}: {err}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
