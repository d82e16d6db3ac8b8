"""Tests that plan or run the DAG do it in their own copy of the workflow, never in the checkout.

The main job (``scripts/run_tiny_grid.sh``) fills the checkout's results/, logs/, benchmarks/ and .snakemake/;
a dry run there then finds those outputs and plans less than the full grid, and a real run there would mix
test outputs with the main job's. So each such test copies what the Snakefile needs (``workflow/``,
``config/``, ``src/`` and ``pyproject.toml``) to a temporary directory and runs Snakemake with that directory
as its working directory and ``PYTHONPATH`` at the copy's ``src/`` (``workflow/rules/common.smk`` puts the
copy's ``src/`` on the path of the Snakemake process itself). A test may change the copy (add a domain module,
edit a config) without touching the checkout.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What the Snakefile reads: the rules, profiles, envs and schema; the configs (and config/accelerate); the
# package its jobs run. pyproject.toml marks the copy's root as the project for the sandbox's hiding mounts.
COPIED = ("workflow", "config", "src", "pyproject.toml")
# What a run writes, relative to its working directory. Never copied, never touched in the checkout by a test.
RUN_DIRS = ("results", "logs", "benchmarks", ".snakemake")
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def copy_workflow(dest: str | Path, source: str | Path = REPO) -> Path:
    """Copy the workflow of ``source`` (the checkout) to ``dest``; return ``dest``, the copy's root, with no
    results/, logs/, benchmarks/ or .snakemake/ whatever ``source`` holds."""
    source, dest = Path(source), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if (source / name).is_dir():
            shutil.copytree(source / name, dest / name, ignore=_SKIP)
        else:
            shutil.copy2(source / name, dest / name)
    return dest


def snakemake_env(root: str | Path, **extra: str) -> dict:
    """Environment for Snakemake and its jobs in the copy at ``root``: the copy's package, no Hub access."""
    return {**os.environ, "PYTHONPATH": str(Path(root) / "src"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            **extra}


def run_snakemake(root: str | Path, *args: str, timeout: float = 120, env: dict | None = None,
                  check: bool = True) -> subprocess.CompletedProcess:
    """``python -m snakemake ARGS`` in the copy at ``root`` (its Snakefile, configs and profiles)."""
    out = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=root,
                         env=env if env is not None else snakemake_env(root),
                         capture_output=True, text=True, timeout=timeout)
    if check:
        assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return out


def run_dirs_snapshot(root: str | Path = REPO) -> dict[str, tuple[int, int] | None]:
    """Every path under ``root``'s run directories, with (mtime_ns, size) for files and None for directories.

    The tracked scripts at the top of benchmarks/ (``benchmarks/*.py`` etc.) are listed by name only, so
    editing them is not a change here; anything new in benchmarks/ is."""
    root = Path(root)
    seen: dict[str, tuple[int, int] | None] = {}
    for name in RUN_DIRS:
        top = root / name
        if not top.exists():
            continue
        seen[name] = None
        for dirpath, dirnames, filenames in os.walk(top):
            rel = Path(dirpath).relative_to(root)
            for d in dirnames:
                seen[str(rel / d)] = None
            for f in filenames:
                path = Path(dirpath) / f
                if name == "benchmarks" and Path(dirpath) == top:
                    seen[str(rel / f)] = None
                    continue
                try:
                    st = path.lstat()
                except FileNotFoundError:
                    continue
                seen[str(rel / f)] = (st.st_mtime_ns, st.st_size)
    return seen


def snapshot_changes(before: dict, after: dict) -> list[str]:
    """``+ path`` (new), ``- path`` (gone), ``~ path`` (modified), sorted."""
    changes = [f"+ {p}" for p in after.keys() - before.keys()]
    changes += [f"- {p}" for p in before.keys() - after.keys()]
    changes += [f"~ {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(changes, key=lambda c: c[2:])
