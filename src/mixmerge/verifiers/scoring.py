"""Score many completions across all cores, each item under its domain's hard timeout."""
from __future__ import annotations

from mixmerge.domains import get_domain, registry
from mixmerge.verifiers import workers


def _score_item(domain: str, completion: str, verifier: dict, settings: dict, lenient: bool) -> float:
    return get_domain(domain).score(completion, verifier, lenient=lenient, settings=settings)


def item_timeout(domains: set[str], settings: dict) -> float:
    """The batch's bound: the slowest of its domains' worst cases."""
    return max(get_domain(d).item_timeout(settings) for d in domains)


def score_many(domains: list[str], completions: list[str], verifiers: list[dict], settings: dict,
               lenient: bool = False) -> list[float]:
    items = [(d, c, v, settings, lenient) for d, c, v in zip(domains, completions, verifiers, strict=True)]
    if not items:
        return []
    workers.preload(module for domain in registry().values() for module in domain.preload)
    return workers.score_batch(_score_item, items, item_timeout(set(domains), settings), default=0.0)
