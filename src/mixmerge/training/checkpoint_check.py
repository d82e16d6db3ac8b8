"""Is a Trainer ``checkpoint-N`` directory complete and readable? Cheap structural checks, no tensor loaded.

A kill or a full disk during a save leaves a checkpoint without ``trainer_state.json`` (Trainer writes it last),
with a truncated one, or with truncated weights/optimizer files; resuming from it would crash or, worse, load
garbage. Each check reads only headers: the safetensors header against the file size, the zip directory at the
end of ``torch.save`` files, the trainer state's JSON and step.
"""
from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

TORCH_FILES = ("optimizer.pt", "scheduler.pt", "rng_state.pth", "scaler.pt")


def _safetensors_problem(path: Path) -> str | None:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return "shorter than its header"
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            return "header runs past the end of the file (truncated)"
        try:
            header = json.loads(f.read(n))
        except ValueError:
            return "header is not JSON"
    ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
    if 8 + n + max(ends, default=0) != size:
        return f"{size} bytes, but its header describes {8 + n + max(ends, default=0)} (truncated or corrupt)"
    return None


def _weights_problem(ckpt: Path) -> str | None:
    index = ckpt / "model.safetensors.index.json"
    if index.exists():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (ValueError, KeyError):
            return f"{index.name}: not a valid index"
        files = [ckpt / s for s in shards]
    else:
        files = [p for p in (ckpt / "model.safetensors", ckpt / "adapter_model.safetensors") if p.exists()]
        if not files and not (ckpt / "pytorch_model.bin").exists() and not list(ckpt.glob("global_step*")):
            return "no model weights"
    for path in files:
        if not path.exists():
            return f"{path.name}: missing"
        problem = _safetensors_problem(path)
        if problem:
            return f"{path.name}: {problem}"
    return None


def _state_problem(ckpt: Path) -> str | None:
    state = ckpt / "trainer_state.json"
    if not state.exists():
        return "no trainer_state.json (the save did not finish)"
    try:
        step = json.loads(state.read_text())["global_step"]
    except (ValueError, KeyError, UnicodeDecodeError):
        return "trainer_state.json is truncated or corrupt"
    expected = ckpt.name.rpartition("-")[2]
    if str(step) != expected:
        return f"trainer_state.json says step {step}, the directory {expected}"
    return None


def checkpoint_problem(ckpt: str | Path) -> str | None:
    """Why ``ckpt`` cannot be resumed from, or None if it looks complete."""
    ckpt = Path(ckpt)
    problem = _state_problem(ckpt) or _weights_problem(ckpt)
    if problem:
        return problem
    for name in TORCH_FILES:
        path = ckpt / name
        if not path.exists():
            continue
        try:
            with zipfile.ZipFile(path) as z:
                z.namelist()
        except (zipfile.BadZipFile, OSError):
            return f"{name}: truncated or corrupt (not a complete torch.save archive)"
    return None
