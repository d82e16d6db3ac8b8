"""Score many completions across all cores, each under the domain's hard timeout."""
from __future__ import annotations

from mixmerge.verifiers import workers
from mixmerge.domains import get_domain


def _score_item(domain: str, completion: str, verifier: dict, settings: dict, lenient: bool) -> float:
    return get_domain(domain).score(completion, verifier, lenient=lenient, settings=settings)


def item_timeout(settings: dict) -> float:
    """Worst case for one item: the math timeout, or every selected code test's wall limit."""
    limits = settings.get("sandbox_limits", {})
    code_wall = float(limits.get("wall_s", 10)) * int(settings.get("max_tests", 20))
    return max(float(settings.get("math_timeout_s", 10)), code_wall) + 5


def score_many(domains: list[str], completions: list[str], verifiers: list[dict], settings: dict,
               lenient: bool = False) -> list[float]:
    items = [(d, c, v, settings, lenient) for d, c, v in zip(domains, completions, verifiers, strict=True)]
    return workers.score_batch(_score_item, items, item_timeout(settings), default=0.0)
