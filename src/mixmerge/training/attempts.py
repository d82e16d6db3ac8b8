"""The append-only attempts log of a training node: each attempt (the first run, every resume) records its start,
its progress and its end in ``<checkpoints>/attempts.jsonl``, so an interrupted attempt still counts, and the
model card sums them (wall time measured by the process, lease wait and model loading apart, GPUs as seen)."""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from mixmerge.compute.launch import LEASE_WAIT_ENV  # seconds the launcher waited for GPUs

ATTEMPTS_FILE = "attempts.jsonl"
PHASES = ("startup", "load", "train", "save")
_IMPORTED = time.time()


def process_started() -> float:
    """Unix time this process started (``/proc``), so interpreter start-up and imports count; else import time."""
    try:
        with open("/proc/self/stat", "rb") as f:
            ticks = int(f.read().rpartition(b")")[2].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, StopIteration, IndexError):
        return _IMPORTED


def recorded_gpus(env: dict | None = None) -> list[str]:
    """The GPUs this run holds: ``CUDA_VISIBLE_DEVICES`` as the launcher or the scheduler set it (empty: none),
    else every CUDA device torch sees (none on a CPU machine)."""
    env = os.environ if env is None else env
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    except ImportError:
        return []


class AttemptLog:
    """One attempt's records. Only the main process (rank 0) writes; each line is flushed at once, so a killed
    attempt leaves its last progress line behind."""

    def __init__(self, directory: str | Path, node: str, env: dict | None = None):
        env = os.environ if env is None else env
        self.path = Path(directory) / ATTEMPTS_FILE
        self.node = node
        self.t0 = process_started()
        self.id = f"{socket.gethostname()}:{os.getpid()}:{self.t0:.2f}"
        self.active = int(env.get("RANK", "0")) == 0
        self.lease_wait = float(env.get(LEASE_WAIT_ENV, 0.0) or 0.0)
        self.gpus = recorded_gpus(env)
        self.world = int(env.get("WORLD_SIZE", "1"))
        self.marks: dict[str, float] = {}

    def write(self, event: str, **fields) -> None:
        if not self.active:
            return
        now = time.time()
        line = {"attempt": self.id, "node": self.node, "event": event, "time": round(now, 3),
                "elapsed_s": round(now - self.t0, 3), **fields}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(line) + "\n")
            f.flush()

    def start(self, resumed_from: str | None) -> "AttemptLog":
        """The attempt begins (after start-up and imports): GPUs, lease wait, the checkpoint it resumes from."""
        self.mark("startup")
        self.write("start", started_at=round(self.t0, 3), gpus=len(self.gpus), gpu_ids=self.gpus,
                   world_size=self.world, lease_wait_s=round(self.lease_wait, 3),
                   resumed_from=resumed_from, host=socket.gethostname())
        return self

    def mark(self, phase: str) -> None:
        """``phase`` (one of PHASES) ends now; each phase lasts from the previous mark."""
        self.marks[phase] = time.time() - self.t0
        self.write("phase", phase=phase, phase_s=round(self.phase_seconds().get(phase, 0.0), 3))

    def phase_seconds(self) -> dict[str, float]:
        out, last = {}, 0.0
        for phase in PHASES:
            if phase in self.marks:
                out[phase] = self.marks[phase] - last
                last = self.marks[phase]
        return out

    def progress(self, step: int) -> None:
        self.write("progress", step=int(step))

    def finish(self, step: int) -> None:
        self.mark("save")
        self.write("end", step=int(step), phases={k: round(v, 3) for k, v in self.phase_seconds().items()})

    def callback(self):
        """A transformers ``TrainerCallback`` that writes a progress line at every log and checkpoint step."""
        from transformers import TrainerCallback

        log = self

        class _Progress(TrainerCallback):
            def on_log(self, args, state, control, **kwargs):
                log.progress(state.global_step)

            def on_save(self, args, state, control, **kwargs):
                log.progress(state.global_step)

        return _Progress()


def read_attempts(path: str | Path) -> list[dict]:
    """Every record of an attempts log, in order; a torn last line (a kill while writing) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def summarise_attempts(records: list[dict]) -> dict:
    """Per attempt: status (finished or interrupted), wall seconds (to its end, or to its last record when it
    was killed), lease wait, phases, GPUs; and their sums. GPU-hours = each attempt's wall time x its GPUs."""
    attempts: dict[str, dict] = {}
    for rec in records:
        a = attempts.setdefault(rec["attempt"], {"attempt": rec["attempt"], "status": "interrupted", "gpus": 0,
                                                 "lease_wait_s": 0.0, "wall_s": 0.0, "step": None, "phases": {}})
        a["wall_s"] = max(a["wall_s"], float(rec.get("elapsed_s", 0.0)))
        if rec["event"] == "start":
            a.update(gpus=int(rec.get("gpus", 0)), lease_wait_s=float(rec.get("lease_wait_s", 0.0)),
                     resumed_from=rec.get("resumed_from"))
        elif rec["event"] == "phase":
            a["phases"][rec["phase"]] = float(rec.get("phase_s", 0.0))
        elif rec["event"] in ("progress", "end"):
            a["step"] = rec.get("step")
        if rec["event"] == "end":
            a["status"] = "finished"
    rows = list(attempts.values())
    total = lambda key: round(sum(a[key] for a in rows), 3)  # noqa: E731
    phase = lambda name: round(sum(a["phases"].get(name, 0.0) for a in rows), 3)  # noqa: E731
    gpu_seconds = sum(a["wall_s"] * a["gpus"] for a in rows)
    return {"attempts": rows, "n_attempts": len(rows), "wall_seconds": total("wall_s"),
            "lease_wait_seconds": total("lease_wait_s"), "load_seconds": phase("load"),
            "startup_seconds": phase("startup"), "train_seconds": phase("train"), "save_seconds": phase("save"),
            "gpus": max((a["gpus"] for a in rows), default=0), "gpu_hours": gpu_seconds / 3600}
