"""Start the program runner under bubblewrap (or, for ``unsafe_local``, bare) and read its per-test results.

The bubblewrap view holds only the interpreter's prefix and base prefix and ``/usr`` (its shared libraries),
all read-only, a minimal read-only ``/dev`` with a 1 MiB ``/dev/shm``, and a private size-limited ``/tmp`` as
the working directory; no ``/proc``, no home, no project, no data. Every namespace is new (user, pid, ipc, net,
uts, cgroup), nested user namespaces are disabled, all capabilities dropped, the program gets a new session and
dies with its caller; the kernel keyring calls are denied (``sandbox_seccomp``). The whole program runs in its
own cgroup where one can be made, else under a watchdog, a root caller's sandbox then as uid 65534
(``sandbox_nobody``) so that ``RLIMIT_NPROC`` binds.
"""
from __future__ import annotations

import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

from mixmerge.verifiers import sandbox_limits, sandbox_nobody, sandbox_seccomp
from mixmerge.verifiers.sandbox_collect import STDERR_CAP, collect, wait_exit
from mixmerge.verifiers.sandbox_protocol import BOOTSTRAP, memfd, runner_spec
from mixmerge.verifiers.sandbox_types import Limits, RunResult

log = logging.getLogger(__name__)
PYTHON = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
PY_FLAGS = ("-I", "-S", "-B")  # isolated (no env vars, no user site), no site-packages, no .pyc writes
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
       "PYTHONIOENCODING": "utf-8"}
# The signals that can end a test run in place (bwrap exits with 128 + the signal), as statuses.
DEATHS = {signal.SIGALRM: "timeout", signal.SIGXCPU: "timeout", signal.SIGXFSZ: "output_limit"}
SH = shutil.which("sh")
# sh -c ENTER_CGROUP sh N FILE1..FILEN COMMAND...: write its pid to each cgroup.procs file, then exec COMMAND
ENTER_CGROUP = ('n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n - 1)); done; '
                'exec "$@"')


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def _prefixes() -> list[str]:
    """The interpreter's prefix(es) outside /usr, deduplicated, outermost first."""
    out: list[str] = []
    for p in sorted({os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix),
                     os.path.dirname(os.path.dirname(PYTHON))}, key=len):
        if p != "/usr" and not p.startswith("/usr/") and not any(p.startswith(q + "/") for q in out):
            out.append(p)
    return out


def _system_dirs() -> list[str]:
    """/usr, and /lib, /lib64, /bin as links into it (merged /usr) or read-only binds."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "lib32", "bin", "sbin"):
        path = "/" + name
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def bwrap_argv(limits: Limits, info_fd: int | None, seccomp_fd: int | None = None) -> list[str]:
    argv = [bwrap_path(), "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox", *_system_dirs()]
    for prefix in _prefixes():
        argv += ["--ro-bind", prefix, prefix]
    argv += ["--dev", "/dev", "--size", str(1 << 20), "--tmpfs", "/dev/shm",
             "--size", str((limits.fsize_mb + 1) << 20), "--tmpfs", "/tmp",
             "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/tmp"]
    if info_fd is not None:
        argv += ["--info-fd", str(info_fd)]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return argv + ["--", PYTHON, *PY_FLAGS, "-c", BOOTSTRAP]


@cache
def probe(as_nobody: bool = False) -> str | None:
    """None when bubblewrap runs here with every namespace (``as_nobody``: behind ``sandbox_nobody.prefix``), else
    why not."""
    if not bwrap_path():
        return "bubblewrap (bwrap) is not installed"
    command = sandbox_nobody.prefix(bwrap_path(), tuple(_prefixes())) if as_nobody else ()
    if command is None:
        return "setpriv is not installed"
    seccomp_fd = sandbox_seccomp.filter_fd()
    try:
        proc = subprocess.run([*command, *bwrap_argv(Limits(), None, seccomp_fd)[:-2], "-c", "pass"], env=ENV,
                              capture_output=True, timeout=30, stdin=subprocess.DEVNULL, pass_fds=(seccomp_fd,))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap failed to start: {exc}"
    finally:
        os.close(seccomp_fd)
    if proc.returncode != 0:
        return f"bwrap failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace').strip()[:500]}"
    return None


@cache
def drops_root() -> bool:
    """Whether a sandbox without a cgroup starts as ``sandbox_nobody.NOBODY``: the caller is root, whom the kernel
    spares ``RLIMIT_NPROC``, and that start works here."""
    return os.geteuid() == 0 and probe(as_nobody=True) is None


class _Launch:
    """One started sandbox: the process, its output readers and its whole-program limits."""

    def __init__(self, code, stdins, limits: Limits, argv, isolated: bool) -> None:
        self.limits, self.isolated, self.info = limits, isolated, None
        self.cgroup = sandbox_limits.make_cgroup(limits)
        self.watchdog = None if self.cgroup and isolated else sandbox_limits.Watchdog(limits)
        # The last test's stdout and stderr where it runs in the runner's own process (sandbox_runner): only in a
        # cgroup. Without one, a fork bomb as root meets no process limit (RLIMIT_NPROC spares root) and only
        # the runner's own kill, from outside the test process, stops it at once.
        self.in_place_fds = (os.memfd_create("stdout"), os.memfd_create("stderr")) if not self.watchdog else None
        self.workdir = None if isolated else tempfile.mkdtemp(prefix="mixmerge-unsafe-")
        info_r, info_w = os.pipe() if isolated and self.watchdog else (None, None)
        seccomp_fd = sandbox_seccomp.filter_fd() if isolated else None
        command = bwrap_argv(limits, info_w, seccomp_fd) if isolated else [PYTHON, *PY_FLAGS, "-c", BOOTSTRAP]
        if isolated and self.watchdog and drops_root():
            command = [*sandbox_nobody.prefix(bwrap_path(), tuple(_prefixes())), *command]
        gate_r, gate_w = os.pipe() if self.cgroup and sandbox_limits.children_lists() else (None, None)
        enter = None
        if self.cgroup and gate_w is None and SH:  # the shell joins and execs: preexec_fn would force fork()
            command = [SH, "-c", ENTER_CGROUP, "sh", str(len(self.cgroup.procs_files)), *self.cgroup.procs_files,
                       *command]
        elif self.cgroup and gate_w is None:
            enter = self.cgroup.enter
        spec_fd = memfd(runner_spec(code, stdins, limits, argv, isolated, gate_r, self.in_place_fds))
        pass_fds = [fd for fd in (info_w, seccomp_fd, gate_r, *(self.in_place_fds or ())) if fd is not None]
        try:
            self.proc = subprocess.Popen(
                command, stdin=spec_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=self.workdir,
                start_new_session=True, pass_fds=pass_fds, preexec_fn=enter)
        except BaseException:
            for fd in (info_r, gate_w):
                if fd is not None:
                    os.close(fd)
            self.close()
            raise
        finally:
            for fd in (spec_fd, info_w, seccomp_fd, gate_r):
                if fd is not None:
                    os.close(fd)
        self.info = info_r
        if gate_w is not None:
            self._open_gate(gate_w)
        if self.watchdog and not isolated:
            self.watchdog.root = self.proc.pid

    def _open_gate(self, gate_w: int) -> None:
        """Move the started sandbox into its cgroup, then let the runner start the program (it waits for this).

        The first move into a cgroup after a pause blocks the mover for an RCU grace period (12 ms here, more
        than half a bare interpreter start); done here, it overlaps the sandbox's own start instead of preceding
        it. If the move fails the runner reads end-of-file and runs nothing."""
        try:
            self.cgroup.adopt(self.proc.pid)
            os.write(gate_w, b"1")
        except OSError as exc:
            log.error("sandbox could not be moved into its cgroup: %s", exc)
        finally:
            os.close(gate_w)

    def read_info(self, timeout: float = 1.0) -> None:
        """bwrap's ``child-pid``: the sandbox's init, root of the process tree the watchdog walks."""
        sel = selectors.DefaultSelector()
        sel.register(self.info, selectors.EVENT_READ)
        data, end = b"", time.monotonic() + timeout
        while b"}" not in data and len(data) < 4096 and sel.select(max(0.0, end - time.monotonic())):
            chunk = os.read(self.info, 4096)
            if not chunk:
                break
            data += chunk
        sel.close()
        os.close(self.info)
        self.info = None
        try:
            self.watchdog.root = int(json.loads(data)["child-pid"])
        except (ValueError, KeyError, TypeError):
            if data:
                log.error("bwrap --info-fd gave %r", data[:200])

    def stop(self) -> None:
        """Kill the sandbox and everything in it; returns once all of it is gone."""
        if not self.isolated and self.watchdog.root:
            for pid in reversed(sandbox_limits.process_tree(self.watchdog.root)[1:]):
                _kill(pid)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        if self.isolated and self.watchdog:
            if self.info is not None:
                self.read_info()
            if self.watchdog.root:
                _wait_gone(self.watchdog.root)

    def close(self) -> None:
        for stream in (self.proc.stdout, self.proc.stderr) if hasattr(self, "proc") else ():
            stream.close()
        if self.cgroup:
            self.cgroup.close()
        if self.info is not None:
            os.close(self.info)
            self.info = None
        for fd in self.in_place_fds or ():
            os.close(fd)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def in_place_result(self, rc: int | None, wall_s: float) -> RunResult:
        """The last test's result where the runner ran it in place: the output from its memfds, and ``rc`` from its
        frame or, if it died, from bwrap's exit status (None: unknown, it was killed from here)."""
        cap = self.limits.output_bytes
        out, err = (os.pread(fd, cap + 1, 0) for fd in self.in_place_fds)
        if len(out) > cap or len(err) > cap:
            status = "output_limit"
        elif rc == 0:
            status = "ok"
        elif rc is None or rc < 0:
            status = DEATHS.get(-rc if rc else None, "killed")
        else:
            status = "error"
        return RunResult(status, rc, out[:cap].decode("utf-8", "replace"), err[:cap].decode("utf-8", "replace"),
                         wall_s)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_gone(pid: int) -> None:
    """The namespace's init exits only after every process in it; wait for that (it is not our child)."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except OSError:
        pass
    sel = selectors.DefaultSelector()
    sel.register(pidfd, selectors.EVENT_READ)
    if not sel.select(5.0):
        log.error("sandbox init %d still running 5 s after SIGKILL", pid)
    sel.close()
    os.close(pidfd)


def run_batch(code: str, stdins: list[str], limits: Limits, argv=(), *, isolated: bool = True,
              on_result=None) -> list[RunResult]:
    """Run ``code`` once per stdin, in one sandbox: a result per test that ran, plus one saying why the rest did
    not (if any). ``on_result(result)`` returning False stops early. Never raises on what the program does."""
    t0 = time.monotonic()
    try:
        launch = _Launch(code, stdins, limits, argv, isolated)
    except OSError as exc:
        log.error("sandbox failed to start: %s", exc)
        return [RunResult("sandbox_error", None, "", str(exc), time.monotonic() - t0)]
    try:
        results, stderr, ended = collect(launch, len(stdins), t0, on_result)
        in_place = ended is None and launch.in_place_fds is not None and len(results) == len(stdins) - 1
        exit_status = wait_exit(launch) if in_place else None
        launch.stop()
        if ended is None:  # the runner is gone: its last words (or bwrap's) may still be in the pipe
            stderr += launch.proc.stderr.read(STDERR_CAP)[: max(0, STDERR_CAP - len(stderr))]
        text = stderr.decode("utf-8", "replace")
        if ended is None and text.startswith("bwrap:"):  # the sandbox never started
            ended = "sandbox_error"
            log.error("sandbox failed: %s", text.strip()[:500])
        elif in_place:  # it died in the last test, which ran in place
            rc = exit_status if exit_status is None or exit_status <= 128 else 128 - exit_status
            results.append(launch.in_place_result(rc, time.monotonic() - t0 - sum(r.wall_s for r in results)))
            if on_result:
                on_result(results[-1])
        elif ended is None:  # the runner went away: the program killed it
            ended = "killed"
    finally:
        launch.close()
    if ended == "stopped" or len(results) == len(stdins):
        return results
    results.append(RunResult(ended, launch.proc.returncode, "", text, time.monotonic() - t0))
    return results
