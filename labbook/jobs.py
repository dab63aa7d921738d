"""What one execution needs, wherever it runs: the Job for a post.

Local jobs run in place and write their artifacts into a folder of the cache; jobs for a Dask
cluster carry the project files the post needs (its folder's modules, its declared inputs and
the files its last run was seen to read), so workers need no shared file system.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from . import cache, dispatch
from .config import Config
from .errors import LabbookError
from .model import Post

__all__ = ["job_for"]


def job_for(post: Post, config: Config, store: cache.Store, *, published: Path | None = None) -> dispatch.Job:
    """Local: run in place, artifacts into a cache folder. Remote: ship the files the post needs.

    `published`: where site/ publishes this run, when not the post's own folder (a sweep's point).
    """
    if not config.scheduler:
        return dispatch.Job(post, str(config.root), str(store.new_folder()))
    previous = store.lookup(post, verify_artifacts=False, published=published)
    if previous.run:
        known = list(previous.run.inputs)
    else:
        known = _published_inputs(published or store.published_folder(post.slug))
    return dispatch.Job(post, str(config.root), files=dispatch.ship_files(post, config.root, known))


def _published_inputs(folder: Path) -> list[str]:
    with contextlib.suppress(LabbookError):
        return list(cache.read_run(folder).inputs)
    return []
