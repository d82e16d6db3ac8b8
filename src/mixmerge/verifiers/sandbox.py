"""Run untrusted Python programs and their unit tests: locally under bubblewrap, on SandboxFusion, or unsafely.

Backends (``reward.sandbox_backend``):

``local`` (default): bubblewrap with every namespace, a view of only the interpreter (read-only) and a private
    size-limited ``/tmp``, the same for root and other users (``sandbox_bwrap``), limits for the whole program
    from a cgroup or a watchdog plus per-process rlimits (``sandbox_limits``). Where bubblewrap cannot run,
    code scoring refuses to start (``SandboxUnavailable``) rather than fall back to something weaker.
``fusion``: a SandboxFusion server (``fusion_url``), one request per test.
``unsafe_local``: the same runner and rlimits with no isolation at all: the program can read and write
    whatever the caller can. Only for trusted code; a warning is logged on every run.

All tests of one program run in one sandbox, each in a fresh process (in a cgroup the last one runs in the
runner's own process, which ran no test before): stdin/stdout tests (stripped stdout must match and nothing may
go to stderr) and function-call tests (all calls in one harness process). The expected outputs never enter the
sandbox; a malformed test is a data error (``VerifierError``), never a score.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import secrets
from functools import cache

from mixmerge.verifiers import sandbox_bwrap, sandbox_limits, sandbox_nobody, sandbox_seccomp
from mixmerge.verifiers.errors import SandboxUnavailable, VerifierError
from mixmerge.verifiers.sandbox_types import Limits, RunResult

__all__ = ["Limits", "RunResult", "run_python", "run_tests", "require_backend", "isolation"]
log = logging.getLogger(__name__)
BACKENDS = ("local", "fusion", "unsafe_local")


@cache
def isolation() -> str:
    """What the local backend gives here, logged once per process; raises SandboxUnavailable if nothing strong."""
    problem = sandbox_bwrap.probe()
    if problem:
        raise SandboxUnavailable(
            f"no strong local code sandbox here: {problem}. Install bubblewrap (scripts/setup.sh does) and allow "
            "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 / "
            "user.max_user_namespaces > 0), or set reward.sandbox_backend: fusion with reward.fusion_url, or, "
            "for trusted code only, reward.sandbox_backend: unsafe_local")
    text = (f"bubblewrap: user, pid, ipc, net, uts and cgroup namespaces; read-only view of "
            f"{', '.join(['/usr', *sandbox_bwrap._prefixes()])}, private /tmp; keyring calls "
            f"{'denied (seccomp)' if sandbox_seccomp.supported() else 'NOT filtered (no seccomp table for this CPU)'}"
            f"; limits: {sandbox_limits.describe()}")
    if sandbox_limits.cgroup_support() is None and os.geteuid() == 0:
        text += (f"; started as uid {sandbox_nobody.NOBODY}, for whom RLIMIT_NPROC binds"
                 if sandbox_bwrap.drops_root() else
                 "; runs as root, whom RLIMIT_NPROC spares: only the watchdog's poll stops a fork bomb")
    log.warning("mixmerge sandbox: %s", text)
    return text


def require_backend(backend: str = "local", fusion_url: str | None = None) -> None:
    """Refuse to start code scoring without a usable backend (called before any item is scored)."""
    if backend not in BACKENDS:
        raise SandboxUnavailable(f"unknown sandbox backend {backend!r}; expected one of {BACKENDS}")
    if backend == "fusion" and not fusion_url:
        raise SandboxUnavailable("sandbox_backend 'fusion' needs reward.fusion_url")
    if backend == "local":
        isolation()


def run_python(code: str, stdin: str = "", limits: Limits = Limits(), *, backend: str = "local",
               _argv: tuple[str, ...] = ()) -> RunResult:
    """Run ``code`` once as a Python program; never raises on anything the program does."""
    return _run_many(code, [stdin], limits, backend, _argv)[0]


def _run_many(code, stdins, limits, backend, argv=(), on_result=None) -> list[RunResult]:
    if backend == "unsafe_local":
        log.warning("mixmerge sandbox: UNSAFE local backend: the program runs with no isolation, as %s",
                    "this user")
        return sandbox_bwrap.run_batch(code, stdins, limits, argv, isolated=False, on_result=on_result)
    require_backend(backend)
    return sandbox_bwrap.run_batch(code, stdins, limits, argv, on_result=on_result)


# ---------------------------------------------------------------- unit tests
# Function-call tests run in one process through this harness. Expected values never enter the sandbox:
# the harness reports each return value (after the line marker below) and the parent compares, so a program
# that patches builtins, the harness or json can at most misreport values it would need to know to pass.
_HARNESS = r"""
import json, sys
_marker = sys.argv[1]
_spec = json.loads(sys.stdin.read())
sys.stdin.close()
_ns = {"__name__": "solution", "__builtins__": __builtins__}
exec(compile(_spec["code"], "solution.py", "exec"), _ns)
_values = []
for _name, _args in _spec["calls"]:
    _owner, _, _attr = _name.rpartition(".")
    _fn = getattr(_ns[_owner](), _attr) if _owner else _ns[_attr]
    _values.append(json.dumps(_fn(*_args)))
sys.stdout.flush()
sys.stdout.write("\n" + _marker + json.dumps(_values) + "\n")
sys.stdout.flush()
"""


TEST_SAMPLING = ("fresh", "fixed")


def sample_seed(sampling: str, seed: int, response: str) -> int:
    """The seed of one scoring call's test sample (``reward.test_sampling``). ``fixed``: ``seed`` itself, so
    every response to an item meets the same subset. ``fresh`` (the study: a new random sample on every call): a
    seed drawn from ``seed`` and the response text, so different responses meet independent subsets while a
    re-run scores each response the same, in any order and any worker process."""
    if sampling == "fixed":
        return seed
    if sampling != "fresh":
        raise ValueError(f"unknown test sampling {sampling!r}; expected one of {TEST_SAMPLING}")
    digest = hashlib.sha256(f"{seed}\0{response}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def _select(tests: list[dict], max_tests: int, seed: int) -> list[dict]:
    if len(tests) <= max_tests:
        return list(tests)
    picked = random.Random(seed).sample(range(len(tests)), max_tests)
    return [tests[i] for i in sorted(picked)]


def _same(value, expected) -> bool:
    """JSON-level equality; bools are not numbers, floats match to 1e-9 relative."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return type(value) is type(expected) and value == expected
    if isinstance(expected, (int, float)) and isinstance(value, (int, float)):
        if isinstance(expected, int) and isinstance(value, int):
            return value == expected
        return abs(value - expected) <= 1e-9 * max(1.0, abs(expected))
    if isinstance(expected, list) and isinstance(value, list):
        return len(value) == len(expected) and all(_same(v, e) for v, e in zip(value, expected))
    if isinstance(expected, dict) and isinstance(value, dict):
        return value.keys() == expected.keys() and all(_same(value[k], expected[k]) for k in expected)
    return type(value) is type(expected) and value == expected


def check_tests(tests) -> None:
    """Raise VerifierError (field ``tests``) unless ``tests`` is a non-empty list of well-formed test cases."""
    if not isinstance(tests, list) or not tests:
        raise VerifierError("tests", f"expected a non-empty list of test cases, got {tests!r:.80}")
    for i, t in enumerate(tests):
        where = f"tests[{i}]"
        if not isinstance(t, dict):
            raise VerifierError(where, f"expected an object, got {type(t).__name__}")
        if "call" in t:
            if not isinstance(t["call"], str) or not t["call"].replace(".", "").replace("_", "a").isalnum():
                raise VerifierError(f"{where}.call", f"expected a function or Class.method name, got {t['call']!r}")
            if "expected" not in t:
                raise VerifierError(f"{where}.expected", "missing")
            if not isinstance(t.get("args", []), list):
                raise VerifierError(f"{where}.args", "expected a list")
            try:
                json.dumps([t.get("args", []), t["expected"]])
            except (TypeError, ValueError) as exc:
                raise VerifierError(where, f"args/expected are not JSON values ({exc})") from None
        elif {"stdin", "stdout"} <= t.keys():
            for key in ("stdin", "stdout"):
                if not isinstance(t[key], str):
                    raise VerifierError(f"{where}.{key}", f"expected a string, got {type(t[key]).__name__}")
        else:
            raise VerifierError(where, f"expected keys stdin+stdout or call+expected, got {sorted(t)}")


def _stdio_pass(result: RunResult, test: dict) -> bool:
    # The study appends stderr to stdout before comparing, so any stderr output fails the test.
    return result.status == "ok" and not result.stderr.strip() and result.stdout.strip() == test["stdout"].strip()


def _calls_pass(run, code: str, tests: list[dict]) -> bool:
    marker = "@@mixmerge-result-" + secrets.token_hex(16) + "@@"
    spec = json.dumps({"code": code, "calls": [[t["call"], list(t.get("args", []))] for t in tests]})
    result = run(_HARNESS, [spec], (marker,))[0]
    if result.status != "ok":
        return False
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith(marker)]
    if not lines:
        return False
    try:
        values = [json.loads(v) for v in json.loads(lines[-1][len(marker):])]
    except (ValueError, TypeError):
        return False
    if not isinstance(values, list) or len(values) != len(tests):
        return False
    return all(_same(v, json.loads(json.dumps(t["expected"]))) for v, t in zip(values, tests))


def _runner(backend: str, fusion_url: str | None, limits: Limits):
    """``run(code, stdins, argv, on_result=None) -> results``: the backend, with stop-early support."""
    if backend == "fusion":
        from mixmerge.verifiers.sandbox_fusion import run_code

        def run_fusion(code, stdins, argv=(), on_result=None):
            results = []
            for stdin in stdins:
                results.append(run_code(code, stdin, fusion_url, limits, argv=argv))
                if on_result and on_result(results[-1]) is False:
                    break
            return results

        return run_fusion
    return lambda code, stdins, argv=(), on_result=None: _run_many(code, stdins, limits, backend, argv, on_result)


def run_tests(code: str, tests: list[dict], limits: Limits = Limits(), max_tests: int = 20, seed: int = 0,
              backend: str = "local", fusion_url: str | None = None) -> float:
    """1.0 iff every selected test passes (up to ``max_tests``, sampled with ``seed``), else 0.0.

    Tests are ``{"stdin", "stdout"}`` (one process each, pass iff stripped stdout matches and nothing went to
    stderr) or ``{"call", "args", "expected"}`` (all in one harness process; ``call`` may be ``"f"`` or
    ``"Class.method"``, the class is instantiated without arguments). Malformed tests raise ``VerifierError``
    (a data problem); nothing the program does raises.
    """
    check_tests(tests)
    require_backend(backend, fusion_url)
    run = _runner(backend, fusion_url, limits)
    chosen = _select(tests, max_tests, seed)
    calls = [t for t in chosen if "call" in t]
    stdio = [t for t in chosen if "call" not in t]
    if calls and not _calls_pass(run, code, calls):
        return 0.0
    if not stdio:
        return 1.0
    verdicts: list[bool] = []

    def judge(result: RunResult) -> bool:
        verdicts.append(_stdio_pass(result, stdio[len(verdicts)]) if len(verdicts) < len(stdio) else False)
        return verdicts[-1]

    run(code, [t["stdin"] for t in stdio], (), on_result=judge)
    return 1.0 if len(verdicts) == len(stdio) and all(verdicts) else 0.0
