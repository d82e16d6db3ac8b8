"""Tensor-at-a-time access to HF safetensors checkpoints, and a streaming sharded writer.

Nothing here loads a whole model: a reader hands out one tensor per call (safetensors `safe_open`),
and the writer flushes a shard as soon as it holds `shard_bytes` of tensors.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterable, Mapping, Protocol

import torch
from safetensors import safe_open
from safetensors.torch import save_file

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"


class TensorSource(Protocol):
    names: list[str]

    def get(self, name: str) -> torch.Tensor: ...


class DictSource:
    """An in-memory state dict behind the TensorSource interface (tests, small merges)."""

    def __init__(self, tensors: Mapping[str, torch.Tensor]):
        self._tensors = dict(tensors)
        self.names = list(self._tensors)

    def get(self, name: str) -> torch.Tensor:
        return self._tensors[name]


class CheckpointReader:
    """Reads tensors one at a time from a checkpoint directory (single file or sharded index)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        index = self.path / INDEX_NAME
        if index.exists():
            weight_map = json.loads(index.read_text())["weight_map"]
        elif (self.path / SINGLE_NAME).exists():
            weight_map = None
        else:
            raise FileNotFoundError(f"no {SINGLE_NAME} or {INDEX_NAME} in {self.path}")
        self._stack = contextlib.ExitStack()
        self._handles: dict[str, object] = {}
        if weight_map is None:
            handle = self._open(SINGLE_NAME)
            self._file_of = {name: SINGLE_NAME for name in handle.keys()}
        else:
            self._file_of = dict(weight_map)
        self.names = list(self._file_of)

    def _open(self, file_name: str):
        if file_name not in self._handles:
            handle = safe_open(str(self.path / file_name), framework="pt", device="cpu")
            self._handles[file_name] = self._stack.enter_context(handle)
        return self._handles[file_name]

    def get(self, name: str) -> torch.Tensor:
        return self._open(self._file_of[name]).get_tensor(name)

    def close(self) -> None:
        self._stack.close()
        self._handles.clear()

    def __enter__(self) -> "CheckpointReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ShardedWriter:
    """Writes tensors as they come into shards of about `shard_bytes`, then an index file."""

    def __init__(self, path: str | os.PathLike, shard_bytes: int = 512 * 2**20):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.shard_bytes = shard_bytes
        self._pending: dict[str, torch.Tensor] = {}
        self._pending_bytes = 0
        self._weight_map: dict[str, str] = {}
        self._shards: list[str] = []
        self._total = 0

    def add(self, name: str, tensor: torch.Tensor) -> None:
        self._pending[name] = tensor.contiguous()
        nbytes = tensor.numel() * tensor.element_size()
        self._pending_bytes += nbytes
        self._total += nbytes
        if self._pending_bytes >= self.shard_bytes:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        file_name = f"shard-{len(self._shards):05d}.safetensors"
        save_file(self._pending, str(self.path / file_name), metadata={"format": "pt"})
        for name in self._pending:
            self._weight_map[name] = file_name
        self._shards.append(file_name)
        self._pending = {}
        self._pending_bytes = 0

    def close(self) -> None:
        self._flush()
        index = {"metadata": {"total_size": self._total}, "weight_map": self._weight_map}
        (self.path / INDEX_NAME).write_text(json.dumps(index, indent=1))


def parameter_order(model_dir: str | os.PathLike, stored: Iterable[str]) -> list[str]:
    """The model's `named_parameters()` order (tied weights once), restricted to stored tensors.

    This is the order the study iterates parameters in (it matters for the DARE random stream).
    The model is built on the meta device, so this costs no memory. A parameter missing from the
    checkpoint is an error, except a tied lm_head (stored once, as the embedding)."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(str(model_dir))
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    names = [name for name, _ in model.named_parameters()]
    stored = set(stored)
    missing = [n for n in names if n not in stored]
    if missing:
        raise KeyError(f"{model_dir}: parameters missing from the checkpoint: {missing[:5]}")
    return names
