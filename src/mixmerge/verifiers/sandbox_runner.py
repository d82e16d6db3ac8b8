"""The program runner that executes inside the sandbox: ``sandbox_protocol.BOOTSTRAP`` reads this file's code
object and a spec (``marshal``: code, argv, one stdin per test, limits) from its stdin and calls ``main(spec)``.

It waits at the spec's gate (if any) until the caller has put the sandbox in its cgroup, sets the rlimits every
process inherits, then runs each test in a fresh forked child with its own stdin, pipes and CPU limit, and writes
one frame per test to its stdout, ``R <status> <returncode> <len stdout> <len stderr> <seconds>\\n`` followed by
the raw bytes. The expected outputs never enter the sandbox: the caller compares. In a pid namespace
(``isolated``) it kills every other process in the sandbox after each test (``kill(-1)``), so no test leaves
anything for the next. Given ``in_place_fds`` (in a cgroup), the last test runs in this process instead
(``run_in_place``). Only built-in and tiny modules are imported, so start-up stays close to a bare spawn.
"""
import posix as os  # the os module imports stat, posixpath and _collections_abc: 3-5 ms of a one-test program
import sys

SIGKILL, SIGXCPU = 9, 24
GRACE_S = 0.05  # after the test process exits, how long its descendants may keep its pipes open


def set_common_limits(spec):
    import resource

    mb = 1 << 20
    pairs = [(resource.RLIMIT_AS, spec["memory_mb"] * mb), (resource.RLIMIT_NOFILE, spec["nofile"]),
             (resource.RLIMIT_FSIZE, spec["fsize_mb"] * mb), (resource.RLIMIT_CORE, 0)]
    if spec["isolated"]:  # counted per user namespace: only this sandbox's processes (+ init and this runner)
        pairs.append((resource.RLIMIT_NPROC, spec["nproc"] + 2))
    for res, value in pairs:
        resource.setrlimit(res, (value, value))
    return resource


def exit_code(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def child(spec, stdin_fd, out_w, err_w, resource):
    """The test process: a fresh ``__main__`` running the program; never returns."""
    os.setpgid(0, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os._exit(execute(spec, stdin_fd, 3, resource))


def execute(spec, stdin_fd, first_closed, resource):
    """Run the program as ``__main__`` on ``stdin_fd`` and this process's fds 1 and 2, with every fd from
    ``first_closed`` on closed; returns its exit status."""
    os.dup2(stdin_fd, 0)
    os.closerange(first_closed, spec["nofile"])
    cpu = max(1, int(spec["cpu_s"] + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU first, SIGKILL if it is ignored
    sys.stdin = sys.__stdin__ = open(0, encoding="utf-8", errors="replace", closefd=False)
    sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", closefd=False)
    sys.stderr = sys.__stderr__ = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.argv = ["prog.py", *spec["argv"]]
    main = type(sys)("__main__")
    main.__dict__.update(__file__="prog.py", __builtins__=__builtins__)
    sys.modules["__main__"] = main
    status = 0
    try:
        exec(compile(spec["code"], "prog.py", "exec"), main.__dict__)
    except SystemExit as exc:
        status = exit_code(exc.code)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    return status


def run_in_place(spec, stdin, resource, result_fd):
    """The last test, in this process: no later test needs protecting from it, and a forked test process costs a
    fork, its copy-on-write faults and the hand-offs of reading its pipes. Its output goes to the caller's memfds;
    its frame carries only the exit status (the caller reads the output from the memfds). If it dies instead
    (SIGALRM at ``wall_s``, the CPU or memory limit) there is no frame: bwrap's exit status says how.
    The program can reach the result fd, so it could send that frame early: no status it could not get by
    exiting (the expected output never enters the sandbox). Never returns."""
    import _signal  # the core of signal, which imports enum (milliseconds)
    import time

    os.dup2(spec["in_place_fds"][0], 1)
    os.dup2(spec["in_place_fds"][1], 2)
    os.dup2(result_fd, 3)  # last: a memfd may have been fd 3
    t0 = time.monotonic()
    _signal.setitimer(_signal.ITIMER_REAL, spec["wall_s"])
    rc = execute(spec, stdin_memfd(stdin), 4, resource)
    _signal.setitimer(_signal.ITIMER_REAL, 0)
    kill_all(None, True)  # nothing the program started writes to the memfds after the frame
    send(3, frame(spec, rc, 0.0, None, b"", b"", t0))
    os._exit(0)


def stdin_memfd(stdin):
    fd = os.memfd_create("stdin")
    view = memoryview(stdin)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, 0)
    return fd


def collect(pid, fds, spec, t0):
    """Read the test's stdout and stderr until they close, its time is up or the output cap trips."""
    import select
    import time

    cap = spec["output_bytes"]
    bufs = {fd: bytearray() for fd in fds}
    open_fds, tripped, status, exited_at = list(fds), None, None, None
    while open_fds:
        now = time.monotonic()
        if now >= t0 + spec["wall_s"]:
            tripped = "timeout"
            break
        if status is None:
            done, status_word, usage = os.wait4(pid, os.WNOHANG)
            if done:
                status, exited_at = (status_word, usage), now
        if exited_at is not None and now - exited_at > GRACE_S:
            break
        for fd in select.select(open_fds, [], [], min(t0 + spec["wall_s"] - now, GRACE_S))[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.remove(fd)
                continue
            if len(bufs[fd]) + len(chunk) > cap:
                chunk, tripped = chunk[: cap - len(bufs[fd])], "output_limit"
            bufs[fd] += chunk
        if tripped:
            break
    return bufs, tripped, status


def run_one(spec, stdin, resource):
    """One test in a forked process; returns its frame."""
    import time

    stdin_fd = stdin_memfd(stdin)
    (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        child(spec, stdin_fd, out_w, err_w, resource)
    for fd in (stdin_fd, out_w, err_w):
        os.close(fd)
    bufs, tripped, status = collect(pid, (out_r, err_r), spec, t0)
    kill_all(pid, spec["isolated"])
    if status is None:
        _, status_word, usage = os.wait4(pid, 0)
        status = (status_word, usage)
    reap()
    for fd in (out_r, err_r):
        os.close(fd)
    cpu = status[1].ru_utime + status[1].ru_stime
    rc = os.waitstatus_to_exitcode(status[0])
    return frame(spec, rc, cpu, tripped, bytes(bufs[out_r]), bytes(bufs[err_r]), t0)


def frame(spec, rc, cpu, tripped, out, err, t0):
    import time

    if tripped:
        verdict = tripped
    elif rc == 0:
        verdict = "ok"
    elif rc in (-SIGXCPU, -SIGKILL) and cpu >= spec["cpu_s"] * 0.9:
        verdict = "timeout"
    else:
        verdict = "killed" if rc < 0 else "error"
    header = f"R {verdict} {rc} {len(out)} {len(err)} {time.monotonic() - t0:.4f}\n".encode()
    return header + out + err


def send(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def kill_all(pid, isolated):
    """Kill the test process and all it started: everything but init and this runner, in a pid namespace."""
    try:
        if isolated:
            os.kill(-1, SIGKILL)
        else:
            os.killpg(pid, SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def reap():
    while True:  # our own children (orphans of the test go to init, which reaps them)
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break


def main(spec):
    if spec["gate_fd"] is not None:
        if os.read(spec["gate_fd"], 1) != b"1":
            os._exit(125)  # the caller could not put this sandbox in its cgroup: run nothing
        os.close(spec["gate_fd"])
    resource = set_common_limits(spec)
    result_fd = os.dup(1)
    stdins = spec["stdins"]
    for i, stdin in enumerate(stdins):
        if spec["in_place_fds"] and spec["isolated"] and i == len(stdins) - 1:  # its kill(-1) needs a pid namespace
            run_in_place(spec, stdin, resource, result_fd)
        else:
            send(result_fd, run_one(spec, stdin, resource))
    os._exit(0)  # skip interpreter finalisation: nothing is left to flush
