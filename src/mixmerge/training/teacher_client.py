"""Teacher log-probs from the opd job's teacher servers (``opd.teachers.backend: vllm_server``): the per-token
log π_T(y_t) of the student's sampled completion tokens, asked of the row's domain server through vLLM's
``prompt_logprobs`` (TRL's ``VLLMClient.get_sequence_logprobs``, and TRL's trimming of padded rows,
``build_teacher_request_inputs``). The servers were started by the launcher (``mixmerge.compute.teacher_servers``),
which hands their URLs over in ``MIXMERGE_TEACHER_URLS``."""
from __future__ import annotations

import json
import os
from urllib.parse import urlparse

import torch
from trl.generation.vllm_client import VLLMClient

from mixmerge.compute.teacher_servers import URLS_ENV
from mixmerge.config_checks import ConfigError


class TeacherClient(VLLMClient):
    """TRL's ``VLLMClient`` for scoring only. Its constructor is replaced: TRL's refuses to run without vLLM
    installed in this process (needed for weight sync, not for HTTP scoring)."""

    def __init__(self, base_url: str, domain: str, connect_timeout_s: float = 60.0):
        import requests

        self.session = requests.Session()
        self.base_url = base_url.rstrip("/")
        self.host = urlparse(self.base_url).hostname
        self.domain = domain
        self.communicator = None
        self.check_server(connect_timeout_s)
        self.model = self._get(f"{self.base_url}/v1/models")["data"][0]["id"]

    def completion_logps(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, completion_ids: torch.Tensor,
                         completion_mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """log π_T of every completion token (B, K) as float32 on ``completion_ids``' device, 0 where
        ``completion_mask`` is 0. Prompts may be left-padded; each completion's mask must be a prefix (TRL's
        on-policy batches: right-padded after the end of the response)."""
        lengths = completion_mask.sum(-1)
        positions = torch.arange(completion_mask.size(1), device=completion_mask.device)
        if not torch.equal(completion_mask.bool(), positions < lengths.unsqueeze(1)):
            raise ValueError("completion_mask is not a prefix of each row (tokens after the end of a response)")
        from trl.experimental.server_distillation.server_distillation_trainer import build_teacher_request_inputs

        sequences, prompt_lengths, completion_lengths = build_teacher_request_inputs(
            torch.cat([prompt_ids, completion_ids], dim=1), torch.cat([prompt_mask, completion_mask], dim=1),
            prompt_attention_mask=prompt_mask)
        result = self.get_sequence_logprobs(sequences, prompt_lengths, top_logprobs=1, temperature=temperature)
        out = torch.zeros(completion_ids.shape, dtype=torch.float32)
        for i, (n, values) in enumerate(zip(completion_lengths, result["actual_logprobs"], strict=True)):
            row = torch.tensor([v[0] for v in values], dtype=torch.float32)
            if len(row) != n or not torch.isfinite(row).all():
                raise RuntimeError(f"teacher server of domain {self.domain!r} ({self.base_url}) returned "
                                   f"{len(row)} log-probs for a {n}-token completion, "
                                   f"{int((~torch.isfinite(row)).sum())} of them not finite")
            out[i, :n] = row
        return out.to(completion_ids.device)


def connect(domains: list[str], env: dict | None = None, connect_timeout_s: float = 60.0) -> dict[str, TeacherClient]:
    """A client per domain, to the servers the launcher started (``MIXMERGE_TEACHER_URLS``)."""
    env = os.environ if env is None else env
    urls = json.loads(env.get(URLS_ENV) or "{}")
    missing = [d for d in domains if d not in urls]
    if missing:
        raise ConfigError(f"config key 'opd.teachers.backend': vllm_server, but no teacher server of domain "
                          f"{missing[0]!r} was started for this process ({URLS_ENV}={env.get(URLS_ENV)!r}); run opd "
                          "through `python -m mixmerge.compute.launch --teacher-servers ...`, as the opd rule does")
    return {d: TeacherClient(urls[d], d, connect_timeout_s) for d in domains}
