"""LLM judge for answers no rule can check (HLE's free-form exact-match answers).

A judged row carries ``verifier = {"judge": {"question": ..., "reference": ...}}``. The benchmark's ``judge``
block names the judge model (any chat model, served by the eval backend after the evaluated model is released),
the prompt (``{question}``, ``{reference}``, ``{response}``, filled in one pass so a response cannot smuggle in
the reference), the sampling and the verdict format.

What the judge sees of a sample: the answer after the last ``</think>`` (the whole text, think tag removed, when
the reasoning is never closed), its last ``max_response_chars`` characters. One judgement per sample scores it
twice: lenient = the verdict; strict = the verdict when the reasoning gate of the reward settings passes, else 0
(as the rule-based scorers gate their strict score).

Parse rule for the judge's output (anything else is unparsable: counted, and scored as wrong):
  * the judge finished by itself (an output cut at ``max_new_tokens`` is unparsable);
  * the judge's own reasoning, up to its last ``</think>``, is ignored;
  * exactly one line fully matches ``verdict_pattern`` (case-insensitive), and it is the last non-empty line;
    its first group equals ``verdict_yes`` or ``verdict_no``. A second verdict line (an echoed verdict planted in
    the judged response, or a judge changing its mind) makes the output unparsable, never a pass.
"""
from __future__ import annotations

import re

from mixmerge.domains._text import final_answer

KEY = "judge"
PLACEHOLDER = re.compile(r"\{(question|reference|response)\}")
CUT_MARK = "[... start of the response omitted ...]\n"
VERDICTS = {True: "correct", False: "incorrect", None: "unparsable"}


def is_judged(row: dict) -> bool:
    return KEY in row["verifier"]


def check_settings(settings: dict, where: str) -> None:
    """Raise ValueError naming the key when the verdict pattern cannot work or the prompt lacks a placeholder."""
    try:
        groups = re.compile(settings["verdict_pattern"]).groups
    except re.error as err:
        raise ValueError(f"config key '{where}.verdict_pattern': not a regular expression ({err})") from None
    if groups < 1:
        raise ValueError(f"config key '{where}.verdict_pattern': needs a group capturing the verdict word")
    missing = {"question", "reference", "response"} - set(PLACEHOLDER.findall(settings["prompt"]))
    if missing:
        raise ValueError(f"config key '{where}.prompt': lacks {{{sorted(missing)[0]}}}")
    if settings["verdict_yes"].lower() == settings["verdict_no"].lower():
        raise ValueError(f"config key '{where}.verdict_no': the same word as verdict_yes")


def check_cell(rows: list[dict], name: str, bench: dict, data: str) -> None:
    """Before any model loads: rows for a judge need the benchmark's judge block, and it must be usable."""
    needing = sum(is_judged(row) for row in rows)
    if needing and not bench.get(KEY):
        raise ValueError(f"{data}: {needing} rows need an LLM judge, but benchmark {name!r} has no 'judge' block "
                         f"(config key 'benchmarks.{name}.judge')")
    if needing:
        check_settings(bench[KEY], f"benchmarks.{name}.judge")


def judge_prompt(template: str, question: str, reference: str, response: str) -> list[dict]:
    """One user turn: the template with its placeholders filled in one pass (placeholders inside the values
    stay as written)."""
    values = {"question": question, "reference": reference, "response": response}
    return [{"role": "user", "content": PLACEHOLDER.sub(lambda m: values[m.group(1)], template)}]


def shown_answer(text: str, max_chars: int) -> str:
    """The part of a response the judge reads: its final answer (see the module docstring), tail kept."""
    answer = final_answer(text, require_think=False).strip()
    return answer if len(answer) <= max_chars else CUT_MARK + answer[-max_chars:]


def parse_verdict(output: str, finish_reason: str, pattern: str, yes: str, no: str) -> bool | None:
    """True (judged correct), False (judged wrong) or None (unparsable), by the module's parse rule."""
    if finish_reason == "length":
        return None
    own = output.rsplit("</think>", 1)[-1]
    lines = [line.strip() for line in own.splitlines() if line.strip()]
    verdict = re.compile(pattern, re.IGNORECASE)
    matches = [i for i, line in enumerate(lines) if verdict.fullmatch(line)]
    if len(matches) != 1 or matches[0] != len(lines) - 1:
        return None
    word = verdict.fullmatch(lines[-1]).group(1).strip().lower()
    return True if word == yes.lower() else False if word == no.lower() else None


def judge_outputs(prompts: list[list[dict]], settings: dict, eval_cfg: dict, threads: int | None) -> list:
    """The judge model's one sample per prompt, served by the eval backend; released before returning."""
    from mixmerge.evaluation.generation import make_backend

    engine = {**(eval_cfg.get("vllm") or {}), **(settings.get("vllm") or {})}
    backend = make_backend(eval_cfg["backend"], settings["model"], settings.get("batch_size", eval_cfg["batch_size"]),
                           settings["seed"], threads, engine)
    sampling = {key: settings[key] for key in ("temperature", "top_p", "max_new_tokens")}
    try:
        return [group[0] for group in backend.generate(prompts, 1, sampling)]
    finally:
        backend.close()


def judge_samples(cases: list[tuple[dict, str]], settings: dict, reward: dict, eval_cfg: dict,
                  threads: int | None = None) -> tuple[list[float], list[float], list[dict]]:
    """(strict, lenient, judge record) per (verifier, response) case, in order."""
    prompts = [judge_prompt(settings["prompt"], v[KEY]["question"], v[KEY]["reference"],
                            shown_answer(text, settings["max_response_chars"])) for v, text in cases]
    outputs = judge_outputs(prompts, settings, eval_cfg, threads) if prompts else []
    gate = reward.get("require_think", True)
    strict, lenient, records = [], [], []
    for (_, text), out in zip(cases, outputs, strict=True):
        verdict = parse_verdict(out.text, out.finish_reason, settings["verdict_pattern"], settings["verdict_yes"],
                                settings["verdict_no"])
        lenient.append(1.0 if verdict is True else 0.0)
        strict.append(lenient[-1] if final_answer(text, require_think=gate) is not None else 0.0)
        records.append({"verdict": VERDICTS[verdict], "output": out.text, "finish_reason": out.finish_reason})
    return strict, lenient, records


def summary(settings: dict, records: list[dict], n_items: int) -> dict:
    """The counts reported with the benchmark's results."""
    count = lambda word: sum(r["verdict"] == word for r in records)  # noqa: E731
    return {"model": settings["model"], "items": n_items, "samples_judged": len(records),
            "judged_correct": count("correct"), "judged_incorrect": count("incorrect"),
            "unparsable": count("unparsable"),
            "unparsable_rule": "no single verdict line ending a finished judge output; scored as wrong"}
