"""The agent domain: its tools with valid and invalid arguments, the state-match reward, the turn limit, malformed
calls, the evaluation's tool loop and the scorer's replay of its transcripts."""
import json

import pytest

from mixmerge.domains import get_domain
from mixmerge.domains._taskboard import STATE_CAP, Episode, TaskBoard, empty_state, parse_calls
from mixmerge.evaluation.episodes import generate_rows, run_episodes
from mixmerge.evaluation.sample import Sample
from mixmerge.verifiers.errors import ScoringError, VerifierError

AGENT = get_domain("agent")


def board(**state) -> TaskBoard:
    env = TaskBoard(max_calls=5)
    env.reset({"initial_state": {**empty_state(), **state}, "expected_state": empty_state()})
    return env


def call(tool: str, **arguments) -> str:
    return f'<tool_call>{json.dumps({"name": tool, "arguments": arguments})}</tool_call>'


def transcript(*turns: str) -> str:
    return json.dumps([{"role": "assistant", "content": t} for t in turns])


@pytest.mark.parametrize("tool, valid, changed, invalid", [
    ("add_task", {"title": "maps"}, {"tasks": ["kites", "maps"]},
     [{"title": "x; rm -rf /"}, {"title": 3}, {"title": ""}, {"title": "a" * 30}]),
    ("finish_task", {"title": "kites"}, {"tasks": []}, [{"title": "maps"}, {"title": ["kites"]}]),
    ("send_email", {"to": "Mia"}, {"tasks": ["kites"], "emails": ["Mia"]}, [{"to": "a" * 30}, {"to": None}]),
    ("set_balance", {"amount": 85}, {"tasks": ["kites"], "balance": 85},
     [{"amount": "85"}, {"amount": -1}, {"amount": 10**6}, {"amount": True}, {"amount": 8.5}]),
])
def test_each_tool_changes_the_state_on_valid_arguments_and_refuses_invalid_ones(tool, valid, changed, invalid):
    env = board(tasks=["kites"])
    assert getattr(env, tool)(**valid) == "ok"
    assert env.state == {**empty_state(), **changed}
    for arguments in invalid:
        env = board(tasks=["kites"])
        before = json.dumps(env.state)
        with pytest.raises(ValueError):
            getattr(env, tool)(**arguments)
        assert json.dumps(env.state) == before   # a refused call changes nothing


def test_get_balance_reads_the_state():
    env = board(balance=37)
    assert env.get_balance() == "37" and env.state["balance"] == 37


def test_wrong_argument_names_and_unknown_tools_are_answered_not_raised():
    episode = Episode({"initial_state": empty_state(), "expected_state": empty_state()}, max_turns=6)
    answers = episode.step(call("set_balance", person="Ana", amount=3) + call("exec", code="import os")
                           + call("__init__", max_calls=99))
    assert [a["content"] for a in answers] == ["error: set_balance takes (amount)", "error: unknown tool",
                                               "error: unknown tool"]
    assert episode.failed == 3 and episode.env.max_calls == 5


def test_reward_is_one_exactly_when_the_end_state_matches():
    rows = AGENT.generate(40, 0, "train")
    for row in rows:
        assert AGENT.score(row["solution"], row["verifier"]) == 1.0   # the reference transcript, replayed
        assert AGENT.score(row["flawed_solution"], row["verifier"]) == 0.0
    extra = {"initial_state": empty_state(), "expected_state": {**empty_state(), "balance": 5}}
    assert AGENT.score(transcript(call("set_balance", amount=5), "Done."), extra) == 1.0
    both = call("set_balance", amount=5) + call("send_email", to="Ana")
    assert AGENT.score(transcript(both, "Done."), extra) == 0.0   # one change too many
    assert AGENT.score(transcript("Done."), extra) == 0.0     # nothing done
    for junk in ["", "not json", "{}", "[1, 2]", json.dumps([{"role": "assistant", "content": 5}])]:
        assert AGENT.score(junk, extra) == 0.0


def test_an_episode_that_never_stops_is_cut_at_the_turn_limit_and_scores_zero():
    verifier = {"initial_state": empty_state(), "expected_state": {**empty_state(), "balance": 5}}
    episode = Episode(verifier, max_turns=6)
    turns = 0
    while episode.step(call("set_balance", amount=5)) is not None:
        turns += 1
    assert turns == 5 and episode.turns == 6 and episode.env.cut and episode.reward() == 0.0
    assert AGENT.score(transcript(*[call("set_balance", amount=5)] * 9), verifier) == 0.0
    # TRL's loop sees the environment alone: the call past its budget ends the episode with reward 0
    env = TaskBoard(max_calls=5)
    env.reset(json.dumps(verifier))
    for _ in range(5):
        env.set_balance(amount=5)
    assert env.get_reward() == 1.0
    with pytest.raises(ValueError, match="too many"):
        env.set_balance(amount=5)
    assert env.get_reward() == 0.0


def test_a_state_past_its_cap_ends_the_episode():
    env = board()
    with pytest.raises(ValueError, match="full"):
        for i in range(STATE_CAP + 1):
            env.max_calls = 10**6
            env.send_email(to="x" * (1 + i % 20))
    assert env.cut and env.get_reward() == 0.0 and len(env.state["emails"]) == STATE_CAP


def test_malformed_calls_are_counted_and_answered():
    assert parse_calls('<tool_call>{"name": "set_balance", "arguments": {"amount": 1</tool_call>') == ([], 1)
    assert parse_calls('<tool_call>[1, 2]</tool_call><tool_call>{"name": 1, "arguments": {}}</tool_call>') == ([], 2)
    assert parse_calls('<tool_call>{"name": "get_balance", "arguments": {}}') == ([], 1)   # unclosed
    assert parse_calls(f'<think>{call("exec")}</think>Done.') == ([], 0)   # calls are read after </think>
    episode = Episode({"initial_state": empty_state(), "expected_state": empty_state()}, max_turns=6)
    answers = episode.step('<tool_call>{"name": </tool_call>')
    assert answers == [{"role": "tool", "name": "error", "content": "error: malformed tool call"}]
    assert episode.malformed == 1 and episode.step("Done.") is None and episode.reward() == 1.0


def test_malformed_verifiers_are_data_errors_and_blend_rows_need_their_environment():
    with pytest.raises(VerifierError, match="initial_state"):
        AGENT.score("[]", {"expected_state": empty_state()})
    with pytest.raises(VerifierError, match="initial_state"):
        AGENT.score("[]", {"initial_state": {"tasks": {}}, "expected_state": empty_state()})
    with pytest.raises(ScoringError, match="27-tool"):
        AGENT.score("[]", {"ground_truth": [{"name": "email_send_email", "arguments": {}}]})


class ScriptedBackend:
    """Answers each conversation by its number of tool answers so far: a script per episode."""

    def __init__(self, script: list[str]):
        self.script, self.calls = script, []

    def generate(self, prompts, k, sampling, progress=None):
        self.calls.append((len(prompts), k, sampling["max_new_tokens"]))
        out = []
        for prompt in prompts:
            turn = sum(m["role"] == "assistant" for m in prompt)
            out.append([Sample(self.script[min(turn, len(self.script) - 1)], "stop", 10) for _ in range(k)])
        return out


def test_evaluation_runs_the_tool_loop_and_keeps_the_whole_transcript():
    row = AGENT.generate(1, 0, "eval")[0]
    amount = row["verifier"]["expected_state"]["balance"]
    backend = ScriptedBackend(['<tool_call>{"name": oops}</tool_call>', call("set_balance", amount=amount), "Done."])
    [[first, second]] = run_episodes(backend, [row], 2, {"max_new_tokens": 80}, {"agent_max_turns": 6})
    assert first.extra == {"turns": 3, "malformed_calls": 1, "failed_calls": 0} and first.num_tokens == 30
    messages = json.loads(first.text)
    assert [m["role"] for m in messages] == ["assistant", "tool", "assistant", "tool", "assistant"]
    assert messages[1]["content"] == "error: malformed tool call" and messages[3]["content"] == "ok"
    assert AGENT.score(first.text, row["verifier"]) == 1.0 == AGENT.score(second.text, row["verifier"])
    # the budget is shared by the turns: each later call asks for what is left
    assert backend.calls == [(1, 2, 80), (2, 1, 70), (2, 1, 60)]


def test_a_looping_model_is_cut_by_turns_and_an_exhausted_budget_ends_the_episode():
    row = AGENT.generate(1, 0, "eval")[0]
    looping = ScriptedBackend([call("get_balance")])
    [[sample]] = run_episodes(looping, [row], 1, {"max_new_tokens": 1000}, {"agent_max_turns": 6})
    assert sample.extra["turns"] == 6 and AGENT.score(sample.text, row["verifier"]) == 0.0
    [[short]] = run_episodes(looping, [row], 1, {"max_new_tokens": 25}, {"agent_max_turns": 6})
    assert short.finish_reason == "length" and short.extra["turns"] == 3


def test_rows_of_single_turn_domains_are_generated_in_one_call():
    rows = [get_domain("math").generate(1, 0, "eval")[0], AGENT.generate(1, 0, "eval")[0]]
    backend = ScriptedBackend(["Done."])
    groups = generate_rows(backend, rows, 2, {"max_new_tokens": 48}, {"agent_max_turns": 6})
    assert backend.calls == [(1, 2, 48), (1, 2, 48)] and groups[0][0].text == "Done." and groups[0][0].extra is None
    assert json.loads(groups[1][0].text) == [{"role": "assistant", "content": "Done."}]


def test_tiny_rows_hold_balance_tasks_out_by_number_pair_like_the_other_domains():
    train, held_out = AGENT.generate(400, 0, "train"), AGENT.generate(64, 0, "eval")
    assert not {r["source"] for r in train} & {r["source"] for r in held_out}
    math_eval = {r["source"].split(":")[-1] for r in get_domain("math").generate(500, 0, "eval")}
    agent_pairs = {r["source"].split(":")[-1].removeprefix("sum-") for r in held_out if "sum-" in r["source"]}
    assert agent_pairs and agent_pairs <= math_eval
    assert all(r["prompt"][0]["role"] == "system" and "set_balance" in r["prompt"][0]["content"] for r in held_out)


def test_no_think_gate_for_the_agent_as_in_the_study():
    row = AGENT.generate(1, 0, "eval")[0]
    turns = json.loads(row["solution"])
    turns[0]["content"] = turns[0]["content"].split("</think>", 1)[1]
    assert AGENT.score(json.dumps(turns), row["verifier"]) == 1.0 == AGENT.score(row["solution"], row["verifier"])


def test_sft_trains_on_the_whole_reference_transcript():
    from mixmerge.data.rows import write_rows
    from mixmerge.training.sft import sft_examples
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        write_rows(AGENT.generate(20, 0, "train"), Path(tmp) / "agent.parquet")
        examples = sft_examples({"agent": str(Path(tmp) / "agent.parquet")}, 20, 0.5, 0)
    roles = {tuple(m["role"] for m in e["completion"]) for e in examples}
    assert ("assistant", "tool", "assistant") in roles and ("assistant",) in roles   # reference, and the slip
    assert all(e["prompt"][0]["role"] == "system" for e in examples)
