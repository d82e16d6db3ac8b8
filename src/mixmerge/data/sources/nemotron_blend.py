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

from mixmerge.data.sources import (DataError, Dropped, Record, convert, dedupe, drop_unverifiable_math, load_table,
                              parse_json_line)

HUB_ID = "nvidia/Nemotron-3-Nano-RL-Training-Blend"
DROP = "drop"
# The study's mapping; "drop" = not used (structured outputs; the agent subset has no domain here).
SUBSETS = {
    "nano_v3_sft_profiled_dapo17k": "math",
    "nano_v3_sft_profiled_skywork_no_omni": "math",
    "nano_v3_sft_profiled_stem_mcqa": "science",
    "nano_v3_sft_profiled_instruction_following": "instruct",
    "nano_v3_sft_profiled_comp_coding_50tests": "code",
    "nano_v3_sft_profiled_structured_outputs": DROP,
    "nano_v3_sft_profiled_workbench": DROP,
}
MATH_PREFIX = ("Solve the following math problem step by step. The last line of your response should be of "
               "the form Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n")
MCQ_LEAD = "Answer the following multiple choice question."
MCQ_LEAD_STEPS = "Answer the following multiple choice question step by step."
TRAIN_LETTERS = "ABCDEFGH"  # the study's default: training rows carry no valid_letters


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


def math_verifier(rec: Record) -> dict:
    return {"answer": rec.text("expected_answer")}


def science_verifier(rec: Record) -> dict | Dropped:
    letter = rec.text("expected_answer")
    if len(letter) != 1 or not letter.isupper():
        raise rec.fail("expected_answer", f"expected one capital letter, got {letter!r}")
    if letter not in TRAIN_LETTERS:
        return Dropped("answer_letter_outside_A-H")
    return {"correct_letter": letter, "valid_letters": TRAIN_LETTERS}


def instruction_verifier(rec: Record, unsupported: Counter) -> dict | Dropped:
    from mixmerge.data.sources.ifcheck import check_instructions

    ids = rec.get("instruction_id_list", list)
    kwargs = rec.get("kwargs", list)
    return check_instructions(rec, ids, kwargs, unsupported)


def code_verifier(rec: Record) -> dict:
    meta = rec.get("verifier_metadata", dict)
    tests = meta.get("unit_tests")
    if not isinstance(tests, dict):
        raise rec.fail("verifier_metadata.unit_tests", "missing")
    inputs, outputs = tests.get("inputs"), tests.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list) or not inputs:
        raise rec.fail("verifier_metadata.unit_tests", "expected non-empty lists 'inputs' and 'outputs'")
    if len(inputs) != len(outputs):
        raise rec.fail("verifier_metadata.unit_tests", f"{len(inputs)} inputs but {len(outputs)} outputs")
    if not all(isinstance(x, str) for x in inputs + outputs):
        raise rec.fail("verifier_metadata.unit_tests", "inputs and outputs must be strings")
    return {"tests": [{"stdin": i, "stdout": o} for i, o in zip(inputs, outputs)]}


def rewrite(domain: str, messages: list[dict]) -> list[dict]:
    """The study's prompt rewrites, on the first message."""
    first = dict(messages[0])
    if domain == "math":
        first["content"] = MATH_PREFIX + first["content"]
    elif domain == "science" and first["content"].startswith(MCQ_LEAD):
        first["content"] = MCQ_LEAD_STEPS + first["content"][len(MCQ_LEAD):]
    return [first, *messages[1:]]


class BlendConverter:
    def __init__(self, subsets: dict[str, str], domains: list[str], source_name: str):
        self.subsets, self.domains, self.source_name = subsets, set(domains), source_name
        self.unsupported_ids: Counter = Counter()
        self.per_subset: Counter = Counter()
        self.science_rewritten = 0

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
        verifier = {"math": math_verifier, "science": science_verifier, "code": code_verifier,
                    "instruct": lambda r: instruction_verifier(r, self.unsupported_ids)}[domain](rec)
        if isinstance(verifier, Dropped):
            return verifier
        prompt = rewrite(domain, messages)
        if domain == "science" and prompt[0]["content"] != messages[0]["content"]:
            self.science_rewritten += 1
        index = rec.data.get("index", rec.index)
        self.per_subset[subset] += 1
        return {"id": f"{domain}-{subset.removeprefix('nano_v3_sft_profiled_')}-{index}", "domain": domain,
                "prompt": prompt, "verifier": verifier,
                "source": f"{self.source_name}:{subset}:{index}:line{rec.index}"}


def load_blend(spec: dict, domains: list[str], *, cache_dir: str | None = None) -> tuple[dict[str, list[dict]], dict]:
    """Rows per domain (deduplicated, not yet length-filtered) and the card's counts."""
    subsets = dict(spec.get("subsets") or SUBSETS)
    table = load_table(spec["source"], cache_dir=cache_dir, text_lines=True)
    to_row = BlendConverter(subsets, domains, table.description)
    result = convert(table.records(), to_row, spec.get("skip_bad_rows", False))
    bad_golds = drop_unverifiable_math(result, table.description)
    rows, duplicates = dedupe(result.rows)
    by_domain = {d: [r for r in rows if r["domain"] == d] for d in domains}
    card = {"source": table.info, "subsets": subsets, **result.card(),
            "converted_per_subset_before_dedupe": dict(sorted(to_row.per_subset.items())),
            "duplicates_dropped": duplicates,
            "unsupported_instruction_ids": dict(to_row.unsupported_ids.most_common()),
            "science_prompts_rewritten": to_row.science_rewritten}
    if bad_golds:
        card["gold_fails_math_check_examples"] = bad_golds
    clash = [i for i, n in Counter(r["id"] for r in rows).items() if n > 1]
    if clash:
        raise DataError(f"{table.description}: duplicate row id {clash[0]!r} (field 'index' repeats in a subset)")
    return by_domain, card
