"""The author's loop: a new post, and one post run now, outside the site.

`new_post_file` writes posts/<slug>.md from the starter post (labbook/starters/post.md), never
over an existing file. `run_post` reads one post (with `-p` parameters applied), takes its run
from the cache or executes it in a fresh kernel, stores the run in the cache and returns it
with its folder: what `labbook run` prints cell by cell. Never writes into site/.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from . import cache, dispatch, frontmatter, lock, source
from .build import NullReporter, Reporter, inline_added
from .config import Config
from .errors import ConfigError, LabbookError
from .jobs import job_for
from .model import Post, Run

__all__ = ["Trial", "run_post", "variant_config", "variant_name", "new_post", "new_post_file"]

STARTER = Path(__file__).parent / "starters" / "post.md"
"""The post `labbook new` writes: every front-matter key, prose, a cell with a figure and a data
file, and a value in the prose. It builds as it is."""


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
    sweep: str = ""
    """For a sweep post, what the run is of it: its per-point cells, once ('wd (3) × seed (2) = 6 points')."""

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
    return config._replace(site=folder / "site", cache=folder, params=tuple(sorted(params.items())))


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
    swept = ""
    if post.sweep is not None:  # one point: the gather needs every point, which a build runs
        from .sweep import one_point

        swept, post = post.sweep.describe(), one_point(post)
    warnings = [str(notice) for notice in notices]
    if not (post.cells or post.inline):  # no code: no kernel to start, nothing to keep
        return Trial(post, "cached", cache.nothing_ran(post), None, warnings=tuple(warnings), reason="no code")
    with lock.held(config, on_wait=reporter.warning):  # a build's clean-up must not take the folder this run writes
        store = cache.Store(config)
        found = store.lookup(post) if not force else cache.Lookup(None, None, "--force")
        warnings += list(found.notes)
        if found.run is not None and found.folder is not None:
            found = inline_added(post, found, store)
            return Trial(post, "cached", found.run, found.folder, warnings=tuple(warnings), reason=found.reason,
                         sweep=swept)
        reporter.executing([post])
        began = time.perf_counter()
        with dispatch.open_dispatcher(1, config.scheduler) as dispatcher:
            [done] = list(dispatcher.run([job_for(post, config, store)], progress=reporter.cell))
        warnings += list(done.warnings)
        if done.run is None:  # the cells that ran wrote into done.folder: kept until the next build
            return Trial(post, "failed", folder=Path(done.folder) if done.folder else None, error=done.error,
                         warnings=tuple(warnings), reason=found.reason, seconds=time.perf_counter() - began,
                         sweep=swept)
        folder = store.put(done.run, dispatch.local_folder(done, store.new_folder))
        return Trial(post, "executed", done.run, folder, warnings=tuple(warnings), reason=found.reason,
                     seconds=done.seconds, sweep=swept)


# --- labbook new ------------------------------------------------------------------------------------


def new_post_file(config: Config, slug: str | None, title: str | None) -> Path:
    """Write posts/<slug>.md from the starter post; the slug made from the title when not given.

    Raises:
        ConfigError: the post already exists (nothing is written).
        PathEscapeError: the given slug cannot be a file name.
    """
    today = dt.date.today()
    name = slug or title or ""
    try:
        made = source.slug_of(PurePosixPath(name.replace("/", "-") + ".md"))
    except LabbookError:  # a title with nothing to make a file name of ("---", "???")
        if slug:
            raise
        made = f"post-{today.isoformat()}"
    path = config.posts / f"{made}.md"
    if path.exists():
        raise ConfigError(f"{config.relative(path)} already exists", hint="choose another name; nothing was written")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as stream:  # never over a file that appeared meanwhile
        stream.write(new_post(" ".join((title or made.replace("-", " ").capitalize()).split()), today))
    return path


def new_post(title: str, date: dt.date) -> str:
    """The starter post with this title and date: front matter dumped by YAML (any title is safe)."""
    import yaml

    split = frontmatter.split(STARTER.read_text(encoding="utf-8"))
    assert split is not None, f"{STARTER} has no front matter"
    header, body, _ = split
    front = {**frontmatter.load_yaml(header), "title": title, "date": date}
    dumped = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return f"---\n{dumped}---\n{body}"

