"""Checks every scorer runs on its row's verifier before reading the completion: a malformed verifier is a data
error (``VerifierError`` naming the field), never a score of 0."""
from __future__ import annotations

from mixmerge.verifiers.errors import VerifierError


def field(verifier, name: str, types: type | tuple, *, nonempty: bool = True):
    """``verifier[name]``, checked to be present, of ``types`` and (``nonempty``) not empty."""
    if not isinstance(verifier, dict):
        raise VerifierError("<verifier>", f"expected an object, got {type(verifier).__name__}")
    if verifier.get(name) is None:
        raise VerifierError(name, f"missing (keys: {sorted(verifier)})")
    value = verifier[name]
    if not isinstance(value, types) or isinstance(value, bool) and bool not in (types if isinstance(types, tuple)
                                                                                else (types,)):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise VerifierError(name, f"expected {names}, got {type(value).__name__}")
    if nonempty and isinstance(value, (str, list, dict)) and not (value.strip() if isinstance(value, str) else value):
        raise VerifierError(name, "empty")
    return value
