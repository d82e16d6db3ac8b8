"""Run one stage on its GPUs: ``python -m mixmerge.compute.launch --gpus N [--accelerate-config CFG] -- <stage> ...``.

* Locally, lease N concrete devices (``mixmerge.compute.gpu_lease``) and set ``CUDA_VISIBLE_DEVICES`` to them, so
  concurrent jobs never share a GPU; a job configured for 0 GPUs gets none (``CUDA_VISIBLE_DEVICES=""``).
  Under SLURM (``SLURM_JOB_ID`` set) the scheduler already isolates the job's GPUs: no lease.
* With N > 1 and an accelerate config, the stage runs under ``accelerate launch`` with N processes (DeepSpeed
  ZeRO configs ship in ``config/accelerate/``); otherwise as one plain ``python -m mixmerge`` process.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

from mixmerge.compute import gpu_lease


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
        wait_s: float) -> int:
    asked = time.monotonic()
    env, devices = device_env(n_gpus, dict(os.environ), lease_dir, job, wait_s)
    env[LEASE_WAIT_ENV] = f"{time.monotonic() - asked:.3f}"
    env.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")  # vLLM inside a Python process that used CUDA
    cmd = build_command(n_gpus, stage_args, accelerate_config)
    print(f"[launch] job {job!r}: CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', '<unset>')} "
          f"(slurm={under_slurm(env)}): {' '.join(cmd)}", file=sys.stderr, flush=True)
    try:
        child = subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent)

        def forward(signum, _frame):
            child.send_signal(signum)

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, forward)
        return child.wait()
    finally:
        if devices:
            gpu_lease.release(devices, lease_dir)


def _die_with_parent() -> None:
    """In the child: get SIGTERM when this wrapper dies, so a GPU is never used after its lease is gone."""
    import ctypes

    pr_set_pdeathsig = 1
    if ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mixmerge.compute.launch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpus", type=int, required=True, help="GPUs this job uses (the rule's resources.gpu)")
    p.add_argument("--accelerate-config", help="accelerate/DeepSpeed config for multi-GPU training")
    p.add_argument("--lease-dir", default=gpu_lease.DEFAULT_DIR)
    p.add_argument("--lease-wait-s", type=float, default=600.0)
    p.add_argument("--job", default="", help="a name for logs and the lease records")
    p.add_argument("stage_args", nargs=argparse.REMAINDER, help="-- <stage> <stage arguments>")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    stage_args = args.stage_args[1:] if args.stage_args[:1] == ["--"] else args.stage_args
    if not stage_args:
        raise SystemExit("no stage given: python -m mixmerge.compute.launch --gpus N -- <stage> ...")
    return run(args.gpus, stage_args, args.accelerate_config, args.lease_dir, args.job or stage_args[0],
               args.lease_wait_s)


if __name__ == "__main__":
    sys.exit(main())
