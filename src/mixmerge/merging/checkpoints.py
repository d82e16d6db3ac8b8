"""Chunked reads and in-place writes of HF safetensors checkpoints, and in-memory stand-ins for both.

Nothing here maps or loads a whole checkpoint: a reader `pread`s one tensor, or a flat range of one,
into a fresh buffer (no mmap, so pages read earlier never count towards the process's memory), and
the writer lays out every shard's header up front, then `pwrite`s tensor ranges as they are merged.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Iterable, Mapping, Protocol

import torch

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
_CODES = {"F64": torch.float64, "F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}
_CODE_OF = {dtype: code for code, dtype in _CODES.items()}


class TensorSource(Protocol):
    names: list[str]

    def get(self, name: str) -> torch.Tensor: ...

    def meta(self, name: str) -> tuple[tuple[int, ...], torch.dtype]: ...

    def get_range(self, name: str, start: int, stop: int, out: torch.Tensor | None = None) -> torch.Tensor: ...


class DictSource:
    """An in-memory state dict behind the TensorSource interface (tests, small merges)."""

    def __init__(self, tensors: Mapping[str, torch.Tensor]):
        self._tensors = dict(tensors)
        self.names = list(self._tensors)

    def get(self, name: str) -> torch.Tensor:
        return self._tensors[name]

    def meta(self, name: str) -> tuple[tuple[int, ...], torch.dtype]:
        return tuple(self._tensors[name].shape), self._tensors[name].dtype

    def get_range(self, name: str, start: int, stop: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """A view of entries [start, stop) (`out` is not needed: nothing is read)."""
        return self._tensors[name].reshape(-1)[start:stop]


def _read_into(fd: int, buffer: torch.Tensor, offset: int) -> None:
    view = memoryview(buffer.view(torch.uint8).numpy()).cast("B")
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got <= 0:
            raise OSError(f"short read at byte {offset + done}")
        done += got


class SafetensorsFile:
    """One .safetensors file: its header, and tensors (or flat ranges) read with pread."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self.fd = os.open(self.path, os.O_RDONLY)
        (size,) = struct.unpack("<Q", os.pread(self.fd, 8, 0))
        header = json.loads(os.pread(self.fd, size, 8))
        header.pop("__metadata__", None)
        self.data_start = 8 + size
        self.entries = {name: (_CODES[h["dtype"]], tuple(h["shape"]), h["data_offsets"][0])
                        for name, h in header.items()}

    def read(self, name: str, start: int = 0, stop: int | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
        """Entries [start, stop) of `name`, flat, read into `out` (a buffer of its dtype) or a new tensor."""
        dtype, shape, begin = self.entries[name]
        stop = math.prod(shape) if stop is None else stop
        out = torch.empty(stop - start, dtype=dtype) if out is None else out
        if stop > start:
            _read_into(self.fd, out, self.data_start + begin + start * out.element_size())
        return out

    def close(self) -> None:
        os.close(self.fd)


class CheckpointReader:
    """Reads tensors, or flat element ranges of them, from a checkpoint directory (single file or index)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        index = self.path / INDEX_NAME
        if index.exists():
            file_of = dict(json.loads(index.read_text())["weight_map"])
        elif (self.path / SINGLE_NAME).exists():
            file_of = None
        else:
            raise FileNotFoundError(f"no {SINGLE_NAME} or {INDEX_NAME} in {self.path}")
        self._files: dict[str, SafetensorsFile] = {}
        if file_of is None:
            file_of = {name: SINGLE_NAME for name in self._open(SINGLE_NAME).entries}
        self._file_of = file_of
        self.names = list(file_of)

    def _open(self, file_name: str) -> SafetensorsFile:
        if file_name not in self._files:
            self._files[file_name] = SafetensorsFile(self.path / file_name)
        return self._files[file_name]

    def meta(self, name: str) -> tuple[tuple[int, ...], torch.dtype]:
        dtype, shape, _ = self._open(self._file_of[name]).entries[name]
        return shape, dtype

    def get(self, name: str) -> torch.Tensor:
        shape, _ = self.meta(name)
        return self._open(self._file_of[name]).read(name).reshape(shape)

    def get_range(self, name: str, start: int, stop: int, out: torch.Tensor | None = None) -> torch.Tensor:
        return self._open(self._file_of[name]).read(name, start, stop, out)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()

    def __enter__(self) -> "CheckpointReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


Layout = list[tuple[str, tuple[int, ...], torch.dtype]]


def _shard_plan(layout: Layout, shard_bytes: int) -> list[Layout]:
    shards: list[Layout] = [[]]
    size = 0
    for name, shape, dtype in layout:
        nbytes = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append((name, shape, dtype))
        size += nbytes
    return shards


class CheckpointWriter:
    """Writes a checkpoint whose tensors are known up front: every shard's header is written first, then
    tensors or flat ranges of them go straight to their place in the file (nothing is held in memory).
    One shard is `model.safetensors`; more are `model-0000i-of-0000n.safetensors` plus an index."""

    def __init__(self, path: str | os.PathLike, layout: Layout, shard_bytes: int = 4 * 2**30):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in [*self.path.glob("model*.safetensors"), self.path / INDEX_NAME]:   # an earlier run's
            stale.unlink(missing_ok=True)
        shards = _shard_plan(layout, shard_bytes)
        self._where: dict[str, tuple[int, int, torch.dtype]] = {}   # name -> (fd, data offset, dtype)
        self._fds: list[int] = []
        self._weight_map: dict[str, str] = {}
        total = 0
        for i, shard in enumerate(shards):
            file_name = SINGLE_NAME if len(shards) == 1 else f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            total += self._open_shard(self.path / file_name, shard)
            self._weight_map.update({name: file_name for name, _, _ in shard})
        self._total = total
        self._multi = len(shards) > 1

    def _open_shard(self, file: Path, shard: Layout) -> int:
        header: dict = {"__metadata__": {"format": "pt"}}
        offset = 0
        for name, shape, dtype in shard:
            nbytes = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()
            header[name] = {"dtype": _CODE_OF[dtype], "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        fd = os.open(file, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.pwrite(fd, struct.pack("<Q", len(raw)) + raw, 0)
        os.ftruncate(fd, 8 + len(raw) + offset)
        self._fds.append(fd)
        for name, _, dtype in shard:
            self._where[name] = (fd, 8 + len(raw) + header[name]["data_offsets"][0], dtype)
        return offset

    def write(self, name: str, tensor: torch.Tensor, start: int = 0) -> None:
        """Write `tensor` (cast to the planned dtype) at flat element offset `start` of tensor `name`."""
        fd, offset, dtype = self._where[name]
        data = tensor.detach().to("cpu", dtype).contiguous().reshape(-1)
        if data.numel():
            view = memoryview(data.view(torch.uint8).numpy()).cast("B")
            done = 0
            while done < len(view):
                done += os.pwrite(fd, view[done:], offset + start * data.element_size() + done)

    def patch(self, name: str, index: torch.Tensor, values: torch.Tensor) -> None:
        """Overwrite the entries at flat positions `index` of tensor `name` (read, modify, write back)."""
        if not index.numel():
            return
        fd, offset, dtype = self._where[name]
        lo, hi = int(index.min()), int(index.max()) + 1
        span = torch.empty(hi - lo, dtype=dtype)
        _read_into(fd, span, offset + lo * span.element_size())
        span[index - lo] = values.to(dtype)
        self.write(name, span, lo)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        if self._multi:
            index = {"metadata": {"total_size": self._total}, "weight_map": self._weight_map}
            (self.path / INDEX_NAME).write_text(json.dumps(index, indent=1))


class DictSink:
    """The CheckpointWriter interface over in-memory tensors (merge_in_memory)."""

    def __init__(self, layout: Layout):
        self.tensors = {name: torch.empty(shape, dtype=dtype) for name, shape, dtype in layout}

    def write(self, name: str, tensor: torch.Tensor, start: int = 0) -> None:
        flat = self.tensors[name].view(-1)
        flat[start:start + tensor.numel()] = tensor.reshape(-1).to(flat.device, flat.dtype)

    def patch(self, name: str, index: torch.Tensor, values: torch.Tensor) -> None:
        self.tensors[name].view(-1)[index] = values.to(self.tensors[name].dtype)

    def close(self) -> None:
        pass


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
