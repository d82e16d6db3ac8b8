"""GPU leases with a simulated device pool: no two live jobs share an id; a dead job's ids come back."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mixmerge.compute import gpu_lease
from mixmerge.compute import launch

SRC = str(Path(__file__).resolve().parents[1] / "src")

# A stand-in job: runs the real launcher with the stage command swapped for a child that records the
# CUDA_VISIBLE_DEVICES it was given, then sleeps (so leases overlap in time) or waits to be killed.
JOB = textwrap.dedent("""
    import sys
    from mixmerge.compute import launch
    out, sleep_s, gpus = sys.argv[1], sys.argv[2], sys.argv[3]
    child = ("import os, sys, time; open(sys.argv[1], 'w').write(os.environ['CUDA_VISIBLE_DEVICES'] + ' ' + "
             "str(os.getpid())); time.sleep(float(sys.argv[2]))")
    launch.build_command = lambda n, args, cfg=None: [sys.executable, "-c", child, out, sleep_s]
    sys.exit(launch.main(["--gpus", gpus, "--lease-dir", sys.argv[4], "--lease-wait-s", "30", "--", "fake"]))
""")


def start_job(tmp_path, name, gpus, sleep_s, pool):
    env = {**os.environ, "PYTHONPATH": SRC, "MIXMERGE_GPU_POOL": pool}
    env.pop("SLURM_JOB_ID", None)
    out = tmp_path / f"{name}.txt"
    proc = subprocess.Popen([sys.executable, "-c", JOB, str(out), str(sleep_s), str(gpus), str(tmp_path / "leases")],
                            env=env)
    return proc, out


def wait_for(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.05)
    devices, pid = path.read_text().split(" ")
    return devices.split(","), int(pid)


def test_concurrent_jobs_get_disjoint_devices(tmp_path):
    jobs = [start_job(tmp_path, f"job{i}", 2, 2.0, "8") for i in range(4)]
    seen = [wait_for(out)[0] for _, out in jobs]
    assert all(proc.wait(timeout=60) == 0 for proc, _ in jobs)
    flat = [d for devices in seen for d in devices]
    assert all(len(devices) == 2 for devices in seen)
    assert sorted(flat) == [str(i) for i in range(8)]  # 4 jobs x 2 GPUs: every id once
    assert gpu_lease.live_leases(tmp_path / "leases") == {}  # all released on exit


def test_job_waits_until_a_gpu_is_free(tmp_path):
    first, first_out = start_job(tmp_path, "first", 1, 1.5, "1")
    assert wait_for(first_out)[0] == ["0"]
    second, second_out = start_job(tmp_path, "second", 1, 0.0, "1")
    time.sleep(0.5)
    assert not second_out.exists()  # device 0 still leased to the first job
    assert first.wait(timeout=30) == 0 and second.wait(timeout=30) == 0
    assert wait_for(second_out)[0] == ["0"]


def test_crashed_job_gives_its_devices_back(tmp_path):
    proc, out = start_job(tmp_path, "victim", 2, 600, "2")
    devices, child_pid = wait_for(out)
    assert sorted(devices) == ["0", "1"]
    with pytest.raises(gpu_lease.LeaseError, match="not free"):
        gpu_lease.acquire(1, ["0", "1"], tmp_path / "leases", wait_s=0)
    proc.send_signal(signal.SIGKILL)  # the launcher dies without releasing anything
    proc.wait(timeout=10)
    taken = gpu_lease.acquire(2, ["0", "1"], tmp_path / "leases", wait_s=5, poll_s=0.1)
    assert sorted(taken) == ["0", "1"]
    deadline = time.monotonic() + 10  # and the orphaned child was told to stop (PR_SET_PDEATHSIG)
    while gpu_lease.process_start(child_pid) is not None:
        assert time.monotonic() < deadline, "child outlived its launcher"
        time.sleep(0.05)


def test_reused_pid_is_not_a_live_holder(tmp_path):
    lease_dir = tmp_path / "leases"
    lease_dir.mkdir()
    me = {"pid": os.getpid(), "start": gpu_lease.process_start(os.getpid()), "job": "me", "since": 0}
    impostor = {**me, "start": "1", "job": "old job whose pid was reused"}
    (lease_dir / "leases.json").write_text(json.dumps({"0": impostor, "1": me}))
    assert gpu_lease.try_acquire(1, ["0", "1"], lease_dir, os.getpid(), "new") == ["0"]
    assert gpu_lease.try_acquire(1, ["0", "1"], lease_dir, os.getpid(), "new") is None


def test_release_only_touches_own_leases(tmp_path):
    lease_dir = tmp_path / "leases"
    mine = gpu_lease.acquire(1, ["0", "1"], lease_dir, job="mine")
    gpu_lease.release(mine, lease_dir, pid=os.getppid())  # someone else's release: no effect
    assert set(gpu_lease.live_leases(lease_dir)) == set(mine)
    gpu_lease.release(mine, lease_dir)
    assert gpu_lease.live_leases(lease_dir) == {}


def test_more_gpus_than_the_node_has_fails_at_once(tmp_path):
    with pytest.raises(gpu_lease.LeaseError, match="needs 3 GPUs but this node offers 2"):
        gpu_lease.acquire(3, ["0", "1"], tmp_path, wait_s=600)


def test_device_pool_sources():
    assert gpu_lease.device_pool({"MIXMERGE_GPU_POOL": "3"}) == ["0", "1", "2"]
    assert gpu_lease.device_pool({"MIXMERGE_GPU_POOL": "2,5", "CUDA_VISIBLE_DEVICES": "0"}) == ["2", "5"]
    assert gpu_lease.device_pool({"CUDA_VISIBLE_DEVICES": "3"}) == ["3"]
    assert gpu_lease.device_pool({"CUDA_VISIBLE_DEVICES": "GPU-a1, GPU-b2"}) == ["GPU-a1", "GPU-b2"]
    assert gpu_lease.device_pool({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_device_env_slurm_and_cpu_jobs(tmp_path):
    env, leased = launch.device_env(4, {"SLURM_JOB_ID": "1", "CUDA_VISIBLE_DEVICES": "0,1,2,3"}, str(tmp_path),
                                    "grpo", 0)
    assert leased == [] and env["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"  # the scheduler's allocation, untouched
    env, leased = launch.device_env(0, {"MIXMERGE_GPU_POOL": "8"}, str(tmp_path), "merge", 0)
    assert leased == [] and env["CUDA_VISIBLE_DEVICES"] == ""  # a 0-GPU job sees no GPU
    env, leased = launch.device_env(2, {"MIXMERGE_GPU_POOL": "8"}, str(tmp_path), "sft", 0)
    assert env["CUDA_VISIBLE_DEVICES"] == ",".join(leased) and len(leased) == 2
    gpu_lease.release(leased, tmp_path)
