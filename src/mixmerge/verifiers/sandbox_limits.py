"""Limits on a sandboxed program as a whole: a cgroup (v2, else v1) where one can be made, else a watchdog.

A cgroup caps the memory (swap included) and the number of processes of everything the program starts, in the
kernel. Version 2 needs a delegated cgroup whose ``cgroup.subtree_control`` offers ``memory`` and ``pids`` (the
root of a container's cgroup namespace as root, or a delegated systemd unit with the job in a leaf below it);
version 1 needs writable ``memory`` and ``pids`` hierarchies (in practice: root). Without either, the caller
polls the program's process tree (``Watchdog``): the summed resident memory and the process count, killing the
whole sandbox past either limit; per-process rlimits (set by the runner) stay the floor in every case.
"""
from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mixmerge.verifiers.sandbox_types import Limits

log = logging.getLogger(__name__)
PAGE = os.sysconf("SC_PAGE_SIZE")
EMPTY_POLL_S, EMPTY_WAIT_S = 0.0005, 1.0  # killed processes leave within a millisecond; a 5 ms poll cost 5 ms a run


@dataclass(frozen=True)
class CgroupSupport:
    version: int
    parents: tuple[str, ...]  # v2: one dir; v1: (memory dir, pids dir)


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount root, mount point, fstype, super options) of every cgroup mount."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(rfields) >= 3 and rfields[0] in ("cgroup", "cgroup2"):
            out.append((fields[3], fields[4], rfields[0], set(rfields[2].split(","))))
    return out


def _own_paths() -> dict[str, str]:
    """Controller (or "" for v2) -> this process's cgroup path."""
    out = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            out[name] = path
    return out


def _join(root: str, point: str, path: str) -> str:
    rel = path[len(root):] if root != "/" and path.startswith(root) else path
    return os.path.join(point, rel.lstrip("/"))


def _v2_parent(mounts, own) -> str | None:
    for root, point, fstype, _ in mounts:
        if fstype != "cgroup2" or "" not in own:
            continue
        parent = _join(root, point, own[""])
        try:
            wanted = {"memory", "pids"}
            if not wanted <= set(Path(parent, "cgroup.controllers").read_text().split()):
                continue
            enabled = set(Path(parent, "cgroup.subtree_control").read_text().split())
            if not wanted <= enabled:
                Path(parent, "cgroup.subtree_control").write_text("+memory +pids")
            if os.access(parent, os.W_OK):
                return parent
        except OSError:
            continue
    return None


def _v1_parents(mounts, own) -> tuple[str, str] | None:
    found = {}
    for root, point, fstype, options in mounts:
        for name in ("memory", "pids"):
            if fstype == "cgroup" and name in options and name in own:
                path = _join(root, point, own[name])
                if os.access(path, os.W_OK):
                    found[name] = path
    return (found["memory"], found["pids"]) if len(found) == 2 else None


@cache
def cgroup_support() -> CgroupSupport | None:
    """The cgroup version this process can make per-program cgroups in, or None."""
    try:
        mounts, own = _mounts(), _own_paths()
    except OSError:
        return None
    v2 = _v2_parent(mounts, own)
    if v2:
        return CgroupSupport(2, (v2,))
    v1 = _v1_parents(mounts, own)
    return CgroupSupport(1, v1) if v1 else None


def describe() -> str:
    support = cgroup_support()
    per_process = "rlimits per process (address space, CPU time, file size, open files, processes)"
    if support is None:
        if not children_lists():
            return f"{per_process}; whole program: NONE (no cgroup can be made here, no /proc children lists)"
        return (f"{per_process}; whole program: watchdog on summed resident memory and process count "
                "(no cgroup can be made here)")
    files = "memory.max, memory.swap.max, pids.max" if support.version == 2 else \
        "memory.limit_in_bytes, memory.memsw.limit_in_bytes, pids.max"
    return f"{per_process}; whole program: cgroup v{support.version} ({files})"


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class Cgroup:
    """One program's cgroup(s); ``enter`` runs in the child before exec (async-signal-safe: raw writes only)."""

    def __init__(self, support: CgroupSupport, limits: Limits) -> None:
        name = f"mixmerge-sbx-{os.getpid()}-{secrets.token_hex(4)}"
        self.dirs = [os.path.join(parent, name) for parent in support.parents]
        self.version = support.version
        memory = str(limits.memory_mb << 20)
        for d in self.dirs:
            os.mkdir(d)
        try:
            if self.version == 2:
                d = self.dirs[0]
                self._settings = [("memory.max", memory), ("memory.swap.max", "0"), ("pids.max", str(limits.nproc + 2))]
                for key, value in self._settings:
                    if os.path.exists(os.path.join(d, key)):
                        _write(os.path.join(d, key), value)
            else:
                mem, pids = self.dirs
                _write(os.path.join(mem, "memory.limit_in_bytes"), memory)
                if os.path.exists(os.path.join(mem, "memory.memsw.limit_in_bytes")):
                    _write(os.path.join(mem, "memory.memsw.limit_in_bytes"), memory)
                _write(os.path.join(pids, "pids.max"), str(limits.nproc + 2))
        except OSError:
            self.close()
            raise
        self.procs_files = [os.path.join(d, "cgroup.procs") for d in self.dirs]

    def adopt(self, root: int) -> None:
        """Move ``root`` and all its descendants here. Each moves before its children are listed: a child forked
        before the move is listed, one forked after it starts here."""
        todo = [root]
        while todo:
            pid = todo.pop()
            for path in self.procs_files:
                _write(path, str(pid))
            todo += children(pid)

    def enter(self) -> None:
        pid = str(os.getpid())
        for path in self.procs_files:
            _write(path, pid)

    def pids(self) -> list[int]:
        found = set()
        for path in self.procs_files:
            try:
                found |= {int(x) for x in Path(path).read_text().split()}
            except OSError:
                pass
        return sorted(found)

    def close(self) -> None:
        """Kill anything left in the cgroup and remove it."""
        kill_file = os.path.join(self.dirs[0], "cgroup.kill")
        for _ in range(int(EMPTY_WAIT_S / EMPTY_POLL_S)):
            left = self.pids()
            if not left:
                break
            if self.version == 2 and os.path.exists(kill_file):
                _write(kill_file, "1")
            for pid in left:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            time.sleep(EMPTY_POLL_S)
        for d in self.dirs:
            for _ in range(100):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.005)
            else:
                log.error("sandbox cgroup %s could not be removed", d)


def make_cgroup(limits: Limits) -> Cgroup | None:
    support = cgroup_support()
    if support is None:
        return None
    try:
        return Cgroup(support, limits)
    except OSError as exc:
        log.warning("sandbox cgroup could not be made (%s); using the watchdog", exc)
        return None


@cache
def children_lists() -> bool:
    """Whether /proc lists each task's children (a kernel built with CONFIG_PROC_CHILDREN)."""
    return os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def children(pid: int) -> list[int]:
    """The children of ``pid``: those of its tasks still there."""
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(x) for x in f.read().split()]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return out  # it, or one of its tasks, exited meanwhile
    return out


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (orphans in a pid namespace are re-parented to its init, the root)."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children(pid)
    return out


def resident_bytes(pid: int) -> int:
    """The process's proportional share of resident memory (PSS): a page shared by n processes counts 1/n in
    each, so the sum over a tree is its real footprint. Summed RSS counted the interpreter's shared pages once per
    process, and eight forked interpreters passed 1 GiB. Falls back to RSS where smaps_rollup is missing."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) << 10
    except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
        pass
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return 0


class Watchdog:
    """Polls a sandbox's process tree; ``check()`` names the whole-program limit it broke, else None."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.root: int | None = None
        self.peak_bytes = 0

    def check(self) -> str | None:
        if self.root is None:
            return None
        tree = process_tree(self.root)
        total = sum(resident_bytes(pid) for pid in tree)
        self.peak_bytes = max(self.peak_bytes, total)
        if total > self.limits.memory_mb << 20:
            return "memory_limit"
        if len(tree) > self.limits.nproc + 3:  # + bwrap's init, the runner, and a moment's slack
            return "killed"
        return None
