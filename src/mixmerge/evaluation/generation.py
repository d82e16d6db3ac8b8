"""Generation backends behind one interface: ``generate(prompts, k, sampling) -> list[list[Sample]]``.
HF ``generate`` (batched) runs anywhere; vLLM is used on GPUs when installed."""
from __future__ import annotations

from mixmerge.evaluation.sample import Sample


class HFBackend:
    def __init__(self, model_dir: str, batch_size: int, seed: int, threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.padding_side = "left"
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()
        self.batch_size = batch_size
        self.seed = seed

    def generate(self, prompts: list[list[dict]], k: int, sampling: dict, progress=None) -> list[list[Sample]]:
        import torch

        torch.manual_seed(self.seed)
        eos = self.tokenizer.eos_token_id
        texts = [self.tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
        per_batch = max(self.batch_size // k, 1)
        results: list[list[Sample]] = []
        for start in range(0, len(texts), per_batch):
            batch = self.tokenizer(texts[start:start + per_batch], return_tensors="pt", padding=True,
                                   add_special_tokens=False).to(self.device)
            do_sample = sampling["temperature"] > 0
            with torch.no_grad():
                out = self.model.generate(
                    **batch,
                    max_new_tokens=sampling["max_new_tokens"],
                    do_sample=do_sample,
                    temperature=sampling["temperature"] if do_sample else None,
                    top_p=sampling.get("top_p", 1.0) if do_sample else None,
                    top_k=0 if do_sample else None,
                    num_return_sequences=k,
                    eos_token_id=eos,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            new_tokens = out[:, batch["input_ids"].shape[1]:].tolist()
            for i in range(0, len(new_tokens), k):
                results.append([self._sample(ids, eos) for ids in new_tokens[i:i + k]])
            if progress:
                progress(min(start + per_batch, len(texts)), len(texts))
        return results

    def close(self) -> None:
        """Free the model's memory (the next model may need the same device)."""
        import gc

        import torch

        del self.model
        gc.collect()
        if self.device == "cuda":
            torch.cuda.empty_cache()

    def _sample(self, ids: list[int], eos: int) -> Sample:
        pad = self.tokenizer.pad_token_id
        if eos in ids:
            ids = ids[: ids.index(eos)]
            reason = "stop"
        else:
            ids = [t for t in ids if t != pad]
            reason = "length"
        return Sample(self.tokenizer.decode(ids, skip_special_tokens=True), reason, len(ids))


def make_backend(name: str, model_dir: str, batch_size: int, seed: int, threads: int | None = None,
                 vllm_options: dict | None = None):
    if name == "auto":
        name = "vllm" if _vllm_usable() else "hf"
    if name == "hf":
        return HFBackend(model_dir, batch_size, seed, threads)
    if name == "vllm":
        from mixmerge.evaluation.vllm_backend import VLLMBackend

        return VLLMBackend(model_dir, seed, vllm_options)
    raise ValueError(f"config key 'eval.backend': unknown backend {name!r} (hf, vllm, auto)")


def _vllm_usable() -> bool:
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None
