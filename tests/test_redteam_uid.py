"""The sandbox and red-team tests again as an unprivileged uid, which this test switches to itself (needs root).

It starts pytest on tests/test_redteam.py and tests/test_sandbox.py under ``setpriv --reuid=65534`` inside a
private mount namespace (a root-run bubblewrap binding the whole host) in which the interpreter is reachable by
that uid (``sandbox_nobody.reachable_view``). Nothing on the host changes.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mixmerge.verifiers import sandbox_nobody

REPO = Path(__file__).resolve().parents[1]
UID = sandbox_nobody.NOBODY
FILES = ["tests/test_redteam.py", "tests/test_sandbox.py"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("bwrap") or not shutil.which("setpriv"),
                                reason="switching uid needs root, bwrap and setpriv")


def as_uid(base: str, *argv: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``python argv`` as UID in the repository, in the private view."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": base, "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": base, "NLTK_DATA": os.path.join(base, "nltk"),
           "PYTHONPATH": str(REPO / "src")}  # this checkout's code, not whatever the venv has installed
    view = sandbox_nobody.reachable_view((sys.prefix, sys.base_prefix, REPO))
    command = [shutil.which("bwrap"), "--die-with-parent", *view, "--chdir", str(REPO), "--",
               shutil.which("setpriv"), f"--reuid={UID}", f"--regid={UID}", "--clear-groups", sys.executable, *argv]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def test_sandbox_and_redteam_as_unprivileged_uid():
    base = tempfile.mkdtemp(prefix="mixmerge-uid-")
    try:
        os.chown(base, UID, UID)
        os.chmod(base, 0o755)
        mode = as_uid(base, "-c", "import os\nfrom mixmerge.verifiers import sandbox\n"
                                  "print(os.getuid(), sandbox.run_python('import os; print(os.getuid())').stdout)\n"
                                  "print(sandbox.isolation())")
        proc = as_uid(base, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp",
                      os.path.join(base, "pytest"), *FILES)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert mode.stdout.split()[:2] == [str(UID), str(UID)], mode.stdout + mode.stderr
    print(mode.stdout.strip().splitlines()[-1])
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) >= 40 and "failed" not in proc.stdout, tail
    print(proc.stdout.strip().splitlines()[-1])
