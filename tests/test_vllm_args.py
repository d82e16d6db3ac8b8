"""What reaches vLLM: engine and sampling settings for evaluation, GRPOConfig's vLLM fields for training.
vLLM is not installed here; a recording stand-in module checks the backend's calls."""
import sys
import types

import pytest

from mixmerge.evaluation import generation
from mixmerge.evaluation import vllm_backend
from mixmerge.evaluation.vllm_backend import engine_kwargs, sampling_kwargs

BENCH = {"domain": "math", "k": 4, "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 512}


def test_engine_defaults_and_tensor_parallel_over_the_jobs_gpus():
    kw = engine_kwargs("results/models/sft", 7, None, visible_gpus=4)
    assert kw == {"model": "results/models/sft", "tokenizer": "results/models/sft", "seed": 7, "dtype": "bfloat16",
                  "gpu_memory_utilization": 0.9, "enable_prefix_caching": True, "tensor_parallel_size": 4}
    assert engine_kwargs("m", 0, None, visible_gpus=0)["tensor_parallel_size"] == 1


def test_engine_options_from_config_win():
    kw = engine_kwargs("m", 0, {"max_model_len": 34816, "gpu_memory_utilization": 0.8, "tensor_parallel_size": 1,
                                "max_num_seqs": None}, visible_gpus=8)
    assert kw["max_model_len"] == 34816 and kw["gpu_memory_utilization"] == 0.8
    assert kw["tensor_parallel_size"] == 1 and "max_num_seqs" not in kw


def test_unknown_engine_option_names_the_key():
    with pytest.raises(ValueError, match="eval.vllm.max_len"):
        engine_kwargs("m", 0, {"max_len": 10})


def test_sampling_settings():
    assert sampling_kwargs(4, BENCH, seed=11) == {"n": 4, "temperature": 0.6, "top_p": 0.95, "max_tokens": 512,
                                                  "seed": 11}
    kw = sampling_kwargs(2, {**BENCH, "top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1}, seed=0)
    assert kw["top_k"] == 20 and kw["min_p"] == 0.05 and kw["repetition_penalty"] == 1.1
    assert "top_k" not in sampling_kwargs(2, {**BENCH, "top_k": 0}, seed=0)  # 0 = disabled: vLLM's default


def test_greedy_asks_for_one_sample():
    kw = sampling_kwargs(8, {**BENCH, "temperature": 0.0}, seed=3)
    assert kw == {"n": 1, "temperature": 0.0, "max_tokens": 512, "seed": 3}


class Out:
    def __init__(self, text, reason, n_tokens):
        self.text, self.finish_reason, self.token_ids = text, reason, list(range(n_tokens))


@pytest.fixture
def fake_vllm(monkeypatch):
    calls = {}

    class LLM:
        def __init__(self, **kwargs):
            calls["engine"] = kwargs

        def chat(self, prompts, sampling_params=None, **kwargs):
            calls["chat"] = {"prompts": prompts, "params": sampling_params, **kwargs}
            return [types.SimpleNamespace(outputs=[Out(f"p{i}s{j}", "length" if j == 0 else "stop", 3 + j)
                                                   for j in range(sp.kwargs["n"])])
                    for i, sp in enumerate(sampling_params)]

    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    return calls


def test_backend_calls_vllm_with_seeded_per_prompt_sampling(fake_vllm):
    backend = generation.make_backend("vllm", "results/models/rl-math", 64, 5,
                                      vllm_options={"max_model_len": 2048, "chat_template_kwargs": {"x": 1}})
    prompts = [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]]
    samples = backend.generate(prompts, 3, BENCH)
    engine = fake_vllm["engine"]
    assert engine["model"] == "results/models/rl-math" and engine["seed"] == 5
    assert engine["tensor_parallel_size"] == 2 and engine["max_model_len"] == 2048  # 2 leased GPUs
    chat = fake_vllm["chat"]
    assert chat["prompts"] == prompts and chat["chat_template_kwargs"] == {"x": 1}
    assert [sp.kwargs["seed"] for sp in chat["params"]] == [5, 6]  # seed + prompt index
    assert all(sp.kwargs["n"] == 3 and sp.kwargs["max_tokens"] == 512 for sp in chat["params"])
    assert [s.text for s in samples[1]] == ["p1s0", "p1s1", "p1s2"]
    assert [s.finish_reason for s in samples[0]] == ["length", "stop", "stop"]
    assert [s.num_tokens for s in samples[0]] == [3, 4, 5]


def test_backend_repeats_a_greedy_sample_k_times(fake_vllm):
    backend = vllm_backend.VLLMBackend("m", 0)
    samples = backend.generate([[{"role": "user", "content": "a"}]], 4, {**BENCH, "temperature": 0.0})
    assert fake_vllm["chat"]["params"][0].kwargs["n"] == 1
    assert [s.text for s in samples[0]] == ["p0s0"] * 4


@pytest.mark.parametrize("cuda,has_vllm,usable", [(True, True, True), (True, False, False), (False, True, False)])
def test_auto_backend_needs_both_gpu_and_vllm(monkeypatch, cuda, has_vllm, usable):
    import importlib.util

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (object() if has_vllm else None) if name == "vllm" else real_find_spec(name, *a))
    assert generation._vllm_usable() is usable
