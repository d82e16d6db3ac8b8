"""Shared training plumbing: threads, checkpoint resume, provenance cards."""
from __future__ import annotations

import json
import time
from pathlib import Path

from mixmerge import atomic
from mixmerge.training.attempts import read_attempts, summarise_attempts
from mixmerge.training.checkpoint_check import checkpoint_problem
from mixmerge.training.distributed import check_full_weights


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def last_checkpoint(checkpoint_dir: str | Path) -> str | None:
    """The newest complete ``checkpoint-N`` directory; a newer one that is incomplete, truncated or corrupt (a
    kill or a full disk during its save) is skipped, with a line on stderr saying why."""
    import sys

    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        return None
    found = [p for p in checkpoint_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[1].isdigit()]
    for ckpt in sorted(found, key=lambda p: int(p.name.split("-")[1]), reverse=True):
        problem = checkpoint_problem(ckpt)
        if problem is None:
            return str(ckpt)
        print(f"mixmerge: skipping checkpoint {ckpt}: {problem}", file=sys.stderr, flush=True)
    return None


def resume_point(checkpoint_dir: str | Path) -> str | None:
    """The checkpoint to resume from, announced on stderr (None: start from scratch)."""
    import sys

    found = last_checkpoint(checkpoint_dir)
    print(f"mixmerge: resuming from {found}" if found else f"mixmerge: no checkpoint in {checkpoint_dir}, starting",
          file=sys.stderr, flush=True)
    return found


def train(trainer, resume: str | None, checkpoint_dir: str | Path) -> None:
    """``trainer.train`` from ``resume``; a full disk while it saves a checkpoint becomes a clear error (the
    half-written checkpoint is skipped when the job reruns: ``last_checkpoint``)."""
    try:
        trainer.train(resume_from_checkpoint=resume)
    except Exception as err:
        if not atomic.is_disk_full(err, Path(checkpoint_dir)):
            raise
        raise atomic.DiskFullError(28, f"no space left on device while training saved a checkpoint under "
                                       f"{checkpoint_dir}; the incomplete checkpoint will be skipped when the job "
                                       "reruns") from err


def save_final(trainer, tokenizer, out_dir: str | Path, card: dict, started: float, attempts=None) -> None:
    """Write the final model via a temporary directory, so an interrupted save never looks complete. With an
    ``AttemptLog`` (``mixmerge.training.attempts``) the card's ``compute`` sums every attempt of the node and the
    attempts log is copied beside the weights."""
    out_dir = Path(out_dir)
    tmp = atomic.partial_path(out_dir)
    try:
        _save_partial(trainer, tokenizer, tmp, card, started, attempts)
    except Exception as err:  # a full disk: a clear error, and nothing complete-looking left behind
        atomic.raise_disk_full(err, tmp, out_dir)
    if trainer.is_world_process_zero():
        atomic.publish(tmp, out_dir)


def _save_partial(trainer, tokenizer, tmp: Path, card: dict, started: float, attempts) -> None:
    if trainer.is_world_process_zero():
        atomic.remove(tmp)  # what an earlier, killed save left
    trainer.save_model(str(tmp))  # every rank: under ZeRO-3 this gathers the shards into plain safetensors
    if not trainer.is_world_process_zero():
        return
    check_full_weights(tmp)
    tokenizer.save_pretrained(str(tmp))
    history = [e for e in trainer.state.log_history]
    (tmp / "train_log.json").write_text(json.dumps(history, indent=1))
    card = {**card, "global_step": trainer.state.global_step, "wall_seconds": round(time.time() - started, 1)}
    if attempts is not None:
        attempts.finish(trainer.state.global_step)
        records = read_attempts(attempts.path)
        (tmp / attempts.path.name).write_text("".join(json.dumps(r) + "\n" for r in records))
        card["compute"] = summarise_attempts(records)
    (tmp / "mixmerge_card.json").write_text(json.dumps(card, indent=2, default=str))
