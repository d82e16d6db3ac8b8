"""Headroom after SFT: does RL have correctness left to gain in each domain?

The SFT model samples k responses to a slice of each domain's training prompts. Where pass@k is well above
avg@k the right answer is within reach but not reliable, which is what RL can fix; where the two are close there
is little to gain, and a warning names the domain. The format share (right answers in the rewarded format) tells
a format gain from a correctness gain before any RL runs."""
from __future__ import annotations

import json
import sys

from mixmerge import atomic
from mixmerge.data.rows import read_rows
from mixmerge.evaluation.avgk import score_groups, summarise
from mixmerge.evaluation.episodes import generate_rows
from mixmerge.verifiers.scoring import check_ready


def distinct_rows(path: str, count: int) -> list[dict]:
    """The first ``count`` rows with distinct problems (training repeats problems)."""
    seen, rows = set(), []
    for row in read_rows(path):
        if row["source"] not in seen:
            seen.add(row["source"])
            rows.append(row)
        if len(rows) == count:
            break
    return rows


def domain_headroom(items: list[dict], k: int, min_gap: float) -> dict:
    summary = summarise(items, k)
    strict = sum(s["score"] for it in items for s in it["samples"])
    lenient = sum(s["lenient"] for it in items for s in it["samples"])
    gap = summary["pass_at_k"] - summary["avg_at_k"]
    return {"n": summary["n"], "k": k, "avg_at_k": summary["avg_at_k"], "avg_at_k_stderr": summary["avg_at_k_stderr"],
            "pass_at_k": summary["pass_at_k"], "lenient_avg_at_k": summary["lenient_avg_at_k"],
            "format_share": strict / lenient if lenient else float("nan"), "gap": gap, "enough": gap >= min_gap}


def headroom(backend, train_files: dict[str, str], settings: dict, reward: dict, out_json: str) -> dict:
    """``settings``: items (per domain), k, min_gap and the sampling (temperature, top_p, max_new_tokens)."""
    k, min_gap = settings["k"], settings["min_gap"]
    rows = {domain: distinct_rows(path, settings["items"]) for domain, path in sorted(train_files.items())}
    check_ready(set(rows), reward)
    flat = [row for domain_rows in rows.values() for row in domain_rows]
    samples = generate_rows(backend, flat, k, settings, reward)
    items = score_groups(flat, samples, k, reward)
    result = {"settings": settings, "domains": {}}
    for domain in rows:
        found = domain_headroom([it for it in items if it["domain"] == domain], k, min_gap)
        result["domains"][domain] = found
        print(f"headroom {domain}: avg@{k} {found['avg_at_k']:.3f}, pass@{k} {found['pass_at_k']:.3f}, "
              f"gap {found['gap']:.3f}, format share {found['format_share']:.3f} (n={found['n']})", file=sys.stderr)
        if not found["enough"]:
            print(f"WARNING: domain {domain!r} has little headroom after SFT: pass@{k} - avg@{k} = "
                  f"{found['gap']:.3f} < {min_gap}; RL has little correctness to gain there", file=sys.stderr)
    atomic.write_text(out_json, json.dumps(result, indent=2))
    return result
