"""Agent: multi-turn tool use (the study's fifth domain, §1.6). The tiny task is a task board with five tools
(``_taskboard``); the reward is 1 iff the final state equals the expected state. In training, TRL's own tool loop
runs the episodes (``GRPOTrainer(environment_factory=...)``, the environment's ``get_reward`` owns the reward);
in evaluation, ``mixmerge.evaluation.episodes`` runs the same tools, and a sample's text is its transcript (JSON
list of the assistant and tool messages), which ``score`` replays.

The tiny balance task needs the carry addition the math, code and science tasks share, so its SFT slip is the
same dropped carry. The study's agent rows (the blend's workplace-assistant subset) convert into rows here, but
their 27-tool environment is not part of mixmerge: scoring one raises and says so.
"""
from __future__ import annotations

import json
import random
from functools import partial

from mixmerge.domains import Domain
from mixmerge.domains._arith import carry_pairs, column_sum, pair_key
from mixmerge.domains._taskboard import TOOL_LIST, Episode, TaskBoard, check_state, empty_state
from mixmerge.domains._text import held_out
from mixmerge.domains._verifier import field
from mixmerge.verifiers.errors import ScoringError, VerifierError

NAME = "agent"
DEFAULT_MAX_TURNS = 6    # the study's agent loop: at most 6 model turns
NAMES = ["Tom", "Ana", "Li", "Sam", "Mia", "Raj", "Eva", "Kai"]
# Names and titles are quoted in the prompt as in a call's JSON, so the byte-level tokenizer splits them into the
# same tokens in both places (unquoted, " Li" and "Li" are different tokens) and a call copies them token by token.
# Each call takes one value: the tiny two-layer model copies a value over a short distance only.
TITLES = ["lamps", "maps", "drums", "kites", "boats", "books", "bikes", "tents"]
FINAL = "Done."
SYSTEM = {"role": "system", "content": TOOL_LIST}


def _call(tool: str, **arguments) -> str:
    """A call as the model writes it (and as the tiny chat template renders a parsed one)."""
    return f"<tool_call>{json.dumps({'name': tool, 'arguments': arguments})}</tool_call>"


def _transcript(reasoning: str, calls: list[str]) -> list[dict]:
    """Reference messages: the reasoning and one call per turn, each answered "ok", then the final answer."""
    out = []
    for i, call in enumerate(calls):
        content = f"<think>\n{reasoning}\n</think>\n" if i == 0 else ""
        out += [{"role": "assistant", "content": content + call}, {"role": "tool", "content": "ok"}]
    return out + [{"role": "assistant", "content": FINAL}]


def balance_task(a: int, b: int) -> tuple[str, dict, dict, list, list]:
    """(prompt, initial, expected, solution, flawed): the balance set to a two-digit sum; the slip drops the carry."""
    steps, total = column_sum(a, b)
    slip, wrong = column_sum(a, b, keep_carry=False)
    text = f"The balance is {a} coins and {b} more come in. Set the new balance."
    return (text, {**empty_state(), "balance": a}, {**empty_state(), "balance": total},
            _transcript(steps, [_call("set_balance", amount=total)]),
            _transcript(slip, [_call("set_balance", amount=wrong)]))


def board_task(rng: random.Random, split: str) -> tuple[str, dict, dict, list, list]:
    """(prompt, initial, expected, solution, flawed): a task added or finished, or an email sent. The prompt names a
    second value not to use, so the call has to copy the right one (a model that memorised which value goes with
    which tool cannot tell). One (kind, value, other) in ten is held out for evaluation; its value and tool are
    trained in other combinations, as the digits of a held-out math problem are. The slip claims the work done
    without calling the tool (what the study's agent prompt forbids)."""
    while True:
        kind = rng.choice(["add", "finish", "email"])
        value, other = rng.sample(NAMES + TITLES, 2)
        if held_out(f"{NAME}-board-{kind}-{value}-{other}") == (split == "eval"):
            break
    initial = empty_state()
    if kind == "add":
        text, call = f'Add the task "{value}", not "{other}".', _call("add_task", title=value)
        expected = {**empty_state(), "tasks": [value]}
    elif kind == "finish":
        text, call = f'The task "{value}" is finished, not "{other}".', _call("finish_task", title=value)
        initial, expected = {**empty_state(), "tasks": [other, value]}, {**empty_state(), "tasks": [other]}
    else:
        text, call = f'Send an email to "{value}", not "{other}".', _call("send_email", to=value)
        expected = {**empty_state(), "emails": [value]}
    return text, initial, expected, _transcript(kind, [call]), _transcript(kind, [])


def generate(n: int, seed: int, split: str) -> list[dict]:
    """Half balance tasks (held out by number pair, as in the other domains), half task-board tasks."""
    rng = random.Random(f"{NAME}-{split}-{seed}")
    pairs = [p for p in carry_pairs() if held_out(pair_key(*p)) == (split == "eval")]
    rng.shuffle(pairs)
    rows = []
    for i in range(n):
        if i % 2 == 0:
            a, b = pairs[(i // 2) % len(pairs)]
            text, initial, expected, solution, flawed = balance_task(a, b)
            source = f"tiny-synthetic:{NAME}:{pair_key(a, b)}"
        else:
            text, initial, expected, solution, flawed = board_task(rng, split)
            source = f"tiny-synthetic:{NAME}:board:{split}:{i}"
        rows.append({
            "id": f"{NAME}-{split}-{i}", "domain": NAME,
            "prompt": [SYSTEM, {"role": "user", "content": text}],
            "verifier": {"initial_state": initial, "expected_state": expected},
            "source": source,
            "solution": json.dumps(solution), "flawed_solution": json.dumps(flawed),
        })
    return rows


def max_turns(settings: dict | None) -> int:
    return int((settings or {}).get("agent_max_turns", DEFAULT_MAX_TURNS))


def score(completion: str, verifier: dict, *, lenient: bool = False, settings: dict | None = None) -> float:
    """Replay the transcript's assistant turns through a fresh environment (the live loop's own ``Episode``):
    1 iff the end state is the expected one and the episode ended within its turns. No format gate."""
    if isinstance(verifier, dict) and verifier.get("ground_truth") is not None:
        raise ScoringError("agent rows from the workplace-assistant blend need its 27-tool environment, which "
                           "mixmerge does not include; use the tiny agent task or add the environment")
    for name in ("initial_state", "expected_state"):
        state = field(verifier, name, dict, nonempty=False)
        try:
            check_state(state, name)
        except ValueError as err:
            raise VerifierError(name, str(err)) from None
    episode = Episode(verifier, max_turns(settings))
    try:
        messages = json.loads(completion)
    except json.JSONDecodeError:
        return 0.0
    if not isinstance(messages, list):
        return 0.0
    turns = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
    for turn in turns:  # a transcript cut by the token budget is still verified (the study's TRUNCATED)
        if not isinstance(turn, str) or episode.step(turn) is None:
            break
    return episode.reward()


def blend_verifier(rec, counters) -> dict:
    """The workplace-assistant rows: their ground-truth calls (each ``name`` + ``arguments``, a JSON string or an
    object), kept for an environment that can replay them."""
    calls = rec.get("ground_truth", list)
    out = []
    for i, call in enumerate(calls):
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise rec.fail(f"ground_truth[{i}]", "expected an object with a string 'name'")
        arguments = call.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError as err:
                raise rec.fail(f"ground_truth[{i}].arguments", f"malformed JSON ({err})") from None
        if not isinstance(arguments, dict):
            raise rec.fail(f"ground_truth[{i}].arguments", "expected an object")
        out.append({"name": call["name"], "arguments": arguments})
    return {"ground_truth": out}


def environment(settings: dict | None = None):
    """The TRL environment factory: a fresh ``TaskBoard`` whose call budget follows ``reward.agent_max_turns``."""
    return partial(TaskBoard, max_calls=max_turns(settings) - 1)


DOMAIN = Domain(
    name=NAME, generate=generate, score=score, item_timeout=lambda settings: 10.0, lenient_forgives_format=False,
    blend_subsets=("nano_v3_sft_profiled_workbench",), blend_verifier=blend_verifier, environment=environment,
    episode=lambda verifier, settings: Episode(verifier, max_turns(settings)), max_turns=max_turns,
    formatted=lambda completion, settings: True,
)
