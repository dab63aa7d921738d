"""Status: what the next build would do with each post, and why, without executing anything.

cached (a run still holds), stale (which code cell, setting or input changed), new (never
executed), failing (its last execution failed, with the error's first line), or invalid (the
post file itself is wrong).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from . import cache, gather, lock, site, source
from .config import Config
from .errors import LockError
from .model import Post
from .state import State

__all__ = ["PostStatus", "status"]


@dataclass(frozen=True, slots=True)
class PostStatus:
    path: PurePosixPath
    state: str
    """cached | stale | new | failing | invalid | draft"""
    reason: str


def status(config: Config) -> list[PostStatus]:
    """Per post: would the next build reuse a run, or execute it, and why."""
    with contextlib.suppress(LockError), lock.held(config, wait=False):
        site.recover(config.site)  # only when no build is under way: status never waits for one
    failures = State(config, "").failures
    store = cache.Store(config)
    rows = []
    read = source.read_all(config)
    for path, error in read.failures:
        rows.append(PostStatus(path, "invalid", str(error)))
    rows += [PostStatus(path, "draft", "published: false") for path in read.drafts]
    for post in read.posts:
        failed = failures.get(str(post.path))
        if post.sweep is not None:
            rows.append(_sweep_status(post, store, failed))
            continue
        found = store.lookup(post)
        if found.run is not None:
            rows.append(PostStatus(post.path, "cached", f"{found.reason} run from {found.run.started[:10] or '—'}"))
        elif failed is not None and failed.get("key") == post.key:
            rows.append(PostStatus(post.path, "failing", failed.get("error", "failed")))
        elif found.reason == "never executed":
            rows.append(PostStatus(post.path, "new", "never executed"))
        else:
            rows.append(PostStatus(post.path, "stale", found.reason))
    return sorted(rows, key=lambda r: str(r.path))


def _sweep_status(post: Post, store: cache.Store, failed: dict[str, str] | None) -> PostStatus:
    """A sweep post: cached while every point is (the gather runs again when one is not)."""
    missing, total, reason, failing = gather.stale_points(post, store)
    if failed is not None and failed.get("key") == post.key:
        return PostStatus(post.path, "failing", failed.get("error", "failed"))
    if failing and not reason:
        return PostStatus(post.path, "failing", _failing_points(failing, total))
    if not missing and not reason:
        return PostStatus(post.path, "cached", f"all {total} points of the sweep and its gather are cached")
    if not missing:
        return PostStatus(post.path, "stale", f"all {total} points are cached; {reason}")
    if missing == total and not store.published_folder(post.slug).is_dir():
        return PostStatus(post.path, "new", f"never executed ({total} points)")
    return PostStatus(post.path, "stale", f"{missing} of {total} points to run ({reason})")


def _failing_points(failing: tuple[str, ...], total: int) -> str:
    """'1 of 16 points failed in the last build (point wd=0.1,seed=2); the next build runs it again'."""
    shown = ", ".join(failing[:3]) + (f" and {len(failing) - 3} more" if len(failing) > 3 else "")
    again = "it" if len(failing) == 1 else "them"
    return (f"{len(failing)} of {total} points failed in the last build (point{'s' * (len(failing) > 1)} {shown}); "
            f"the rest and the gather are cached; the next build runs {again} again")
