"""Score many completions across all cores, each item under its domain's hard timeout."""
from __future__ import annotations

import json

from mixmerge.domains import get_domain, registry
from mixmerge.verifiers import workers
from mixmerge.verifiers.errors import VerifierError


def _score_item(domain: str, completion: str, verifier: dict, settings: dict, lenient: bool) -> float:
    return get_domain(domain).score(completion, verifier, lenient=lenient, settings=settings)


def item_timeout(domains: set[str], settings: dict) -> float:
    """The batch's bound: the slowest of its domains' worst cases."""
    return max(get_domain(d).item_timeout(settings) for d in domains)


def check_ready(domains, settings: dict) -> None:
    """Raise (``SandboxUnavailable``, ...) unless every domain's scorer can run here; call before any work."""
    for name in sorted(set(domains)):
        domain = get_domain(name)
        if domain.check_ready:
            domain.check_ready(settings)


def score_many(domains: list[str], completions: list[str], verifiers: list[dict], settings: dict,
               lenient: bool = False, ids: list | None = None) -> list[float]:
    """Rewards in order. Model output never raises (bad output scores 0); a malformed verifier raises
    ``VerifierError`` naming the item (``ids[i]``, else its index) and the field."""
    items = [(d, c, v, settings, lenient) for d, c, v in zip(domains, completions, verifiers, strict=True)]
    if not items:
        return []
    check_ready(domains, settings)
    workers.preload(module for domain in registry().values() for module in domain.preload)
    # A group of samples often repeats a completion word for word: each distinct (domain, text, verifier) is
    # scored once, which for code is one sandbox run fewer per repeat.
    keys = [json.dumps(item[:3], sort_keys=True) for item in items]
    first_index: dict[str, int] = {}
    for index, key in enumerate(keys):
        first_index.setdefault(key, index)
    distinct = list(first_index.values())
    try:
        scores = workers.score_batch(_score_item, [items[i] for i in distinct],
                                     item_timeout(set(domains), settings), default=0.0)
    except VerifierError as err:
        index = getattr(err, "item_index", None)
        item = ids[distinct[index]] if ids is not None and index is not None else f"#{index}"
        raise err.with_item(item) from None
    by_key = dict(zip(first_index, scores))
    return [by_key[key] for key in keys]
