"""Small file operations every stage shares: atomic writes, hashing, the one JSON style.

Nothing here knows about posts or runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["sha_file", "dump_json", "write_atomic", "write_json_atomic", "write_if_changed", "crash_point"]


def crash_point(name: str) -> None:
    """Die here, as kill -9 would, when LABBOOK_CRASH_AT names this point: the crash tests' hook.

    It lets the fault-injection suite stop a build at each step of a commit, deterministically.
    """
    if os.environ.get("LABBOOK_CRASH_AT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def sha_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dump_json(value: Any) -> bytes:
    """The one JSON style of every file labbook writes: sorted, indented, newline at the end."""
    return (json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def write_atomic(path: Path, data: bytes) -> None:
    """Write-then-rename: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Path, value: Any) -> None:
    write_atomic(path, dump_json(value))


def write_if_changed(path: Path, data: bytes) -> bool:
    """Leave a file (and its mtime) alone when it already holds `data`; True when written."""
    with contextlib.suppress(OSError):
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    write_atomic(path, data)
    return True
