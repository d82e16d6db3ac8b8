"""Red team: every scorer gives 0 to cheating output, within its time bound, and leaves no trace on the host.

The code cases run in whatever mode this process is in: as root here, and as an unprivileged uid through
tests/test_redteam_uid.py, which reruns this file under ``setpriv``. After every call the ``host_guard`` checks
what the program could have touched: canary files, the directories it could write to, processes left behind,
SysV IPC objects, the mount table, and a process outside the sandbox it tried to kill.
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading

import pytest

import host_trace
from mixmerge.verifiers import mathcheck
from mixmerge.verifiers import nltk_offline
from mixmerge.verifiers import sandbox
from mixmerge.verifiers import sandbox_bwrap
from mixmerge.verifiers.mcq import score_mcq
from mixmerge.verifiers.sandbox import Limits, run_tests

LIMITS = Limits(cpu_s=1, wall_s=2, memory_mb=512, nproc=16)
STDIO = [{"stdin": "1", "stdout": "2"}]
CALLS = [{"call": "add", "args": [1, 2], "expected": 3}]
IPC_KEYS = (0x4D4D0001, 0x4D4D0002, 0x4D4D0003)  # what the IPC cheats create, looked for on the host after


@pytest.fixture(scope="module", autouse=True)
def subreaper():
    """Orphans of anything started here come back to this process, where ``host_guard`` finds them."""
    host_trace.set_subreaper(True)
    yield
    host_trace.set_subreaper(False)


@pytest.fixture(scope="module")
def bench_file():
    """A benchmark file holding the expected answer, at an absolute path outside the project."""
    folder = tempfile.mkdtemp(prefix="mixmerge-bench-", dir=host_trace.writable_host_dirs()[-1])
    path = os.path.join(folder, "bench.jsonl")
    with open(path, "w") as f:
        f.write("2\n")
    os.chmod(folder, 0o755)
    os.chmod(path, 0o644)
    yield path
    os.remove(path)
    os.rmdir(folder)


@pytest.fixture(scope="module")
def victim():
    """A process of this uid outside the sandbox, which the kill cheats aim at."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def host_guard(tmp_path, monkeypatch, victim):
    """Canaries in the test's directory and in shared writable host directories; afterwards checks them, the
    listings of what a program could write to (the working directory, home, a private temporary directory, not
    the whole host /tmp other processes share), processes left behind or too many at once, SysV IPC keys, mounts
    and the victim."""
    monkeypatch.chdir(tmp_path)
    private_tmp = tmp_path / "private-tmp"
    private_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    shared = [tempfile.mkdtemp(prefix="mixmerge-canary-", dir=d) for d in host_trace.writable_host_dirs()]
    canaries = {os.path.join(d, "canary.txt"): "keep me" for d in (str(tmp_path), *shared)}
    for path, text in canaries.items():
        with open(path, "w") as f:
            f.write(text)
    home = os.path.expanduser("~")

    def listings():
        return {"cwd": set(os.listdir(tmp_path)), "home": set(os.listdir(home)) if os.path.isdir(home) else set(),
                "private tmp": set(os.listdir(private_tmp)), **{d: set(os.listdir(d)) for d in shared}}

    before = listings()
    children, mounts = host_trace.descendants(), host_trace.mount_table()
    with host_trace.HostProcessPeak() as peak:
        yield canaries
    assert peak.extra < 100, f"{peak.extra} more host processes at the peak"
    for path, text in canaries.items():
        with open(path) as f:
            assert f.read() == text, f"canary {path} modified"
    after = listings()
    for name in before:
        assert after[name] == before[name], f"{name}: {sorted(after[name] ^ before[name])} appeared or vanished"
    assert host_trace.new_survivors(children) == [], "processes left behind"
    assert not any(set(IPC_KEYS) & keys for keys in host_trace.sysvipc_keys().values()), "SysV IPC left on host"
    assert host_trace.mount_table() == mounts, "the host mount table changed"
    assert victim.poll() is None, "a process outside the sandbox was killed"
    for path in canaries:
        os.remove(path)
    for d in shared:
        os.rmdir(d)


def check(code, timer, tests=STDIO, limits=LIMITS):
    with timer:
        reward = run_tests(code, tests, limits=limits)
    assert reward == 0.0
    assert timer.elapsed <= limits.wall_s * len(tests) + 1.5


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
    "survivor_prints_late": (  # a daemon that would print the answer after the test process exited
        "import os, sys, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(0.3)\n    print(2, flush=True)\n"
        "    time.sleep(10**6)\nsys.exit(0)"),
    "read_parent_environ": "import os\nprint(open(f'/proc/{os.getppid()}/environ').read())",
    "fill_tmp_and_shm": (
        "import os\nfor d in ('/tmp', '/dev/shm', '/', '/dev'):\n    for i in range(10**4):\n        try:\n"
        "            open(f'{d}/f{i}', 'wb').write(b'x' * 2**20)\n        except OSError:\n            break\nprint(3)"),
}


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_code_cheats(name, host_guard, timer):
    check(CHEATS[name], timer)


@pytest.mark.parametrize("name", ["infinite_loop", "exit_zero_first", "flood_stdout", "os_exit_zero_first"])
def test_code_cheats_function_call_form(name, host_guard, timer):
    check(CHEATS[name] + "\ndef add(a, b):\n    return a + b", timer, tests=CALLS)


def _host_paths(bench_file):
    """Paths a program would like to read: the benchmark file, and the same file or the caller's test file
    through every way round the view (the caller's cwd and root via /proc, home, system files)."""
    cwd_tests = os.path.abspath("tests.json")
    return [bench_file, cwd_tests, f"/proc/1/root{bench_file}", "/proc/self/cwd/tests.json",
            f"/proc/{os.getpid()}/root{bench_file}", f"/proc/{os.getpid()}/cwd/tests.json",
            os.path.expanduser("~/.bash_history"), "/etc/passwd", "/etc/hostname", "/proc/1/cmdline",
            os.path.join(os.path.dirname(sandbox.__file__), "__init__.py")]


def test_cannot_read_any_host_file(host_guard, timer, bench_file):
    """Each program passes only if it can read the expected answer from a file on the host."""
    with open("tests.json", "w") as f:  # in the caller's cwd, as a dataset would be
        f.write("2")
    paths = _host_paths(bench_file)
    read_any = (f"import os\nfor p in {paths!r}:\n    try:\n        print(open(p).read().strip()[:1] or 3)\n"
                "        break\n    except OSError:\n        pass\nelse:\n    print(3)")
    check(read_any, timer)
    walk = ("import os\nfor top in ('/', '/proc', '/work', '/home', '/root', '/var', '/etc', '/mnt', '/srv'):\n"
            "    for root, dirs, files in os.walk(top):\n        for name in files:\n"
            "            if name in ('bench.jsonl', 'tests.json'):\n"
            "                print(open(os.path.join(root, name)).read().strip())\n                raise SystemExit\n"
            "print(3)")
    check(walk, timer)
    call = f"def add(a, b):\n    return int(open({bench_file!r}).read()) + 1"
    check(call, timer, tests=CALLS)
    os.remove("tests.json")


def test_view_holds_only_the_interpreter():
    """What the program sees of the filesystem: the interpreter's prefixes, /usr, /dev, a private /tmp."""
    out = sandbox.run_python("import os\nfor top in sorted(os.listdir('/')):\n    print(top)").stdout.split()
    prefix_tops = {path.split("/")[1] for path in sandbox_bwrap._prefixes()}
    assert set(out) <= {"tmp", "dev", "usr", "bin", "sbin", "lib", "lib32", "lib64"} | prefix_tops
    assert "proc" not in out and "etc" not in out and "sys" not in out
    listed = sandbox.run_python("import os\nprint(sorted(os.listdir('/tmp')), os.getcwd())").stdout
    assert listed.strip() == "[] /tmp"


_IPC = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
IPC_CREAT, IPC_NOWAIT = 0o1000, 0o4000
class Msg(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("text", ctypes.c_char * 8)]
"""
IPC_LEAVE = _IPC + f"""
shm = libc.shmget({IPC_KEYS[0]}, 256 << 20, IPC_CREAT | 0o666)
addr = libc.shmat(shm, None, 0)
q = libc.msgget({IPC_KEYS[1]}, IPC_CREAT | 0o666)
libc.msgsnd(q, ctypes.byref(Msg(1, b"2")), 8, IPC_NOWAIT)
sem = libc.semget({IPC_KEYS[2]}, 1, IPC_CREAT | 0o666)
print(3)
"""
IPC_READ = _IPC + f"""
q = libc.msgget({IPC_KEYS[1]}, 0)
m = Msg()
n = libc.msgrcv(q, ctypes.byref(m), 8, 0, IPC_NOWAIT) if q >= 0 else -1
print(m.text.decode() if n > 0 else 3)
"""


def test_sysv_ipc_is_private_and_gone_after(host_guard, timer):
    """IPC objects a run makes stay in its own namespace: the host has none after, a later run sees none."""
    check(IPC_LEAVE, timer)
    check(IPC_READ, timer)


LEAVE_BEHIND = """
import os, socket, time
for d in ('/tmp', '/dev/shm'):
    with open(d + '/answer', 'w') as f:
        f.write('2')
if os.fork() == 0:
    os.setsid()
    server = socket.socket(socket.AF_UNIX)
    server.bind('\\0mixmerge-answer')
    server.listen()
    while True:
        server.accept()[0].sendall(b'2')
time.sleep(0.2)
print(3)
"""
FIND_LEFTOVERS = """
import socket
for path in ('/tmp/answer', '/dev/shm/answer'):
    try:
        print(open(path).read())
        raise SystemExit
    except OSError:
        pass
try:
    s = socket.socket(socket.AF_UNIX)
    s.connect('\\0mixmerge-answer')
    print(s.recv(8).decode())
except OSError:
    print(3)
"""


def test_nothing_a_program_leaves_reaches_the_next(host_guard, timer):
    """Program A leaves files in /tmp and /dev/shm and a daemon serving the answer on an abstract socket; program
    B would pass by finding any of them, and an honest program after A scores as it would alone."""
    check(LEAVE_BEHIND, timer)
    check(FIND_LEFTOVERS, timer)
    check(LEAVE_BEHIND, timer)
    assert run_tests("print(int(input()) + 1)", STDIO, limits=LIMITS) == 1.0


KEYRING_CALLS = {"x86_64": (248, 249, 250), "aarch64": (217, 218, 219)}  # add_key, request_key, keyctl
_KEYS = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
ADD_KEY, REQUEST_KEY, KEYCTL = {calls}[os.uname().machine]
"""
KEYS_LEAVE = _KEYS + """
for ring in (-3, -4, -5):  # the session, user and user-session keyrings
    libc.syscall(ADD_KEY, b"user", b"mixmerge-answer", b"2", 1, ring)
print(3)
"""
KEYS_READ = _KEYS + """
key = libc.syscall(REQUEST_KEY, b"user", b"mixmerge-answer", None, 0)
buf = ctypes.create_string_buffer(8)
print(buf.value.decode() if key > 0 and libc.syscall(KEYCTL, 11, key, buf, 8) > 0 else 3)
"""


@pytest.mark.skipif(os.uname().machine not in KEYRING_CALLS, reason="syscall numbers known for x86_64, aarch64")
def test_keyrings_are_no_channel(host_guard, timer):
    """Keyrings are not namespaced: in a login session (joined here) a sandbox inherits its caller's session
    keyring. A key one program leaves there must reach neither a later program nor the host."""
    libc = host_trace._libc
    add_key, request_key, keyctl = KEYRING_CALLS[os.uname().machine]
    assert libc.syscall(keyctl, 1, None) > 0  # KEYCTL_JOIN_SESSION_KEYRING: a fresh anonymous one
    assert libc.syscall(add_key, b"user", b"mixmerge-probe", b"x", 1, -3) > 0  # the host can use it
    calls = repr(KEYRING_CALLS)
    check(KEYS_LEAVE.replace("{calls}", calls), timer)
    check(KEYS_READ.replace("{calls}", calls), timer)
    assert libc.syscall(request_key, b"user", b"mixmerge-answer", None, 0) == -1, "a key reached the host"


MOUNT_ESCAPE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_REMOUNT, MS_BIND, MNT_DETACH = 1, 32, 4096, 2
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
for target in (b"/tmp", b"/dev/shm", b"/usr", b"/dev", b"/"):
    libc.umount2(target, MNT_DETACH)
    libc.mount(None, target, None, MS_REMOUNT | MS_BIND, None)
libc.unshare(CLONE_NEWUSER | CLONE_NEWNS)
libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None)
libc.mount(b"/", b"/tmp", None, MS_BIND, None)
for p in PATHS:
    try:
        print(open(p).read().strip()[:1])
        raise SystemExit
    except OSError:
        pass
print(3)
"""


def test_unmount_and_remount_get_nothing(host_guard, timer, bench_file):
    with open("tests.json", "w") as f:
        f.write("2")
    check(f"PATHS = {_host_paths(bench_file)!r}\n" + MOUNT_ESCAPE, timer)
    os.remove("tests.json")


def test_cannot_kill_outside_processes(host_guard, timer, victim):
    """kill, kill(-1), killpg and pidfd_open + pidfd_send_signal on a process of the same uid outside."""
    code = (f"import os, signal\nvictim = {victim.pid}\n"
            "for act in (lambda: os.kill(victim, 9), lambda: os.killpg(victim, 9),\n"
            "            lambda: signal.pidfd_send_signal(os.pidfd_open(victim), 9),\n"
            "            lambda: os.kill(-1, 9)):\n"
            "    try:\n        act()\n    except OSError:\n        pass\nprint(3)")
    check(code, timer)
    # A wrong sum, as print(3) is a wrong output: where the test runs in the runner's own process (in a cgroup),
    # kill(-1) no longer takes the runner down with it, so only the answer decides the reward.
    check(code.replace("print(3)", "def add(a, b):\n    return 4"), timer, tests=CALLS)


def test_total_memory_across_processes(host_guard, timer):
    """Six processes of 150 MB each: within the per-process limit, but 900 MB together against 512 MB."""
    code = ("import os, time\nkids = []\nfor i in range(6):\n    pid = os.fork()\n    if pid == 0:\n"
            "        block = bytearray(150 * 2**20)\n        for j in range(0, len(block), 4096):\n"
            "            block[j] = 1\n        time.sleep(0.5)\n        os._exit(0)\n    kids.append(pid)\n"
            "print(2 if all(os.waitpid(p, 0)[1] == 0 for p in kids) else 3)")
    check(code, timer)
    one = "block = bytearray(150 * 2**20)\nfor j in range(0, len(block), 4096):\n    block[j] = 1\nprint(2)"
    assert run_tests(one, STDIO, limits=LIMITS) == 1.0  # one such process alone is fine


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
