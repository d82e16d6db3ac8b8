"""Sampling for evaluation and headroom: single-turn rows through the backend at once; rows of a multi-turn domain
(one with a tool environment) through the tool loop, turn by turn, with every backend.

The loop is bounded by turns (the domain's ``max_turns``: ``reward.agent_max_turns`` for agent) and by the
benchmark's ``max_new_tokens``, shared by all turns of an episode (the study's budget). A malformed tool call
gets an error message turn and is counted; it never stops the loop. A sample's text is its transcript (JSON list of the assistant and tool messages), which the
domain's scorer replays through a fresh environment; its record also counts turns and bad calls.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mixmerge.domains import get_domain
from mixmerge.evaluation.sample import Sample


def generate_rows(backend, rows: list[dict], k: int, sampling: dict, reward: dict,
                  progress=None) -> list[list[Sample]]:
    """k samples per row, in row order."""
    multi = [i for i, r in enumerate(rows) if get_domain(r["domain"]).environment is not None]
    single = [i for i in range(len(rows)) if i not in set(multi)]
    out: list[list[Sample]] = [[] for _ in rows]
    if single:
        groups = backend.generate([rows[i]["prompt"] for i in single], k, sampling, progress=progress)
        for i, group in zip(single, groups):
            out[i] = group
    if multi:
        for i, group in zip(multi, run_episodes(backend, [rows[i] for i in multi], k, sampling, reward)):
            out[i] = group
    return out


@dataclass
class _Run:
    prompt: list[dict]
    episode: Any  # the domain's episode (Domain.episode)
    budget: int
    transcript: list[dict] = field(default_factory=list)
    tokens: int = 0
    finish: str = "stop"
    done: bool = False

    def take(self, sample: Sample) -> None:
        """One assistant turn: record it, run its calls, and end the episode when it is over."""
        self.tokens += sample.num_tokens
        self.transcript.append({"role": "assistant", "content": sample.text})
        tool_messages = self.episode.step(sample.text)
        if sample.finish_reason == "length" or self.tokens >= self.budget:
            self.finish, self.done = "length", True
        if tool_messages is None:
            self.done = True
        else:
            self.transcript += tool_messages

    def sample(self) -> Sample:
        return Sample(json.dumps(self.transcript), self.finish, self.tokens,
                      {"turns": self.episode.turns, "malformed_calls": self.episode.malformed,
                       "failed_calls": self.episode.failed})


def run_episodes(backend, rows: list[dict], k: int, sampling: dict, reward: dict | None) -> list[list[Sample]]:
    """k episodes per row: the first turn sampled k times per prompt, each later turn once per live episode, in
    batches of episodes that have the same tokens left."""
    budget = sampling["max_new_tokens"]
    runs = [[_Run(r["prompt"], get_domain(r["domain"]).episode(r["verifier"], reward), budget) for _ in range(k)]
            for r in rows]
    first = backend.generate([r["prompt"] for r in rows], k, sampling)
    for group, samples in zip(runs, first):
        for run, sample in zip(group, samples):
            run.take(sample)
    while live := [run for group in runs for run in group if not run.done]:
        for left in sorted({run.budget - run.tokens for run in live}):
            batch = [run for run in live if run.budget - run.tokens == left]
            samples = backend.generate([run.prompt + run.transcript for run in batch], 1,
                                       {**sampling, "max_new_tokens": left})
            for run, (sample,) in zip(batch, samples):
                run.take(sample)
    return [[run.sample() for run in group] for group in runs]
