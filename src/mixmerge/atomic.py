"""Outputs that are complete or absent: written under a temporary name and renamed when done; a full disk is a
clear error that leaves nothing complete-looking behind."""
from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path


class DiskFullError(OSError):
    """No space left while writing an output; nothing was written under its final name."""


def is_disk_full(err: BaseException, near: Path) -> bool:
    """ENOSPC/EDQUOT however the writer reported it: an OSError, a library's own error quoting the OS message
    (safetensors), or a cryptic one (torch.save) while the file system has no room left."""
    if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return True
    if any(text in str(err) for text in ("No space left on device", "os error 28", "Disk quota exceeded")):
        return True
    try:
        return shutil.disk_usage(_existing(near)).free < 1 << 20
    except OSError:
        return False


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def raise_disk_full(err: BaseException, partial: Path, final: Path):
    """Re-raise ``err``; as a DiskFullError naming the output when the disk is full (the partial output
    removed). Call from an ``except`` block."""
    if not is_disk_full(err, partial):
        raise err
    remove(partial)
    try:
        room = f"{shutil.disk_usage(_existing(final)).free / 2**20:.1f} MiB free"
    except OSError:
        room = "free space unknown"
    raise DiskFullError(errno.ENOSPC, f"no space left on device while writing {final} ({room}); nothing was "
                                      f"written under that name, and the partial output {partial} was removed") from err


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def partial_path(final: str | Path) -> Path:
    final = Path(final)
    return final.with_name(final.name + ".partial")


@contextmanager
def partial_dir(final: str | Path):
    """Yield ``<final>.partial`` (emptied of any earlier attempt); when the block succeeds it becomes ``final``
    (replacing an old one); when it fails it is removed. A kill leaves at most the ``.partial`` directory."""
    final = Path(final)
    partial = partial_path(final)
    remove(partial)
    partial.mkdir(parents=True)
    try:
        yield partial
    except Exception as err:
        try:
            raise_disk_full(err, partial, final)
        finally:
            remove(partial)
    except BaseException:
        remove(partial)
        raise
    publish(partial, final)


def publish(partial: Path, final: Path) -> None:
    """Replace ``final`` by the finished ``partial`` (a directory or a file)."""
    if final.exists() and partial.is_dir():
        remove(final)
    os.replace(partial, final)


def write_text(path: str | Path, text: str) -> None:
    """Write ``path`` atomically: a temporary file, flushed to disk, then renamed over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except Exception as err:
        try:
            raise_disk_full(err, tmp, path)
        finally:
            remove(tmp)
    os.replace(tmp, path)
