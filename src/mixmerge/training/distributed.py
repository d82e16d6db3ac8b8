"""Facts about the distributed run a stage is part of, and a check that a saved model is whole."""
from __future__ import annotations

import os
from pathlib import Path


def world_size(env: dict | None = None) -> int:
    """Processes in this run: ``WORLD_SIZE`` as set by ``accelerate launch``/torchrun, 1 for a plain process."""
    env = os.environ if env is None else env
    return int(env.get("WORLD_SIZE", "1"))


def check_full_weights(model_dir: str | Path) -> int:
    """Raise unless ``model_dir`` holds plain HF safetensors with every tensor materialised (a ZeRO-3 save
    without gathering leaves empty placeholders that mergekit and vLLM cannot read). Returns the parameter
    count."""
    from safetensors import safe_open

    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise ValueError(f"{model_dir}: no *.safetensors weights (DeepSpeed shards only? set "
                         "zero3_save_16bit_model: true in the accelerate config)")
    total = 0
    for path in files:
        with safe_open(str(path), framework="pt") as f:
            for name in f.keys():
                shape = f.get_slice(name).get_shape()
                numel = 1
                for dim in shape:
                    numel *= dim
                if numel == 0:
                    raise ValueError(f"{path}: tensor {name!r} is empty {shape} (ZeRO-3 shards not gathered)")
                total += numel
    return total
