"""Recording a check: its verdict kept in site/'s run.json, and the pages that show it.

in → out: a CheckReport → run.json files rewritten (only with `labbook check --record`), the
pages of those posts rebuilt, and notes on what was not recorded.
Owns the rule that a verdict goes onto the run it was judged against and no other: a build
may publish another run of the post while the check executes (the check does not hold the
project's lock while it runs, so builds are never blocked for the length of a check).
Never records onto a run it did not compare, and never executes a post to refresh its page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import cache, source
from ..config import Config
from ..errors import CacheError, LabbookError
from ..files import write_json_atomic
from .seeds import seeds_record
from .verdicts import CheckReport, PostCheck, run_identity

__all__ = ["record_verdicts"]

UNRECORDED = ("new", "stale")


def record_verdicts(config: Config, report: CheckReport) -> list[str]:
    """Keep each verdict in the run.json of the run it was judged against, then show it on the
    pages. Returns notes on the posts it left alone, and why."""
    recorded, notes = _write_records(config, report)
    refreshed, more = _refreshable(config, recorded)
    notes += more
    if refreshed:
        from ..build import build

        outcome = build(config, only=[config.root / r.path for r in refreshed])
        notes += [f"{o.path}: the page was not refreshed: {str(o.error).splitlines()[0]}"
                  for o in outcome.outcomes if o.error is not None]
    return notes


def _write_records(config: Config, report: CheckReport) -> tuple[list[PostCheck], list[str]]:
    """Under the project's lock: a record only where site/ still publishes the compared run."""
    from ..lock import held

    today = dt.date.today().isoformat()
    recorded, notes = [], []
    with held(config):
        for result in report.posts:
            if not result.published_dir or result.verdict in UNRECORDED:
                continue
            folder = Path(result.published_dir)
            try:
                run = cache.read_run(folder)
            except CacheError as error:
                notes.append(f"{result.path}: not recorded: {error}")
                continue
            if run_identity(run) != result.published_run:
                notes.append(f"{result.path}: not recorded: site/ now publishes another run of this post (a build "
                             f"published it while the check ran); check it again")
                continue
            write_json_atomic(folder / cache.RUN_FILE, replace(run, check=_entry(result, run, today)).to_json())
            recorded.append(result)
    return recorded, notes


def _entry(result: PostCheck, run: Any, today: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"date": today, "verdict": result.verdict,
                             "differences": [d.reason for d in result.differences][:20]}
    if result.verdict == "consistent":
        entry["platform"] = result.platform
        entry["reason"] = result.reason
    if result.seeds is not None and not result.seeds.refused:
        entry["seeds"] = seeds_record(result.seeds, today)
    elif run.check and "seeds" in run.check:  # a check without --seeds keeps the last spread seen
        entry["seeds"] = run.check["seeds"]
    return entry


def _refreshable(config: Config, recorded: list[PostCheck]) -> tuple[list[PostCheck], list[str]]:
    """The recorded posts whose page a build can show without executing anything: the post and
    its inputs still give the published run."""
    store = cache.Store(config)
    ready, notes = [], []
    for result in recorded:
        try:
            post, _ = source.read(config.root / result.path, config)
            run = cache.read_run(Path(result.published_dir))
        except (LabbookError, OSError):
            notes.append(f"{result.path}: the page was not refreshed: the post no longer reads")
            continue
        stale = _sweep_stale(post, store, config) if post.sweep is not None else \
            cache.stale_reason(post, run, config.root, store.hashes)
        if stale is not None:
            notes.append(f"{result.path}: recorded, but the page was not refreshed: {stale} since the check started "
                         f"(the next build executes it)")
            continue
        ready.append(result)
    return ready, notes


def _sweep_stale(post: Any, store: cache.Store, config: Config) -> str | None:
    """Why site/ no longer publishes this sweep post's current points and gather, or None."""
    from .sweeps import published_sweep

    found = published_sweep(post, store, config)
    return found if isinstance(found, str) else None
