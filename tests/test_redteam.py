"""Red team: every scorer must give 0 to cheating output, within its time bound, leaving the host untouched."""
import os
import signal
import socket
import tempfile
import threading

import pytest

from mixmerge.verifiers import mathcheck
from mixmerge.verifiers import nltk_offline
from mixmerge.verifiers import sandbox
from mixmerge.verifiers.mcq import score_mcq
from mixmerge.verifiers.sandbox import Limits, run_tests

from conftest import sandbox_pids

LIMITS = Limits(cpu_s=1, wall_s=2, memory_mb=512, nproc=16)
BOUND = LIMITS.wall_s + 1  # one call may overrun its timeout by at most one second
STDIO = [{"stdin": "1", "stdout": "2"}]
CALLS = [{"call": "add", "args": [1, 2], "expected": 3}]


@pytest.fixture
def host_guard(tmp_path, monkeypatch):
    """Canary files in the test dir and in visible host dirs (/var/cache, /tmp); checks them after, with the
    listings of what a sandboxed program could write to (cwd, home, and the sandbox's temporary directory:
    a private one here, through tempfile.tempdir and TMPDIR, not the whole host /tmp that other processes
    share) and the processes left."""
    monkeypatch.chdir(tmp_path)
    sandbox_tmp = tmp_path / "sandbox-tmp"  # where run_python makes its work dirs (audit mode)
    sandbox_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(sandbox_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(sandbox_tmp))
    visible = [tempfile.mkdtemp(prefix="mixmerge-canary-", dir=d) for d in ("/var/cache", "/tmp")]
    canaries = {os.path.join(d, "canary.txt"): "keep me" for d in (str(tmp_path), *visible)}
    for path, text in canaries.items():
        with open(path, "w") as f:
            f.write(text)
    home = os.path.expanduser("~")

    def listings():
        return {"cwd": set(os.listdir(tmp_path)), "home": set(os.listdir(home)),
                "sandbox tmp": set(os.listdir(sandbox_tmp))}

    before = listings()
    yield canaries
    for path, text in canaries.items():
        with open(path) as f:
            assert f.read() == text, f"canary {path} modified"
    after = listings()
    for name in before:
        assert after[name] == before[name], f"{name}: {sorted(after[name] ^ before[name])} appeared or vanished"
    assert sandbox_pids() == [], "sandboxed processes left behind"
    for path in canaries:
        os.remove(path)
    for d in visible:
        os.rmdir(d)


def check(code, timer, tests=STDIO, limits=LIMITS):
    with timer:
        reward = run_tests(code, tests, limits=limits)
    assert reward == 0.0
    assert timer.elapsed <= limits.wall_s * len(tests) + 1


CHEATS = {
    "infinite_loop": "while True:\n    pass",
    "sleep_forever": "import time\ntime.sleep(10**6)",
    "fork_bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
    "memory_bomb": "a = []\nwhile True:\n    a.append(bytearray(10**7))",
    "exit_zero_first": "import sys\nsys.exit(0)\nprint(2)",
    "os_exit_zero_first": "import os\nos._exit(0)",
    "flood_stdout": "import sys\nwhile True:\n    sys.stdout.write('2\\n' * 1000)",
    "kill_parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(-1, signal.SIGKILL)\nprint(3)",
    "kill_process_group_of_parent": "import os\nos.killpg(os.getpgid(os.getppid()), 9)\nprint(3)",
    "ignore_signals": (
        "import signal\nfor s in (signal.SIGTERM, signal.SIGXCPU, signal.SIGINT, signal.SIGHUP):\n"
        "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass"),
    "escape_session": (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(10**6)\n"
        "    os._exit(0)\nprint(3)"),
    "read_parent_environ": "import os\nprint(open(f'/proc/{os.getppid()}/environ').read())",
}


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_code_cheats(name, host_guard, timer):
    check(CHEATS[name], timer)


@pytest.mark.parametrize("name", ["infinite_loop", "exit_zero_first", "flood_stdout", "os_exit_zero_first"])
def test_code_cheats_function_call_form(name, host_guard, timer):
    check(CHEATS[name] + "\ndef add(a, b):\n    return a + b", timer, tests=CALLS)


def test_write_and_delete_outside_sandbox(host_guard, timer):
    targets = list(host_guard) + ["/etc/mixmerge-pwned", "/var/tmp/mixmerge-pwned", "/dev/shm/mixmerge-pwned",
                                  os.path.expanduser("~/mixmerge-pwned"), os.path.join(os.getcwd(), "pwned")]
    code = (f"import os, shutil\ntargets = {targets!r}\n"
            "for t in targets:\n"
            "    for act in (lambda: open(t, 'w').write('x'), lambda: os.remove(t),\n"
            "                lambda: shutil.rmtree(os.path.dirname(t))):\n"
            "        try:\n            act()\n        except OSError:\n            pass\n"
            "open('inside.txt', 'w').write('mine')\nprint(3)")
    check(code, timer)
    assert not os.path.exists("/etc/mixmerge-pwned") and not os.path.exists("/var/tmp/mixmerge-pwned")


def test_no_network(host_guard, timer):
    """The program would pass if it could fetch the expected output from a server on the host's loopback."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(3)
    port = server.getsockname()[1]
    hits = []

    def serve():
        try:
            conn, _ = server.accept()
            hits.append(1)
            conn.sendall(b"2")
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    code = (f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
            "print(s.recv(10).decode())")
    check(code, timer)
    raw = f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))\nprint(s.recv(10).decode())"
    check(raw, timer)
    thread.join()
    server.close()
    assert hits == []


def test_cannot_read_secrets_or_test_files(host_guard, timer, monkeypatch):
    """Each program would pass if it could read the expected output from the env or from a file."""
    monkeypatch.setenv("MIXMERGE_EXPECTED", "2")
    check("import os\nprint(os.environ.get('MIXMERGE_EXPECTED', 'none'))", timer)
    with open("tests.json", "w") as f:  # in the caller's cwd, as a dataset would be
        f.write("2")
    path = os.path.abspath("tests.json")
    check(f"print(open({path!r}).read())", timer)
    project_file = os.path.join(os.path.dirname(sandbox.__file__), "__init__.py")
    check(f"open({project_file!r}).read()\nprint(2)", timer)
    os.remove("tests.json")


def test_tamper_with_harness_and_builtins(host_guard, timer):
    always_equal = ("class Eq:\n    def __eq__(self, other):\n        return True\n"
                    "class FakeInt(int):\n    def __eq__(self, other):\n        return True\n"
                    "def add(a, b):\n    return Eq()\n")
    check(always_equal, timer, tests=CALLS)
    check(always_equal.replace("return Eq()", "return FakeInt(0)"), timer, tests=CALLS)
    patch_json = "import json\njson.dumps = lambda *a, **k: '3'\ndef add(a, b):\n    return 0\n"
    check(patch_json, timer, tests=CALLS)
    forge = ("import sys, json\nprint(sys.argv[-1] + json.dumps(['3']))\nsys.exit(0)\n")
    check(forge, timer, tests=[{"call": "add", "args": [1, 2], "expected": 4}])
    patch_builtins = "import builtins\nbuiltins.print = lambda *a, **k: None\nbuiltins.input = lambda: '1'\nprint(3)"
    check(patch_builtins, timer)


# ------------------------------------------------------------------------------------------- math
def test_math_cheats(timer):
    assert mathcheck.score_math(r"\boxed{1} \boxed{2} \boxed{3}", "1") == 0.0
    assert mathcheck.score_math("", "1") == 0.0
    assert mathcheck.score_math(r"\boxed{}", "1") == 0.0
    for answer in (r"\boxed{9^{9^{9^{9^{9}}}}}", r"\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}",
                   r"\boxed{" + r"\frac{1}{" * 300 + "2" + "}" * 300 + "}", "\\boxed{" + "x+" * 100000 + "1}"):
        with timer:
            assert mathcheck.score_math(answer, "1", timeout_s=2) == 0.0
        assert timer.elapsed <= 3


# ------------------------------------------------------------------------------------------- MCQ
def test_mcq_listing_every_letter():
    for text in ("A B C D", "Answer: A, B, C, D", "The answer is A or B or C or D",
                 "Answer: A\nAnswer: B\nAnswer: C\nAnswer: D"):
        assert all(score_mcq(text, letter, "ABCD") == 0.0 for letter in "ABCD")


# ------------------------------------------------------------------------------------------- IFEval
def test_ifeval_empty_and_huge(timer):
    ids = ["punctuation:no_comma", "language:response_language"]
    kwargs = [{}, {"language": "en"}]
    assert not nltk_offline.all_instructions_followed("", ids, kwargs)
    assert not nltk_offline.all_instructions_followed("   \n", ids, kwargs)
    with timer:
        nltk_offline.all_instructions_followed("word " * 20000, ids + ["length_constraints:number_sentences"],
                                               kwargs + [{"num_sentences": 2, "relation": "less than"}])
    assert timer.elapsed < 3


HOSTILE_TEXTS = {"parens": "(" * 20000 + ")" * 20000, "quotes": "\"'" * 20000, "lines": "\n" * 50000,
                 "emoji": "\U0001F600" * 20000, "combining": "a\u0301" * 20000, "csv": "a,b,c\n" * 10000}


def test_ifbench_checkers_on_hostile_output(timer):
    """Every IFBench checker gives a plain verdict on degenerate output: no exception, no runaway time."""
    from if_verifiable.ifbench.instructions_registry import INSTRUCTION_DICT as ifbench

    nltk_offline.instruction_registry()  # imports the checkers with downloads switched off
    ids = [i for i in sorted(ifbench) if nltk_offline.is_supported(i)]
    assert len(ids) == 56  # 58, less the two that need NLTK data this machine lacks
    repeat = {"prompt_to_repeat": "Write a short story about a cat that learns to fly."}
    with timer:
        for instruction_id in ids:
            kwargs = repeat if instruction_id in ("repeat:repeat_change", "repeat:repeat_span") else {}
            for text in HOSTILE_TEXTS.values():
                assert nltk_offline.all_instructions_followed(text, [instruction_id], [kwargs]) in (True, False)
    assert timer.elapsed < 30  # about 1 s here; each call also runs under the scorer's per-item timeout
