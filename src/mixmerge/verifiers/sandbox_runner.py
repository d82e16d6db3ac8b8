"""The program runner that executes inside the sandbox (run as ``python -I -S -B -c <this file>``, never imported).

It reads a spec (``marshal``: code, argv, one stdin per test, limits) from its stdin, sets the rlimits every
process inherits, then runs each test in a fresh forked child with its own stdin, pipes and CPU limit, and
writes one frame per test to its stdout: ``R <status> <returncode> <len stdout> <len stderr> <seconds>\\n``
followed by the raw bytes. The expected outputs never enter the sandbox: the caller compares. In a pid namespace
(``isolated``) it kills every other process in the sandbox after each test (``kill(-1)``), so no test leaves
anything for the next. Only built-in and tiny modules are imported, so start-up stays close to a bare spawn.
"""
import os
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
    os.dup2(stdin_fd, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.closerange(3, spec["nofile"])
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
    os._exit(status)


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
    import time

    stdin_fd = os.memfd_create("stdin")
    view = memoryview(stdin)
    while view:
        view = view[os.write(stdin_fd, view):]
    os.lseek(stdin_fd, 0, 0)
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
    rc = os.waitstatus_to_exitcode(status[0])
    cpu = status[1].ru_utime + status[1].ru_stime
    if tripped:
        verdict = tripped
    elif rc == 0:
        verdict = "ok"
    elif rc in (-SIGXCPU, -SIGKILL) and cpu >= spec["cpu_s"] * 0.9:
        verdict = "timeout"
    else:
        verdict = "killed" if rc < 0 else "error"
    out, err = bytes(bufs[out_r]), bytes(bufs[err_r])
    header = f"R {verdict} {rc} {len(out)} {len(err)} {time.monotonic() - t0:.4f}\n".encode()
    return header + out + err


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


def main():
    import marshal

    spec = marshal.loads(sys.stdin.buffer.read())
    resource = set_common_limits(spec)
    result_fd = os.dup(1)
    for stdin in spec["stdins"]:
        frame = memoryview(run_one(spec, stdin, resource))
        while frame:
            frame = frame[os.write(result_fd, frame):]


if __name__ == "__main__":
    main()
    os._exit(0)  # skip interpreter finalisation: nothing is left to flush
