"""``nvidia/Nemotron-3-Nano-RL-Training-Blend`` -> RL training rows per domain, as the study builds them.

The blend is one JSONL file; each line has ``dataset`` (the subset), ``responses_create_params.input`` (the
prompt messages) and the subset's verifier data: ``expected_answer`` (math answer, MCQ letter),
``instruction_id_list`` + ``kwargs`` (instruction following), ``verifier_metadata.unit_tests.{inputs,outputs}``
(code). Some prompts ship as placeholders that the blend's own ``create_nanov3_jsonl.py`` fills in; point
the config at the filled file (an empty prompt is reported as a bad row).

Subset -> domain and prompt rewrites follow the study's ``process_rl_data.py`` (study.md section 1.4).
"""
from __future__ import annotations

from collections import Counter

from mixmerge.data.sources import (Dropped, Record, convert, dedupe, drop_unverifiable_math,
                                   load_table, parse_json_line)
from mixmerge.data.sources.ids import unique_ids
from mixmerge.domains import get_domain, registry

HUB_ID = "nvidia/Nemotron-3-Nano-RL-Training-Blend"
DROP = "drop"
# Subsets the study does not use (the workplace-assistant subset belongs to the agent domain).
DROPPED_SUBSETS = ("nano_v3_sft_profiled_structured_outputs",)


def default_subsets() -> dict[str, str]:
    """The study's subset -> domain map, from the domains that claim blend subsets, plus the dropped ones."""
    subsets = {subset: DROP for subset in DROPPED_SUBSETS}
    for domain in registry().values():
        for subset in domain.blend_subsets:
            if subset in subsets:
                raise ValueError(f"blend subset {subset!r} is claimed by {subsets[subset]!r} and {domain.name!r}")
            subsets[subset] = domain.name
    return subsets


def _content(rec: Record, i: int, message) -> str:
    where = f"responses_create_params.input[{i}]"
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise rec.fail(where, "expected a message with a 'role'")
    content = message.get("content")
    if isinstance(content, list):  # Responses-API content parts
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") in ("input_text", "text")]
        if len(texts) != len(content) or not all(isinstance(t, str) for t in texts):
            raise rec.fail(f"{where}.content", "unsupported content parts (text only)")
        content = "".join(texts)
    if not isinstance(content, str):
        raise rec.fail(f"{where}.content", f"expected a string, got {type(content).__name__}")
    if not content.strip():
        raise rec.fail(f"{where}.content", "empty (an unfilled placeholder? run the blend's create_nanov3_jsonl.py)")
    return content


def prompt_messages(rec: Record) -> list[dict]:
    params = rec.get("responses_create_params", dict)
    messages = params.get("input")
    if not isinstance(messages, list) or not messages:
        raise rec.fail("responses_create_params.input", "expected a non-empty list of messages")
    return [{"role": m["role"], "content": _content(rec, i, m)} for i, m in enumerate(messages)]


class BlendConverter:
    def __init__(self, subsets: dict[str, str], domains: list[str], source_name: str):
        self.subsets, self.domains, self.source_name = subsets, set(domains), source_name
        self.counters = {"unsupported_instruction_ids": Counter()}
        self.per_subset: Counter = Counter()
        self.rewritten: Counter = Counter()

    def __call__(self, raw: Record) -> dict | Dropped:
        rec = parse_json_line(raw)
        subset = rec.text("dataset")
        if subset not in self.subsets:
            raise rec.fail("dataset", f"unknown subset {subset!r} (map it in data.rl_blend.subsets)")
        domain = self.subsets[subset]
        if domain == DROP:
            return Dropped(f"subset_dropped:{subset}")
        if domain not in self.domains:
            return Dropped(f"domain_not_selected:{domain}")
        messages = prompt_messages(rec)
        spec = get_domain(domain)
        if spec.blend_verifier is None:
            raise rec.fail("dataset", f"domain {domain!r} has no converter for blend rows")
        verifier = spec.blend_verifier(rec, self.counters)
        if isinstance(verifier, Dropped):
            return verifier
        prompt = spec.rewrite_prompt(messages)
        if prompt != messages:
            self.rewritten[domain] += 1
        index = rec.data.get("index", rec.index)
        self.per_subset[subset] += 1
        return {"id": f"{domain}-{subset.removeprefix('nano_v3_sft_profiled_')}-{index}", "domain": domain,
                "prompt": prompt, "verifier": verifier,
                "source": f"{self.source_name}:{subset}:{index}:line{rec.index}"}


def load_blend(spec: dict, domains: list[str], *, cache_dir: str | None = None) -> tuple[dict[str, list[dict]], dict]:
    """Rows per domain (deduplicated, not yet length-filtered) and the card's counts."""
    subsets = dict(spec.get("subsets") or default_subsets())
    table = load_table(spec["source"], cache_dir=cache_dir, text_lines=True)
    to_row = BlendConverter(subsets, domains, table.description)
    result = convert(table.records(), to_row, spec.get("skip_bad_rows", False))
    bad_golds = drop_unverifiable_math(result, table.description)
    result.rows, duplicates = dedupe(result.rows)
    unique_ids(result, table.description, spec.get("skip_bad_rows", False))  # field 'index' repeats in a subset
    rows = result.rows
    by_domain = {d: [r for r in rows if r["domain"] == d] for d in domains}
    card = {"source": table.info, "subsets": subsets, **result.card(),
            "converted_per_subset_before_dedupe": dict(sorted(to_row.per_subset.items())),
            "duplicates_dropped": duplicates,
            "unsupported_instruction_ids": dict(to_row.counters["unsupported_instruction_ids"].most_common()),
            "prompts_rewritten": dict(sorted(to_row.rewritten.items()))}
    if bad_golds:
        card["gold_fails_math_check_examples"] = bad_golds
    return by_domain, card
