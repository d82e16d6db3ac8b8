"""vLLM generation backend (GPU extra), same interface as ``generation.HFBackend``.

The engine and sampling arguments are built by pure functions (``engine_kwargs``, ``sampling_kwargs``) so
tests check what reaches vLLM without vLLM installed. Sampling is seeded per prompt (``seed + index``), so a
prompt's k samples do not depend on how prompts are batched.
"""
from __future__ import annotations

import os

from mixmerge.evaluation.sample import Sample

ENGINE_DEFAULTS = {"dtype": "bfloat16", "gpu_memory_utilization": 0.9, "enable_prefix_caching": True}
ENGINE_KEYS = ("dtype", "gpu_memory_utilization", "max_model_len", "tensor_parallel_size", "enable_prefix_caching",
               "max_num_seqs", "enforce_eager")


def visible_gpu_count(env: dict | None = None) -> int:
    """GPUs this process may use, from ``CUDA_VISIBLE_DEVICES`` (set by the lease helper or SLURM)."""
    env = os.environ if env is None else env
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        import torch

        return torch.cuda.device_count()
    return len([d for d in visible.split(",") if d.strip()])


def engine_kwargs(model_dir: str, seed: int, options: dict | None = None, visible_gpus: int = 1) -> dict:
    """``vllm.LLM(**kwargs)``: the eval config's ``vllm`` block over defaults; tensor parallelism spans the
    job's GPUs unless set."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(ENGINE_KEYS))
    if unknown:
        raise ValueError(f"config key 'eval.vllm.{unknown[0]}': not an engine setting ({', '.join(ENGINE_KEYS)})")
    kwargs = {"model": model_dir, "tokenizer": model_dir, "seed": seed, **ENGINE_DEFAULTS,
              "tensor_parallel_size": max(visible_gpus, 1)}
    kwargs.update({k: v for k, v in options.items() if v is not None})
    return kwargs


def sampling_kwargs(k: int, sampling: dict, seed: int) -> dict:
    """``vllm.SamplingParams(**kwargs)`` for one prompt from a benchmark's settings. Greedy decoding
    (temperature 0) asks for one sample, which the backend repeats k times."""
    greedy = sampling["temperature"] == 0
    kwargs = {"n": 1 if greedy else k, "temperature": sampling["temperature"],
              "max_tokens": sampling["max_new_tokens"], "seed": seed}
    if not greedy:
        kwargs["top_p"] = sampling.get("top_p", 1.0)
        if sampling.get("top_k", 0) > 0:
            kwargs["top_k"] = sampling["top_k"]
        if sampling.get("min_p"):
            kwargs["min_p"] = sampling["min_p"]
    if sampling.get("repetition_penalty", 1.0) != 1.0:
        kwargs["repetition_penalty"] = sampling["repetition_penalty"]
    return kwargs


def to_samples(outputs, k: int) -> list[Sample]:
    """vLLM ``CompletionOutput``s of one prompt -> k Samples (a single greedy output repeated)."""
    samples = [Sample(o.text, "length" if o.finish_reason == "length" else "stop", len(o.token_ids))
               for o in outputs]
    return samples * k if len(samples) == 1 and k > 1 else samples


class VLLMBackend:
    def __init__(self, model_dir: str, seed: int, options: dict | None = None):
        os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
        from vllm import LLM

        self.seed = seed
        self.chat_template_kwargs = dict((options or {}).get("chat_template_kwargs") or {})
        engine_options = {k: v for k, v in (options or {}).items() if k != "chat_template_kwargs"}
        self.llm = LLM(**engine_kwargs(model_dir, seed, engine_options, visible_gpu_count()))

    def generate(self, prompts: list[list[dict]], k: int, sampling: dict, progress=None) -> list[list[Sample]]:
        from vllm import SamplingParams

        params = [SamplingParams(**sampling_kwargs(k, sampling, self.seed + i)) for i in range(len(prompts))]
        outs = self.llm.chat(prompts, sampling_params=params, use_tqdm=False, add_generation_prompt=True,
                             chat_template_kwargs=self.chat_template_kwargs or None)
        if progress:
            progress(len(prompts), len(prompts))
        return [to_samples(out.outputs, k) for out in outs]

    def close(self) -> None:
        """Stop the engine, whose processes hold the GPU memory (``LLM.shutdown`` where this vLLM has it, else its
        engine core client's), so that the next model fits."""
        import gc

        shutdown = getattr(self.llm, "shutdown", None) or self.llm.llm_engine.engine_core.shutdown
        shutdown()
        del self.llm
        gc.collect()
