"""Shared training plumbing: threads, checkpoint resume, provenance cards."""
from __future__ import annotations

import json
import time
from pathlib import Path

from mixmerge.training.distributed import check_full_weights


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def last_checkpoint(checkpoint_dir: str | Path) -> str | None:
    """The newest complete ``checkpoint-N`` directory (Trainer writes trainer_state.json last)."""
    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        return None
    done = [p for p in checkpoint_dir.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    if not done:
        return None
    return str(max(done, key=lambda p: int(p.name.split("-")[1])))


def resume_point(checkpoint_dir: str | Path) -> str | None:
    """The checkpoint to resume from, announced on stderr (None: start from scratch)."""
    import sys

    found = last_checkpoint(checkpoint_dir)
    print(f"mixmerge: resuming from {found}" if found else f"mixmerge: no checkpoint in {checkpoint_dir}, starting",
          file=sys.stderr, flush=True)
    return found


def save_final(trainer, tokenizer, out_dir: str | Path, card: dict, started: float) -> None:
    """Write the final model via a temporary directory, so an interrupted save never looks complete."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    trainer.save_model(str(tmp))  # every rank: under ZeRO-3 this gathers the shards into plain safetensors
    if not trainer.is_world_process_zero():
        return
    check_full_weights(tmp)
    tokenizer.save_pretrained(str(tmp))
    history = [e for e in trainer.state.log_history]
    (tmp / "train_log.json").write_text(json.dumps(history, indent=1))
    card = {**card, "global_step": trainer.state.global_step, "wall_seconds": round(time.time() - started, 1)}
    (tmp / "mixmerge_card.json").write_text(json.dumps(card, indent=2, default=str))
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
