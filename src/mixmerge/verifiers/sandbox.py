"""Run untrusted Python programs and unit tests with kernel-enforced limits.

Isolation, strongest first (``network_isolation_mode()`` says which one is in force; it is logged once):

``netns`` (running as root): each program gets new network and mount namespaces. The network namespace has
    only a down loopback, so every connect fails. In the mount namespace the program's working directory is a
    private size-limited tmpfs on ``/tmp`` (nothing it writes reaches the host disk), ``/var/tmp``,
    ``/dev/shm`` and ``/run/lock`` are private too, and the home directory, the caller's working directory
    (the project, with its data and test cases) and ``$MIXMERGE_SANDBOX_HIDE`` paths are covered by empty
    read-only tmpfs mounts; only the interpreter's own prefix is bound back in. The program then runs as a
    fresh random uid, so it owns no host file, cannot signal or trace the caller, and every process it
    leaves behind can be found and killed by uid.
``userns`` (not root, user namespaces allowed): new user + network + mount namespaces with the same mounts;
    the program keeps the caller's uid, so host files it can reach are only protected by the hiding mounts.
``audit`` (neither works): a temporary directory and a Python audit hook that refuses sockets, ctypes and
    process spawning. This is bypassable by native code and is logged as weak.

In every mode: own process group (killed whole on timeout), limits on CPU time, address space, processes,
open files and file size, a capped amount of captured output and a minimal environment with no secrets.
"""
from __future__ import annotations

import ctypes
import json
import logging
import os
import random
import resource
import secrets
import selectors
import shutil
import signal
from pathlib import Path
import subprocess
import sys
import tempfile
import time

from mixmerge.verifiers.sandbox_types import Limits, RunResult

log = logging.getLogger(__name__)

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 4096, 16384, 1 << 18
_PYTHON = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
_PREFIX = os.path.realpath(sys.base_prefix)
_KILL = shutil.which("kill", path="/usr/bin:/bin")
_PY_FLAGS = ("-I", "-S", "-B")  # isolated (no env vars, no user site), no site-packages, no .pyc writes
_UID_BASE, _UID_SPAN = 2_000_000, 1 << 24
_PRIVATE_DIRS = ("/var/tmp", "/dev/shm", "/run/lock")
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


# ---------------------------------------------------------------- isolation mode
_mode: str | None = None


def _probe(flags: int) -> bool:
    """Can a child process unshare these namespaces here?"""
    pid = os.fork()
    if pid == 0:
        os._exit(0 if _libc.unshare(flags) == 0 else 1)
    return os.waitpid(pid, 0)[1] == 0


def network_isolation_mode() -> str:
    global _mode
    if _mode is None:
        forced = os.environ.get("MIXMERGE_SANDBOX_MODE")
        if forced:
            _mode = forced
        elif os.geteuid() == 0 and _probe(CLONE_NEWNET | CLONE_NEWNS):
            _mode = "netns"
        elif _probe(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS):
            _mode = "userns"
        else:
            _mode = "audit"
        if _mode not in ("netns", "userns", "audit"):
            raise ValueError(f"MIXMERGE_SANDBOX_MODE={_mode!r}: expected netns, userns or audit")
        strength = {"netns": "strong: network+mount namespaces, private uid",
                    "userns": "network+mount namespaces, caller's uid",
                    "audit": "WEAK: Python audit hook only, no kernel network isolation"}[_mode]
        log.warning("mixmerge sandbox isolation: %s (%s)", _mode, strength)
    return _mode


def _hidden_paths() -> list[str]:
    project_root = str(Path(__file__).resolve().parents[3])
    paths = [os.path.expanduser("~"), os.getcwd()]
    if os.path.exists(os.path.join(project_root, "pyproject.toml")):
        paths.append(project_root)
    paths += [p for p in os.environ.get("MIXMERGE_SANDBOX_HIDE", "").split(os.pathsep) if p]
    out: list[str] = []
    for p in sorted({os.path.realpath(p) for p in paths}, key=len):
        inside_python = p == _PREFIX or p.startswith(_PREFIX + "/")
        if p not in ("/", "/tmp") and not inside_python and os.path.isdir(p) and not any(
                p.startswith(q + "/") for q in out):
            out.append(p)
    return out


# ---------------------------------------------------------------- child-side setup (runs after fork, before exec)
def _mount(src: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    rc = _libc.mount(src.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                     data.encode() if data else None)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _set_rlimits(limits: Limits) -> None:
    cpu = max(1, int(limits.cpu_s + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU first, SIGKILL if it is ignored
    for res, value in (
                       (resource.RLIMIT_AS, limits.memory_mb << 20),
                       (resource.RLIMIT_NPROC, limits.nproc),
                       (resource.RLIMIT_NOFILE, limits.nofile),
                       (resource.RLIMIT_FSIZE, limits.fsize_mb << 20),
                       (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(res, (value, value))


def _make_child_setup(mode: str, code: str, uid: int, limits: Limits, hide: list[str]):
    outer_uid, outer_gid = os.getuid(), os.getgid()

    def setup() -> None:
        flags = CLONE_NEWNET | CLONE_NEWNS | (CLONE_NEWUSER if mode == "userns" else 0)
        if _libc.unshare(flags) != 0:
            raise OSError(ctypes.get_errno(), "unshare")
        if mode == "userns":
            with open("/proc/self/setgroups", "w") as f:
                f.write("deny")
            with open("/proc/self/uid_map", "w") as f:
                f.write(f"0 {outer_uid} 1")
            with open("/proc/self/gid_map", "w") as f:
                f.write(f"0 {outer_gid} 1")
        owner = uid if mode == "netns" else 0
        _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
        prefix_fd = os.open(_PREFIX, os.O_RDONLY | os.O_DIRECTORY)
        for path in hide:
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,nr_inodes=256,mode=0755")
        for path in _PRIVATE_DIRS:
            if os.path.isdir(path):
                _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV,
                       f"size=1m,nr_inodes=64,mode=0700,uid={owner},gid={owner}")
        work_mb = limits.fsize_mb + 1
        _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
               f"size={work_mb}m,nr_inodes=4096,mode=0700,uid={owner},gid={owner}")
        if not os.path.isdir(_PREFIX):  # the interpreter lived under a hidden path: bind it back
            os.makedirs(_PREFIX)
            _mount(f"/proc/self/fd/{prefix_fd}", _PREFIX, None, MS_BIND | MS_REC, None)
        os.close(prefix_fd)
        os.chdir("/tmp")
        with open("prog.py", "w") as f:
            f.write(code)
        os.chown("prog.py", owner, owner)
        _set_rlimits(limits)
        if mode == "netns":
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the caller (set after setuid, which clears it)

    return setup


# In "audit" mode the program is started through this bootstrap; the hook cannot be removed from Python code.
_AUDIT_BOOT = r"""
import sys
_DENY = ("socket.", "ctypes.", "os.fork", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.kill",
         "os.killpg", "signal.pthread_kill", "subprocess.", "_posixsubprocess", "os.putenv")
def _hook(event, args):
    if event.startswith(_DENY):
        raise PermissionError("blocked by mixmerge sandbox: " + event)
sys.addaudithook(_hook)
del _hook
sys.argv = sys.argv[1:]
_src = open(sys.argv[0]).read()
exec(compile(_src, sys.argv[0], "exec"), {"__name__": "__main__", "__file__": sys.argv[0]})
"""


def _child_env(home: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
            "PYTHONIOENCODING": "utf-8"}


def _stdin_fd(data: str) -> int:
    fd = os.memfd_create("mixmerge-stdin", 0)
    payload = data.encode("utf-8", "replace")
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _procs_of_uid(uid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    with open(f"/proc/{name}/stat", "rb") as f:
                        state = f.read().rpartition(b")")[2].split()[0]
                    if state not in (b"Z", b"X"):  # zombies are already dead; their new parent reaps them
                        found.append(int(name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    return found


def _kill_uid(uid: int) -> None:
    """Kill every process left with this sandbox uid, including ones that left the process group."""
    for _ in range(5):
        if not _procs_of_uid(uid):
            return
        # kill(-1) as that uid signals all its processes atomically (no new forks slip in between)
        if _KILL:
            subprocess.run([_KILL, "-9", "-1"], user=uid, group=uid, extra_groups=[], env={},
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            pid = os.fork()
            if pid == 0:
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
                os._exit(0)
            os.waitpid(pid, 0)
        time.sleep(0.01)
    log.error("sandbox uid %d still has processes after 5 kill sweeps", uid)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _collect(proc: subprocess.Popen, limits: Limits, t0: float) -> tuple[bytes, bytes, str | None]:
    """Read stdout/stderr until both close or a limit trips; returns (stdout, stderr, limit_status)."""
    bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    sel = selectors.DefaultSelector()
    for fd in bufs:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    deadline = t0 + limits.wall_s
    exited_at = None
    tripped = None
    while sel.get_map():
        now = time.monotonic()
        if now >= deadline:
            tripped = "timeout"
            break
        if exited_at is None and proc.poll() is not None:
            exited_at = now
        if exited_at is not None and now - exited_at > 0.05:  # descendants keep the pipes open; stop here
            break
        for key, _ in sel.select(min(deadline - now, 0.05)):
            try:
                chunk = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                sel.unregister(key.fd)
                continue
            buf = bufs[key.fd]
            buf += chunk
            if len(buf) > limits.output_bytes:
                del buf[limits.output_bytes:]
                tripped = "output_limit"
        if tripped:
            break
    sel.close()
    return bytes(bufs[proc.stdout.fileno()]), bytes(bufs[proc.stderr.fileno()]), tripped


def run_python(code: str, stdin: str = "", limits: Limits = Limits(), *, _argv: tuple[str, ...] = ()) -> RunResult:
    """Run ``code`` as a Python program under the sandbox; never raises on anything the program does."""
    mode = network_isolation_mode()
    t0 = time.monotonic()
    uid = _UID_BASE + secrets.randbelow(_UID_SPAN)
    workdir = None
    stdin_fd = _stdin_fd(stdin) if stdin else subprocess.DEVNULL
    try:
        if mode == "audit":
            workdir = tempfile.mkdtemp(prefix="mixmerge-sbx-")
            with open(os.path.join(workdir, "prog.py"), "w") as f:
                f.write(code)
            argv = [_PYTHON, *_PY_FLAGS, "-c", _AUDIT_BOOT, "prog.py", *_argv]
            setup = lambda: _set_rlimits(limits)  # noqa: E731
            cwd, home = workdir, workdir
        else:
            argv = [_PYTHON, *_PY_FLAGS, "prog.py", *_argv]
            setup = _make_child_setup(mode, code, uid, limits, _hidden_paths())
            cwd, home = None, "/tmp"
        try:
            proc = subprocess.Popen(argv, stdin=stdin_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    cwd=cwd, env=_child_env(home), start_new_session=True, preexec_fn=setup,
                                    close_fds=True)
        except (OSError, subprocess.SubprocessError) as exc:
            log.error("sandbox failed to start: %s", exc)
            return RunResult("sandbox_error", None, "", str(exc), time.monotonic() - t0)
        with proc:
            out, err, tripped = _collect(proc, limits, t0)
            _kill_group(proc.pid)
            returncode = proc.wait()
        if mode == "netns":
            _kill_uid(uid)
    finally:
        if stdin_fd != subprocess.DEVNULL:
            os.close(stdin_fd)
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    if tripped:
        status = tripped
    elif returncode == 0:
        status = "ok"
    elif returncode in (-signal.SIGXCPU, -signal.SIGKILL) and time.monotonic() - t0 >= limits.cpu_s * 0.9:
        status = "timeout"
    elif returncode < 0:
        status = "killed"
    else:
        status = "error"
    return RunResult(status, returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                     time.monotonic() - t0)


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


def _runner(backend: str, fusion_url: str | None, limits: Limits):
    if backend == "local":
        return lambda code, stdin, argv=(): run_python(code, stdin, limits, _argv=argv)
    if backend == "fusion":
        from mixmerge.verifiers.sandbox_fusion import run_code
        if not fusion_url:
            raise ValueError("backend='fusion' needs fusion_url")
        return lambda code, stdin, argv=(): run_code(code, stdin, fusion_url, limits, argv=argv)
    raise ValueError(f"unknown sandbox backend {backend!r}")


def _stdio_passes(run, code: str, test: dict) -> bool:
    result = run(code, test["stdin"])
    # The study appends stderr to stdout before comparing, so any stderr output fails the test.
    return result.status == "ok" and not result.stderr.strip() and result.stdout.strip() == test["stdout"].strip()


def _calls_pass(run, code: str, tests: list[dict]) -> bool:
    marker = "@@mixmerge-result-" + secrets.token_hex(16) + "@@"
    spec = json.dumps({"code": code, "calls": [[t["call"], list(t.get("args", []))] for t in tests]})
    result = run(_HARNESS, spec, (marker,))
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


def run_tests(code: str, tests: list[dict], limits: Limits = Limits(), max_tests: int = 20, seed: int = 0,
              backend: str = "local", fusion_url: str | None = None) -> float:
    """1.0 iff every selected test passes (up to ``max_tests``, sampled with ``seed``), else 0.0.

    Tests are ``{"stdin", "stdout"}`` (one process each, pass iff stripped stdout matches and nothing went to
    stderr) or ``{"call", "args", "expected"}`` (all in one harness process; ``call`` may be ``"f"`` or
    ``"Class.method"``, the class is instantiated without arguments). Malformed tests raise ``ValueError``
    (a data problem); nothing the program does raises.
    """
    if not tests:
        raise ValueError("run_tests needs at least one test")
    for t in tests:
        if not ({"stdin", "stdout"} <= t.keys() or {"call", "expected"} <= t.keys()):
            raise ValueError(f"malformed test case (keys {sorted(t)})")
    run = _runner(backend, fusion_url, limits)
    chosen = _select(tests, max_tests, seed)
    calls = [t for t in chosen if "call" in t]
    stdio = [t for t in chosen if "call" not in t]
    if calls and not _calls_pass(run, code, calls):
        return 0.0
    for test in stdio:
        if not _stdio_passes(run, code, test):
            return 0.0
    return 1.0
