"""The tiny agent domain's environment: five tools over a dict state (a task list, sent emails, a coin balance).

Tools are plain methods with typed, documented arguments (TRL builds their JSON schemas from the signature and
the docstring). Every argument is validated before the state changes; nothing a model writes is executed as code.
``Episode`` is the one tool loop over assistant turns, shared by the live evaluation and the scorer's replay, so a
transcript scores the same in both.
"""
from __future__ import annotations

import copy
import inspect
import json
import re

from mixmerge.domains._text import THINK_CLOSE

NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z ]{0,23}")
MAX_AMOUNT = 10_000
STATE_CAP = 32           # entries over all tables: past it, the episode ends with reward 0
TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
OPEN_TAG = "<tool_call>"


class ToolError(ValueError):
    """A call the environment refuses: its message is the tool turn the model reads next."""


def empty_state() -> dict:
    return {"tasks": [], "emails": [], "balance": 0}


def check_state(state, where: str) -> dict:
    """A state from a row's verifier, checked (a malformed one is a data error, raised as ValueError)."""
    if not isinstance(state, dict) or set(state) != {"tasks", "emails", "balance"}:
        raise ValueError(f"{where}: expected an object with keys tasks, emails, balance, got {state!r:.100}")
    for key in ("tasks", "emails"):
        if not (isinstance(state[key], list) and all(isinstance(v, str) for v in state[key])):
            raise ValueError(f"{where}.{key}: expected a list of strings")
    if not isinstance(state["balance"], int) or isinstance(state["balance"], bool):
        raise ValueError(f"{where}.balance: expected an integer")
    return state


def _name(value, field: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise ToolError(f"{field} must be a name of 1-24 letters and spaces")
    return value


class TaskBoard:
    """The environment: ``reset`` from a row, the tools, and ``get_reward`` (1 iff the state equals the expected
    state and the episode ended within its call budget). ``max_calls``: tool calls allowed in one episode (the
    study's 6 model turns = 5 calls and a final answer); one more ends the episode with reward 0."""

    def __init__(self, max_calls: int = 5):
        self.max_calls = max_calls
        self.state, self.expected, self.calls, self.cut = empty_state(), empty_state(), 0, False

    def reset(self, verifier=None, **row) -> None:
        spec = json.loads(verifier) if isinstance(verifier, str) else verifier
        self.state = copy.deepcopy(check_state(spec["initial_state"], "verifier.initial_state"))
        self.expected = check_state(spec["expected_state"], "verifier.expected_state")
        self.calls, self.cut = 0, False
        return None

    def get_reward(self) -> float:
        return float(not self.cut and self.state == self.expected)

    def _count_call(self) -> None:
        self.calls += 1
        if self.calls > self.max_calls:
            self.cut = True
        if self.cut:
            raise ToolError("the episode is over: too many tool calls")

    def _grow(self) -> None:
        if len(self.state["tasks"]) + len(self.state["emails"]) >= STATE_CAP:
            self.cut = True
            raise ToolError("the episode is over: the state is full")

    def add_task(self, title: str) -> str:
        """Add a task to the list.

        Args:
            title: The task's title.
        """
        self._count_call()
        title = _name(title, "title")
        self._grow()
        self.state["tasks"].append(title)
        return "ok"

    def finish_task(self, title: str) -> str:
        """Remove a finished task from the list.

        Args:
            title: The task's title.
        """
        self._count_call()
        title = _name(title, "title")
        if title not in self.state["tasks"]:
            raise ToolError("no such task")
        self.state["tasks"].remove(title)
        return "ok"

    def send_email(self, to: str) -> str:
        """Send an email.

        Args:
            to: The recipient.
        """
        self._count_call()
        to = _name(to, "to")
        self._grow()
        self.state["emails"].append(to)
        return "ok"

    def get_balance(self) -> str:
        """Read the coin balance."""
        self._count_call()
        return str(self.state["balance"])

    def set_balance(self, amount: int) -> str:
        """Set the coin balance.

        Args:
            amount: The new balance.
        """
        self._count_call()
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= MAX_AMOUNT:
            raise ToolError(f"amount must be an integer from 0 to {MAX_AMOUNT}")
        self.state["balance"] = amount
        return "ok"


TOOLS = ("add_task", "finish_task", "send_email", "get_balance", "set_balance")
TOOL_LIST = "Tools: add_task(title); finish_task(title); send_email(to); get_balance(); set_balance(amount)."


def parse_calls(turn: str) -> tuple[list[dict], int]:
    """(well-formed calls, malformed count) in one assistant turn: each ``<tool_call>`` block after the last
    ``</think>`` must hold a JSON object with a string ``name`` and an object ``arguments``; an unclosed block is
    malformed too."""
    text = turn.rsplit(THINK_CLOSE, 1)[1] if THINK_CLOSE in turn else turn
    calls, malformed = [], 0
    for block in TOOL_CALL.findall(text):
        try:
            call = json.loads(block)
        except json.JSONDecodeError:
            malformed += 1
            continue
        if isinstance(call, dict) and isinstance(call.get("name"), str) and isinstance(call.get("arguments"), dict):
            calls.append(call)
        else:
            malformed += 1
    malformed += TOOL_CALL.sub("", text).count(OPEN_TAG)
    return calls, malformed


class Episode:
    """One episode of the tool loop. ``step(assistant_text)`` runs the turn's calls and returns the tool messages
    to show next, or None when the episode is over (no call: the model's final answer; or cut)."""

    def __init__(self, verifier, max_turns: int):
        self.env = TaskBoard(max_calls=max_turns - 1)
        self.env.reset(verifier)
        self.turns, self.malformed, self.failed = 0, 0, 0

    def step(self, text: str) -> list[dict] | None:
        self.turns += 1
        calls, malformed = parse_calls(text)
        self.malformed += malformed
        if not calls and not malformed:
            return None
        messages = [{"role": "tool", "name": "error", "content": "error: malformed tool call"}] * malformed
        for call in calls:
            messages.append({"role": "tool", "name": call["name"], "content": self._run(call)})
        if self.env.cut or self.turns >= self.env.max_calls + 1:
            self.env.cut = True
            return None
        return messages

    def _run(self, call: dict) -> str:
        name, arguments = call["name"], call["arguments"]
        try:
            if name not in TOOLS:
                raise ToolError("unknown tool")
            method = getattr(self.env, name)
            try:
                inspect.signature(method).bind(**arguments)
            except TypeError:
                raise ToolError(f"{name} takes ({', '.join(inspect.signature(method).parameters)})") from None
            return method(**arguments)
        except ToolError as err:
            self.failed += 1
            return f"error: {err}"

    def reward(self) -> float:
        return self.env.get_reward()
