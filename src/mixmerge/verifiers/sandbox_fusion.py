"""Client for a SandboxFusion server (``POST /run_code``), the cluster alternative to the local sandbox."""
from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request

from mixmerge.verifiers.sandbox_types import Limits, RunResult

log = logging.getLogger(__name__)
COMPILE_TIMEOUT_S = 5  # as in the study's client


def _endpoint(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/run_code") else url + "/run_code"


def run_code(code: str, stdin: str, url: str, limits: Limits = Limits(), argv: tuple[str, ...] = ()) -> RunResult:
    """Run a Python program on the server; HTTP, protocol and timeout errors become ``sandbox_error``."""
    if argv:  # the server takes no command line, so the program receives its arguments in its first line
        code = f"import sys\nsys.argv[1:] = {list(argv)!r}\n" + code
    body = json.dumps({"code": code, "language": "python", "stdin": stdin,
                       "compile_timeout": COMPILE_TIMEOUT_S, "run_timeout": limits.wall_s,
                       "memory_limit": limits.memory_mb}).encode()
    request = urllib.request.Request(_endpoint(url), data=body, headers={"Content-Type": "application/json"})
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=limits.wall_s + COMPILE_TIMEOUT_S) as response:
            reply = json.loads(response.read(4 * limits.output_bytes + 65536))
        run = reply.get("run_result") or {}
        stdout, stderr = str(run.get("stdout") or ""), str(run.get("stderr") or "")
        returncode = run.get("return_code")
        run_status = run.get("status")
    except (OSError, ValueError, AttributeError, urllib.error.URLError) as exc:
        log.warning("SandboxFusion call failed: %s", exc)
        return RunResult("sandbox_error", None, "", str(exc), time.monotonic() - t0)
    if len(stdout.encode()) > limits.output_bytes or len(stderr.encode()) > limits.output_bytes:
        status = "output_limit"
    elif run_status == "TimeLimitExceeded":
        status = "timeout"
    elif run_status == "Finished" and returncode == 0:
        status = "ok"
    elif run_status == "Finished" or run_status == "Error":
        status = "error"
    else:
        status = "sandbox_error"
    cap = limits.output_bytes
    return RunResult(status, returncode, stdout[:cap], stderr[:cap], time.monotonic() - t0)
