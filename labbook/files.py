"""Small file operations every stage shares: atomic writes, hashing, the one JSON style.

Nothing here knows about posts or runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["sha_file", "sha_bytes", "digest", "FileHashes", "Memo", "dump_json", "write_atomic", "write_json_atomic",
           "write_if_changed", "link_files", "crash_point"]


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


def sha_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileHashes:
    """sha256 of project files, memoized on (mtime, size) across builds like git's index."""

    def __init__(self, known: Mapping[str, list[Any]] | None = None) -> None:
        self.known: dict[str, list[Any]] = dict(known or {})

    def sha(self, path: Path) -> str | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        key = str(path)
        entry = self.known.get(key)
        if entry and entry[0] == stat.st_mtime_ns and entry[1] == stat.st_size:
            return entry[2]
        digest = sha_file(path)
        self.known[key] = [stat.st_mtime_ns, stat.st_size, digest]
        return digest


def digest(*parts: str) -> str:
    """sha256 of several texts, each length-prefixed so no two different lists of parts collide."""
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode()
        hasher.update(len(data).to_bytes(8, "little") + data)
    return hasher.hexdigest()


class Memo:
    """Text made once from its inputs (typeset math, highlighted code), kept by a key in this
    process's memory and in one small file per key under `folder`, so the next build finds it.

    A key must be a digest of everything that shapes the value (`digest`). Writes are atomic;
    a folder that cannot be written only makes builds slower.
    """

    _memory: dict[str, dict[str, str]] = {}
    _limit = 50_000

    def __init__(self, folder: Path | str | None, namespace: str) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.memory = self._memory.setdefault(namespace, {})

    def get(self, key: str) -> str | None:
        value = self.memory.get(key)
        if value is None and self.folder is not None:
            try:
                value = (self.folder / key[:2] / key[2:]).read_text(encoding="utf-8")
            except OSError:
                return None
            self._remember(key, value)
        return value

    def put(self, key: str, value: str) -> None:
        self._remember(key, value)
        if self.folder is None:
            return
        path = self.folder / key[:2] / key[2:]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
            partial.write_text(value, encoding="utf-8")
            os.replace(partial, path)
        except OSError:
            pass

    def _remember(self, key: str, value: str) -> None:
        if len(self.memory) >= self._limit:
            self.memory.clear()
        self.memory[key] = value


def dump_json(value: Any) -> bytes:
    """The one JSON style of every file labbook writes: sorted, indented, newline at the end."""
    return (json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _read_umask() -> int:
    """The process's umask; reading it means setting it, so it is read once, at import, before
    any thread of labbook's could create a file meanwhile."""
    current = os.umask(0o022)
    os.umask(current)
    return current


_UMASK = _read_umask()


def write_atomic(path: Path, data: bytes) -> None:
    """Write-then-rename: a reader sees the old file or the new one, never half of one.

    The file gets the mode a plain open() would give (the umask's), not mkstemp's owner-only
    0600: a web server running as another user must be able to read a published page.
    """
    import tempfile  # only when something is written: a no-op build writes nothing

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
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


def link_files(names: Iterable[str], source: Path, target: Path) -> None:
    """Each named regular file of `source` into `target` (folders made as needed), as a hard link
    where the file system allows, else a copy. Missing names and symlinks are passed over."""
    for name in names:
        origin = source / name
        if not origin.is_file() or origin.is_symlink():
            continue
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(origin, destination)
        except OSError:
            shutil.copy2(origin, destination)
