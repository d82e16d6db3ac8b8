"""Errors scoring must not turn into a zero: a malformed verifier (data) and a missing sandbox (set-up)."""
from __future__ import annotations


class ScoringError(Exception):
    """Raised by a scorer for a problem that is not the model's: the worker pool re-raises it in the caller."""


class VerifierError(ScoringError, ValueError):
    """A malformed verifier (missing key, empty or wrongly shaped tests): a data error, never a score of 0.

    ``field`` names the verifier field; ``item`` the row id once the caller knows it (``with_item``)."""

    def __init__(self, field: str, problem: str, item: str | None = None) -> None:
        self.field, self.problem, self.item = field, problem, item
        where = f"item {item!r}: " if item is not None else ""
        super().__init__(f"{where}verifier field {field!r}: {problem}")

    def with_item(self, item) -> "VerifierError":
        return VerifierError(self.field, self.problem, str(item))

    def __reduce__(self):
        return VerifierError, (self.field, self.problem, self.item)


class SandboxUnavailable(ScoringError, RuntimeError):
    """No strong local sandbox here: code scoring refuses to start (the message says what to do instead)."""
