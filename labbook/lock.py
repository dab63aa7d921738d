"""The project lock: one build (or check, or status recovery) touches site/ and the cache at a time.

An flock on .labbook/lock: the kernel releases it when the holder dies, even by SIGKILL, so a
crashed build never leaves the project locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator

from .config import Config
from .errors import LockError

__all__ = ["held"]


@contextlib.contextmanager
def held(config: Config, *, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the project's lock; a second holder waits for it, or stops when told not to wait.

    Raises:
        LockError: another process holds it and `wait` is False.
    """
    _make_cache(config)
    path = config.cache / "lock"
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            if not wait:
                raise LockError(
                    f"another labbook build ({holder}) is using this project", path=config.relative(path),
                    hint="wait for it to finish, or run without --no-wait to queue behind it",
                ) from None
            if on_wait is not None:
                on_wait(f"waiting for another labbook build ({holder}) to finish…")
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _make_cache(config: Config) -> None:
    """.labbook/, with a `.gitignore` holding `*` as pytest writes in its cache: builds' and checks'
    scratch files never show in `git status`, whatever the project's own .gitignore says."""
    config.cache.mkdir(parents=True, exist_ok=True)
    marker = config.cache / ".gitignore"
    if not marker.exists():
        with contextlib.suppress(OSError):
            marker.write_text("# written by labbook: this folder is a cache, never committed\n*\n", encoding="utf-8")
