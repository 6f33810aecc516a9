"""Atomic output: write to a temporary file beside the target, then rename over it (atomic_path and
the write_* helpers); a folder is built under another name and swapped in with renames (swap_dir).

A crash or a bad input midway never leaves a half-written file or folder at the target path.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `target` on success.

    `suffix` defaults to the target's own suffix, so writers that infer the format from the
    extension (cv2.imwrite, np.savez) do the right thing. A folder that cannot be made or written
    and a full disk (any OSError here or in the writer) become one EdgefillError line naming the
    target; the temporary file is removed and nothing appears under the target's name.
    """
    from .errors import EdgefillError

    target = Path(target)
    tmp_path = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.",
                                   suffix=suffix if suffix is not None else target.suffix, dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give outputs normal permissions
        os.replace(tmp_path, target)
    except OSError as exc:
        raise EdgefillError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        if tmp_path is not None and tmp_path.exists():
            try:
                tmp_path.unlink()
            except OSError:
                pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def swap_dir(new: Path, target: Path, old: Path | None = None) -> None:
    """Put the finished folder `new` at `target` with renames only: the previous target, if any,
    moves to `old` (default: a hidden name beside it, per process) and is removed afterwards. At
    every moment a complete folder is at `target` or at `old`, never a half-written one (a reader
    may look in `old` after a crash: train.checkpoint does). OSError is the caller's to report."""
    old = old if old is not None else target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, obj) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")
