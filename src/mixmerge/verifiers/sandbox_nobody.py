"""Start a root caller's sandbox as an unprivileged uid, so that the kernel's per-user process limit binds.

The kernel exempts uid 0 from ``RLIMIT_NPROC`` (in any user namespace whose uid maps to it), so where no cgroup
caps a root caller's sandbox, a fork bomb met only the watchdog's poll: on a 2-core machine it reached 1,400 to
3,000 host processes before the kill. Run as ``NOBODY`` instead, each sandbox's processes count against the
runner's ``RLIMIT_NPROC`` in the sandbox's own user namespace.

``prefix()`` is the argv put before bubblewrap's: a root bubblewrap making a private mount namespace in which
``NOBODY`` can reach the interpreter (directories only root may enter, ``/root`` holding a pyenv Python say, are
covered by an empty tmpfs and the needed paths bound back read-only), then ``setpriv`` to ``NOBODY``. The host
itself is not changed.
"""
from __future__ import annotations

import os
import shutil
import stat
from functools import cache
from pathlib import Path

NOBODY = 65534


def closed_ancestor(path: str) -> str | None:
    """The outermost ancestor of ``path`` (or ``path``) that other users cannot enter, if any."""
    parts = Path(path).parts
    for i in range(2, len(parts) + 1):
        p = os.path.join(*parts[:i])
        if not os.stat(p).st_mode & stat.S_IXOTH:
            return p
    return None


def reachable_view(paths) -> list[str]:
    """bwrap arguments: the host as it is, with the closed directories above ``paths`` papered over and the
    entries below them that lead to ``paths`` bound back."""
    args = ["--bind", "/", "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc"]
    needed = {os.path.realpath(p) for p in paths}
    closed = {c for c in map(closed_ancestor, needed) if c}
    for c in sorted(closed):
        args += ["--tmpfs", c]
    binds = set()
    for p in needed:
        for c in closed:
            if p.startswith(c + "/"):  # bind the entry just below the closed directory (bwrap would make the
                binds.add(os.path.join(c, Path(p).relative_to(c).parts[0]))  # levels between root-only)
    for b in sorted(binds):
        args += ["--ro-bind", b, b]
    return args


@cache
def prefix(bwrap: str, paths: tuple[str, ...]) -> tuple[str, ...] | None:
    """The argv that runs what follows as NOBODY with ``paths`` reachable; None without ``setpriv``. Cached: a
    sandbox start need not stat the paths' ancestors again."""
    setpriv = shutil.which("setpriv")
    if not setpriv:
        return None
    return (bwrap, "--die-with-parent", *reachable_view(paths), "--", setpriv, f"--reuid={NOBODY}",
            f"--regid={NOBODY}", "--clear-groups", "--")
