"""The opd job's teacher servers (``opd.teachers.backend: vllm_server``): one ``vllm serve <expert>`` per domain on
its own GPUs, started by the job, health-checked, and stopped when the job ends (also on an error or SIGTERM).

The job's devices are split in order: domain i (sorted) gets ``gpus_per_teacher`` devices, the training processes
the rest (``split_devices``). A teacher that exits, or that does not answer ``GET /health`` within
``start_timeout_s``, is a ``TeacherServerError`` naming its domain, command, port and the last lines of its log.
Each server runs in its own process group, so stopping it also stops the workers it spawned.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

DEFAULTS = {"backend": "local", "gpus_per_teacher": 1, "port_base": None, "start_timeout_s": 1800,
            "serve_command": ["vllm", "serve"], "serve_args": []}
URLS_ENV = "MIXMERGE_TEACHER_URLS"  # JSON {domain: base URL}, for the stage the servers were started for
STOP_GRACE_S = 30.0
LOG_TAIL_LINES = 20


class TeacherServerError(RuntimeError):
    pass


def settings_with_defaults(settings: dict | None) -> dict:
    return {**DEFAULTS, **(settings or {})}


def teacher_gpus(settings: dict | None, domains: list[str]) -> int:
    """GPUs of a job that serve teachers: none for the local backend."""
    settings = settings_with_defaults(settings)
    return len(domains) * settings["gpus_per_teacher"] if settings["backend"] == "vllm_server" else 0


def split_devices(devices: list[str], domains: list[str], per_teacher: int) -> tuple[dict[str, list[str]], list[str]]:
    """({domain: its teacher's devices}, the training processes' devices): teachers first, in domain order."""
    needed = len(domains) * per_teacher
    if needed >= len(devices):
        raise TeacherServerError(
            f"config key 'opd.teachers.gpus_per_teacher': {len(domains)} teachers x {per_teacher} GPU(s) = {needed} "
            f"leave no GPU for training among the job's {len(devices)} ({','.join(devices) or 'none'})")
    teachers = {d: devices[i * per_teacher:(i + 1) * per_teacher] for i, d in enumerate(sorted(domains))}
    return teachers, devices[needed:]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(settings: dict, model_dir: str, port: int) -> list[str]:
    """``<serve_command> <model> --host 127.0.0.1 --port P --tensor-parallel-size G --logprobs-mode
    processed_logprobs <serve_args>``: processed log-probs are those of the temperature-scaled distribution, the
    one the student's loss compares with."""
    return [*settings["serve_command"], str(model_dir), "--host", "127.0.0.1", "--port", str(port),
            "--tensor-parallel-size", str(settings["gpus_per_teacher"]), "--logprobs-mode", "processed_logprobs",
            *(str(a) for a in settings["serve_args"])]


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        return f"(log unreadable: {err.strerror})"
    return "\n".join(text.splitlines()[-lines:]) or "(log empty)"


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Server:
    """One teacher's process: its domain, command, port, log file and environment."""

    def __init__(self, domain: str, command: list[str], port: int, log: Path, env: dict):
        self.domain, self.command, self.port, self.log, self.env = domain, command, port, log, env
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            preexec_fn=die_with_parent)

    def failure(self, reason: str) -> TeacherServerError:
        return TeacherServerError(
            f"teacher server of domain {self.domain!r} {reason}\n  command: {' '.join(self.command)}\n"
            f"  port: {self.port}\n  CUDA_VISIBLE_DEVICES: {self.env.get('CUDA_VISIBLE_DEVICES')}\n"
            f"  log: {self.log}, last lines:\n{log_tail(self.log)}")

    def check_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise self.failure(f"exited with code {code}")

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after ``STOP_GRACE_S``."""
        if self.process is None:
            return
        for sig, wait in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        _reap_group(self.process.pid)


def _reap_group(pgid: int) -> None:
    """Kill what is left in the group (workers the server spawned may outlive their parent)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def die_with_parent() -> None:
    """In a child: get SIGTERM when the process that started it dies (even by SIGKILL), so no server or stage
    keeps a GPU after its job is gone."""
    import ctypes

    pr_set_pdeathsig = 1
    if ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def _terminated(signum, _frame):
    raise SystemExit(128 + signum)


class TeacherServers:
    """``with TeacherServers(models, settings, log_dir, devices, env) as servers:`` starts a server per domain of
    ``models`` (domain -> model dir) on ``devices[domain]``, waits until every one answers ``/health`` and yields
    ``servers.urls`` (domain -> base URL); leaving the block stops them all."""

    def __init__(self, models: dict[str, str], settings: dict | None, log_dir: str | Path,
                 devices: dict[str, list[str]], env: dict | None = None, poll_s: float = 0.5):
        self.settings = settings_with_defaults(settings)
        self.poll_s = poll_s
        env = dict(os.environ if env is None else env)
        base = self.settings["port_base"]
        self.servers = []
        for i, domain in enumerate(sorted(models)):
            port = free_port() if base is None else base + i
            self.servers.append(Server(domain, serve_command(self.settings, models[domain], port),
                                       port, Path(log_dir) / f"{domain}.log",
                                       {**env, "CUDA_VISIBLE_DEVICES": ",".join(devices[domain])}))
        self._previous_sigterm = None

    @property
    def urls(self) -> dict[str, str]:
        return {s.domain: s.url for s in self.servers}

    def __enter__(self) -> TeacherServers:
        self._previous_sigterm = signal.signal(signal.SIGTERM, _terminated)
        try:
            for server in self.servers:
                server.start()
            self.wait_healthy()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.settings["start_timeout_s"]
        waiting = list(self.servers)
        while waiting:
            for server in list(waiting):
                server.check_running()
                if healthy(server.url):
                    waiting.remove(server)
            if waiting and time.monotonic() > deadline:
                raise waiting[0].failure(f"did not answer GET {waiting[0].url}/health within "
                                         f"{self.settings['start_timeout_s']} s (opd.teachers.start_timeout_s)")
            if waiting:
                time.sleep(self.poll_s)

    def check_running(self) -> None:
        """Raise for the first teacher whose process has exited."""
        for server in self.servers:
            server.check_running()

    def __exit__(self, *exc) -> None:
        for server in self.servers:
            server.stop()
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
