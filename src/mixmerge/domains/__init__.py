"""The domain registry: every public module in this package defines one ``DOMAIN``, found automatically.

Config validation, the RL blend's subset map, scoring dispatch, reports and tests read this registry; none of
them lists domains. Adding a domain is one module here plus its config entries.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import cache
from typing import Callable

from mixmerge.domains._text import final_answer, think_wrap  # noqa: F401  (the domains' shared helpers)


@dataclass(frozen=True)
class Domain:
    """Everything specific to one domain.

    ``generate(n, seed, split)``: tiny synthetic rows (the row contract), each with a reference ``solution`` and
    a ``flawed_solution`` (the required format, with a typical slip that makes it wrong).
    ``score(completion, verifier, *, lenient, settings)``: the reward (strict) or the format-free check
    (lenient); 0 for anything the model wrote, never raises on model output.
    ``item_timeout(settings)``: worst-case seconds to score one item under the reward settings.
    ``preload``: modules its scorer workers import ahead.
    ``blend_subsets`` / ``blend_verifier(record, counters)`` / ``rewrite_prompt(messages)``: its part of the
    study's RL blend (subsets it takes, verifier built from a blend row, the study's prompt rewrite).
    ``environment(settings)`` / ``episode(verifier, settings)`` / ``max_turns(settings)``: a multi-turn domain's
    factory of TRL environments (training), a fresh episode of evaluation's tool loop for one row (``step(text)``
    returns the tool messages to show next, or None when it is over; it counts ``turns``, ``malformed`` and
    ``failed`` calls), and its turn limit under the reward settings. None: single-turn.
    ``check_ready(settings)``: raises if the scorer cannot run here (no sandbox for code), before any item.
    ``formatted(completion, settings)``: True when the completion passes every format gate, so its lenient score
    is its strict one and is not computed twice (code: one sandbox run instead of two).
    ``score`` raises ``VerifierError`` (naming the field) for a malformed verifier: a data error, not a 0.
    """

    name: str
    generate: Callable[[int, int, str], list[dict]]
    score: Callable[..., float]
    item_timeout: Callable[[dict], float]
    preload: tuple[str, ...] = ()
    lenient_forgives_format: bool = True   # False where the format is the answer (instruction following)
    blend_subsets: tuple[str, ...] = ()
    blend_verifier: Callable | None = None
    rewrite_prompt: Callable[[list[dict]], list[dict]] = field(default=lambda messages: messages)
    environment: Callable | None = None
    episode: Callable | None = None
    max_turns: Callable[[dict | None], int] | None = None
    check_ready: Callable[[dict], None] | None = None
    formatted: Callable[[str, dict], bool] | None = None  # the completion passes every format gate: lenient = strict


@cache
def registry() -> dict[str, Domain]:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        domain = getattr(module, "DOMAIN", None)
        if not isinstance(domain, Domain):
            raise TypeError(f"{module.__file__}: a domain module must define DOMAIN = Domain(...)")
        if domain.name in found:
            raise ValueError(f"{module.__file__}: domain {domain.name!r} is defined twice")
        check_hooks(domain, module.__file__)
        found[domain.name] = domain
    return dict(sorted(found.items()))


def check_hooks(domain: Domain, where: str) -> None:
    """A multi-turn domain sets all three of its hooks (training, evaluation and the turn limit), else none."""
    multi_turn = (domain.environment, domain.episode, domain.max_turns)
    if any(hook is None for hook in multi_turn) and any(hook is not None for hook in multi_turn):
        raise TypeError(f"{where}: domain {domain.name!r} is multi-turn only in part: set environment, episode "
                        "and max_turns together")


def domain_names() -> list[str]:
    return list(registry())


def get_domain(name: str) -> Domain:
    domains = registry()
    if name not in domains:
        raise KeyError(f"unknown domain {name!r}; known: {sorted(domains)}")
    return domains[name]
