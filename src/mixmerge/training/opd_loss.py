"""The losses of multi-teacher on-policy distillation (MT-OPD, study §2.4), pure torch.

- ``study``: the RL runs' PPO-clip surrogate (ε symmetric, no KL, no entropy term) with the per-token advantage
  ``A_t = log π_teacher(y_t) − log π_student(y_t)`` of the sampled token, the teacher being the row's domain
  expert; the advantage is detached and neither discounted nor normalised. Aggregation as the study's RL loss
  (slime's default): the token mean within each sample, then the mean over the samples of the global batch.
- ``full_reverse_kl``: TRL's own on-policy distillation loss, the generalised JSD at ``beta=1`` (the reverse
  KL(π_student ‖ π_teacher) over the whole next-token distribution), through TRL's chunked divergence.

Routing: every row carries the index of its teacher; ``route_rows`` calls a per-teacher function on that teacher's
rows only and puts the results back in row order.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

LOSS_MODES = ("study", "full_reverse_kl")


def token_logps(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log π(token) at every position: ``logits`` (B, K, V) aligned with ``tokens`` (B, K)."""
    logps = torch.log_softmax(logits.float() / temperature, dim=-1)
    return logps.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def head_token_logps(hidden: torch.Tensor, head: torch.nn.Module, tokens: torch.Tensor, temperature: float = 1.0,
                     chunk_size: int = 4096, with_entropy: bool = False):
    """``token_logps(head(hidden), tokens)`` without the (B, K, V) logits: TRL's chunked log-prob kernel projects
    ``chunk_size`` vocabulary columns at a time (and recomputes them in the backward), which keeps the study loss
    within memory at 16k response tokens and a 150k vocabulary. With ``with_entropy``: (log-probs, the entropy of
    the distribution at every position)."""
    from trl.kernels.chunked_logprob import ChunkedLogProbFunction

    flat = hidden.reshape(-1, hidden.size(-1))
    outputs = ("entropy",) if with_entropy else ()
    logps, entropy = ChunkedLogProbFunction.apply(flat, head.weight, head.bias, tokens.reshape(-1), temperature,
                                                  chunk_size, None, 1.0, outputs)[:2]
    if with_entropy:
        return logps.view(tokens.shape), entropy.view(tokens.shape)
    return logps.view(tokens.shape)


def rows_by_teacher(route: torch.Tensor) -> dict[int, torch.Tensor]:
    """{teacher index: the row indices routed to it}, for the teachers that have rows, in index order."""
    return {int(t): (route == t).nonzero(as_tuple=True)[0] for t in torch.unique(route).tolist()}


def route_rows(route: torch.Tensor, per_teacher: Callable[[int, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Row-ordered results of ``per_teacher(teacher, rows)`` (a tensor with one entry per row in ``rows``), each row
    computed by its own teacher only."""
    out = None
    for teacher, rows in rows_by_teacher(route).items():
        part = per_teacher(teacher, rows)
        if out is None:
            out = part.new_zeros((route.shape[0], *part.shape[1:]))
        out[rows] = part
    if out is None:
        raise ValueError("no rows to route")
    return out


def study_advantage(teacher_logps: torch.Tensor, old_logps: torch.Tensor) -> torch.Tensor:
    """A_t = log π_T(y_t) − log π_S(y_t), detached: a sampled estimate of the negative reverse KL per token."""
    return (teacher_logps - old_logps).detach()


def study_loss(logps: torch.Tensor, old_logps: torch.Tensor, teacher_logps: torch.Tensor, mask: torch.Tensor,
               epsilon: float = 0.2, num_samples: float | torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The PPO-clip surrogate with the distillation advantage; returns (loss, advantage).

    ``logps``: the student's log-probs of the sampled tokens (with gradient); ``old_logps``: those of the policy
    that sampled them (on-policy with one update per rollout: ``logps.detach()``); ``mask``: 1 on response tokens.
    The loss is −Σ_samples mean_t min(r_t A_t, clip(r_t, 1−ε, 1+ε) A_t) / ``num_samples`` (default: the rows
    here; under gradient accumulation, the samples of the whole optimiser step)."""
    advantage = study_advantage(teacher_logps, old_logps)
    ratio = torch.exp(logps - old_logps.detach())
    surrogate = torch.minimum(ratio * advantage, torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * advantage)
    mask = mask.to(surrogate.dtype)
    per_sample = (surrogate * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    denominator = logps.shape[0] if num_samples is None else num_samples
    return -per_sample.sum() / denominator, advantage


def full_reverse_kl(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, student_head: torch.nn.Module,
                    teacher_head: torch.nn.Module, mask: torch.Tensor, temperature: float = 1.0
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TRL's generalised JSD at beta=1 = KL(π_S ‖ π_T) summed over the vocabulary, the mean over the response
    tokens of these rows; returns (mean KL, entropy sum of π_S, number of tokens). Hidden states: (B, K, H),
    aligned with the response tokens, before each model's LM head."""
    from trl.trainer.distillation_trainer import _chunked_divergence_loss

    return _chunked_divergence_loss(student_hidden, teacher_hidden, student_head.weight, teacher_head.weight, mask,
                                    1.0, num_items_in_batch=None, student_lm_head_bias=student_head.bias,
                                    teacher_lm_head_bias=teacher_head.bias, temperature=temperature)
