"""The author's loop: one post, run now, outside the site.

`run_post` reads one post (with `-p` parameters applied), takes its run from the cache or
executes it in a fresh kernel, stores the run in the cache and returns it with its folder:
what `labbook run` prints cell by cell. Never writes into site/.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from . import cache, dispatch, lock, source
from .build import NullReporter, Reporter, inline_added
from .config import Config
from .errors import LabbookError
from .jobs import job_for
from .model import Post, Run

__all__ = ["Trial", "run_post", "variant_config", "variant_name"]


@dataclass(frozen=True, slots=True)
class Trial:
    """One post run (or found in the cache) for the author, with where its files are."""

    post: Post
    status: Literal["executed", "cached", "failed"]
    run: Run | None = None
    folder: Path | None = None
    """The run's folder in the cache: figures/, data/, executed.ipynb, run.json."""
    error: LabbookError | None = None
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    reason: str = ""
    """Why it executed ('code cell 2 changed', '--force', …) or where the cached run came from."""

    @property
    def broken_claims(self) -> list[str]:
        if self.run is None:
            return []
        return [c.claim.claim for c in self.run.cells if c.claim is not None and not c.claim.holds]


def variant_name(params: Mapping[str, Any]) -> str:
    """A short, stable name for a set of parameter values: the folder of its scratch site."""
    return hashlib.sha256(json.dumps(dict(sorted(params.items())), sort_keys=True).encode()).hexdigest()[:12]


def variant_config(config: Config, params: Mapping[str, Any]) -> Config:
    """The configuration of a variant build: the same posts, these parameters, and a scratch
    site and cache under .labbook/variants/<name>/, so that site/ is never touched."""
    if not params:
        return config
    folder = config.cache / "variants" / variant_name(params)
    return replace(config, site=folder / "site", cache=folder, params=tuple(sorted(params.items())))


def run_post(config: Config, path: Path, *, params: Mapping[str, Any] | None = None, force: bool = False,
             reporter: Reporter | None = None) -> Trial:
    """Run one post (or reuse its cached run) and keep the run in the cache; site/ is not touched.

    Raises:
        PostError: the post cannot be read.
        ConfigError: a parameter the post does not declare, or of the wrong kind.
    """
    reporter = reporter or NullReporter()
    post, notices = source.read(path, config)
    post = source.with_params(post, params or {})
    warnings = [str(notice) for notice in notices]
    if not (post.cells or post.inline):  # no code: no kernel to start, nothing to keep
        return Trial(post, "cached", cache.nothing_ran(post), None, warnings=tuple(warnings), reason="no code")
    with lock.held(config, on_wait=reporter.warning):  # a build's clean-up must not take the folder this run writes
        store = cache.Store(config)
        found = store.lookup(post) if not force else cache.Lookup(None, None, "--force")
        warnings += list(found.notes)
        if found.run is not None and found.folder is not None:
            found = inline_added(post, found, store)
            return Trial(post, "cached", found.run, found.folder, warnings=tuple(warnings), reason=found.reason)
        reporter.executing([post])
        began = time.perf_counter()
        with dispatch.open_dispatcher(1, config.scheduler) as dispatcher:
            [done] = list(dispatcher.run([job_for(post, config, store)], progress=reporter.cell))
        warnings += list(done.warnings)
        if done.run is None:  # the cells that ran wrote into done.folder: kept until the next build
            return Trial(post, "failed", folder=Path(done.folder) if done.folder else None, error=done.error,
                         warnings=tuple(warnings), reason=found.reason, seconds=time.perf_counter() - began)
        folder = store.put(done.run, dispatch.local_folder(done, store.new_folder))
        return Trial(post, "executed", done.run, folder, warnings=tuple(warnings), reason=found.reason,
                     seconds=done.seconds)
