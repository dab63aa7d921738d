"""The whole pipeline, top to bottom: read -> (cache | execute) -> render -> write.

One bad post never stops the rest: its error becomes a failed Outcome and its last good
published version stays.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from . import cache, executor, render, site, source
from .config import Config
from .errors import LabbookError, LockError, about
from .files import write_if_changed
from .model import Outcome, Page, Post, Run
from .theme import Theme

__all__ = ["build", "job_for", "BuildReport", "Reporter", "NullReporter", "status", "PostStatus", "locked"]

STATE_VERSION = 2


class Reporter(Protocol):
    """Where the build says what it does; the CLI's is a rich live display."""

    def stage(self, name: str, seconds: float) -> None: ...
    def executing(self, posts: Sequence[Post]) -> None: ...
    def cell(self, slug: str, index: int, total: int) -> None: ...
    def executed(self, post: Post, seconds: float) -> None: ...
    def done(self, outcome: Outcome) -> None: ...
    def warning(self, message: str) -> None: ...


class NullReporter:
    def stage(self, name: str, seconds: float) -> None: ...
    def executing(self, posts: Sequence[Post]) -> None: ...
    def cell(self, slug: str, index: int, total: int) -> None: ...
    def executed(self, post: Post, seconds: float) -> None: ...
    def done(self, outcome: Outcome) -> None: ...
    def warning(self, message: str) -> None: ...


@dataclass(slots=True)
class BuildReport:
    outcomes: list[Outcome] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in ("failed", "kept-last-good")]

    @property
    def executed(self) -> int:
        return self.count("executed")


# --- the lock: one build per site at a time ------------------------------------------------------


@contextlib.contextmanager
def locked(config: Config, *, wait: bool = True, reporter: Reporter | None = None) -> Iterator[None]:
    """Hold the project's lock; a second build waits for it, or stops when told not to wait.

    Raises:
        LockError: another build holds it and `wait` is False.
    """
    config.cache.mkdir(parents=True, exist_ok=True)
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
            if reporter:
                reporter.warning(f"waiting for another labbook build ({holder}) to finish…")
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


# --- build state: skip what did not change without even parsing it ----------------------------------


class State:
    """What the last build published, per post file, to make a no-op build a handful of stats."""

    def __init__(self, config: Config, fingerprint: str) -> None:
        self.path = config.cache / "state.json"
        self.fingerprint = fingerprint
        data: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self.path.read_text(encoding="utf-8"))
        if data.get("version") != STATE_VERSION:
            data = {}
        self.same_theme = data.get("fingerprint") == fingerprint
        self.posts: dict[str, dict[str, Any]] = data.get("posts", {})
        self.hashes = cache.FileHashes(data.get("hashes", {}))

    def unchanged(self, path: Path, config: Config) -> dict[str, Any] | None:
        """The entry of a post whose file, inputs, theme and published files are all as last built."""
        entry = self.posts.get(config.relative(path))
        if entry is None or not self.same_theme:
            return None
        if self.hashes.sha(path) != entry["sha"]:
            return None
        for name, sha in entry["inputs"].items():
            if self.hashes.sha(config.root / name) != sha:
                return None
        for name, (size, mtime) in entry["files"].items():
            try:
                stat = (config.site / name).stat()
            except OSError:
                return None
            if (stat.st_size, stat.st_mtime_ns) != (size, mtime):
                return None
        return entry

    def record(self, page: Page, post: Post, run: Run, config: Config) -> None:
        files = {name: _size_and_mtime(config.site / name) for name in site.post_files(page)}
        self.posts[str(post.path)] = {
            "sha": post.source_sha, "slug": post.slug, "key": post.key, "summary": dict(page.summary),
            "inputs": dict(run.inputs), "files": files,
        }
        self.hashes.sha(config.root / post.path)  # remember its stat, so the next build skips it

    def save(self, live: Iterable[str]) -> None:
        keep = set(live)
        data = {
            "version": STATE_VERSION, "fingerprint": self.fingerprint,
            "posts": {k: v for k, v in sorted(self.posts.items()) if k in keep},
            "hashes": dict(sorted(self.hashes.known.items())),
        }
        # compact: json's C encoder only runs without indent, and nobody reads this file
        write_if_changed(self.path, json.dumps(data, sort_keys=True, separators=(",", ":")).encode())


def _size_and_mtime(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _fingerprint(config: Config, theme: Theme) -> str:
    """Everything besides the post that shapes its page: templates, site settings, labbook."""
    from . import __version__

    settings = [config.title, config.author, config.description, config.url, config.baseurl, __version__]
    return hashlib.sha256((theme.digest() + json.dumps(settings)).encode()).hexdigest()


# --- the pipeline ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Ready:
    post: Post
    run: Run
    folder: Path
    status: str
    seconds: float = 0.0


def build(
    config: Config,
    *,
    only: Sequence[Path] | None = None,
    force: bool = False,
    wait: bool = True,
    reporter: Reporter | None = None,
) -> BuildReport:
    """Read every post, execute what changed, render, write. One bad post never stops the rest.

    Raises:
        LockError: another build holds the project and `wait` is False.
        SiteError: site/ could not be written (it is left as before).
    """
    reporter = reporter or NullReporter()
    report = BuildReport()
    with locked(config, wait=wait, reporter=reporter):
        clock = time.perf_counter()
        site.recover(config.site)
        theme = Theme(config.templates)
        state = State(config, _fingerprint(config, theme))
        store = cache.Store(config, state.hashes)
        store.clean_tmp()
        selected = {p.resolve() for p in only} if only else None

        to_read, kept = _skip_unchanged(config, state, force, selected, report, reporter)
        read = source.read_all(config, to_read, taken={s["slug"]: s for s in kept.values()})
        report.warnings += read.warnings
        for path, error in read.failures:
            _fail(report, reporter, config, path, error, kept)
        reporter.stage("read", time.perf_counter() - clock)

        ready, missing = _look_up(read.posts, store, force, selected, report, reporter, kept)
        with _executions(missing, config, store, report, reporter, kept) as executed:  # kernels start now
            rendered = [_render(item, config, theme, report, reporter, kept) for item in ready]  # cached: meanwhile
            rendered += [_render(item, config, theme, report, reporter, kept) for item in executed]  # as they come
        pages = sorted((r for r in rendered if r is not None), key=lambda r: r[1].post.slug)
        for _, _, warnings in pages:
            report.warnings += warnings
        publication = site.Publication([p for p, _, _ in pages], kept)
        change = site.write(publication, config, theme)
        report.written, report.deleted = change.written, change.deleted
        report.warnings += change.warnings
        for page, item, _ in pages:
            state.record(page, item.post, item.run, config)
            _done(report, reporter, Outcome(item.post.path, item.status, seconds=item.seconds))  # type: ignore[arg-type]
        state.save(str(o.path) for o in report.outcomes if o.status in ("executed", "cached", "unchanged"))
        reporter.stage("build", time.perf_counter() - clock)
    for warning in report.warnings:
        reporter.warning(warning)
    return report


def _skip_unchanged(config: Config, state: State, force: bool, selected: set[Path] | None,
                    report: BuildReport, reporter: Reporter) -> tuple[list[Path], dict[str, Any]]:
    to_read: list[Path] = []
    kept: dict[str, Any] = {}
    for path in source.discover(config):
        chosen = selected is None or path.resolve() in selected
        entry = None if (force and chosen) else state.unchanged(path, config)
        if entry is None:
            to_read.append(path)
            continue
        kept[entry["slug"]] = entry["summary"]
        _done(report, reporter, Outcome(PurePosixPath(config.relative(path)), "unchanged"))
    return to_read, kept


def _look_up(posts: Sequence[Post], store: cache.Store, force: bool, selected: set[Path] | None,
             report: BuildReport, reporter: Reporter, kept: dict[str, Any]) -> tuple[list[_Ready], list[Post]]:
    ready, missing = [], []
    for post in posts:
        chosen = selected is None or (store.config.root / post.path).resolve() in selected
        found = store.lookup(post) if not (force and chosen) else cache.Lookup(None, None, "--force")
        report.warnings += list(found.notes)
        if found.run is not None and found.folder is not None:
            ready.append(_Ready(post, found.run, found.folder, "cached"))
        elif chosen:
            missing.append(post)
        else:  # not asked for: the published version stays, nothing runs
            published = site.published_summary(store.config.site, post.slug)
            if published is not None:
                kept[post.slug] = published
                _done(report, reporter, Outcome(post.path, "kept-last-good", None))
    return ready, missing


def _render(item: _Ready, config: Config, theme: Theme, report: BuildReport, reporter: Reporter,
            kept: dict[str, Any]) -> tuple[Page, _Ready, list[str]] | None:
    """The post's page and its warnings; None (and a failed outcome) when it cannot render."""
    with about(item.post.path):
        try:
            page, warnings = render.render(item.post, item.run, item.folder, config, theme)
        except LabbookError as error:
            _fail(report, reporter, config, item.post.path, error, kept, item.post.slug)
            return None
    return page, item, list(warnings)


@contextlib.contextmanager
def _executions(posts: Sequence[Post], config: Config, store: cache.Store, report: BuildReport,
                reporter: Reporter, kept: dict[str, Any]) -> Iterator[Iterator[_Ready]]:
    """Start every post's execution at once; the runs then come as they finish.

    Leaving the block early (an interrupt, an error) stops every kernel still running.
    """
    if not posts:
        yield iter(())
        return
    reporter.executing(posts)
    clock = time.perf_counter()
    with executor.open_dispatcher(config.workers, config.scheduler) as dispatcher:
        jobs = [job_for(post, config, store) for post in posts]
        yield _arrivals(dispatcher.run(jobs, progress=reporter.cell), config, store, report, reporter, kept)
    reporter.stage("execute", time.perf_counter() - clock)


def _arrivals(arriving: Iterator[executor.Done], config: Config, store: cache.Store, report: BuildReport,
              reporter: Reporter, kept: dict[str, Any]) -> Iterator[_Ready]:
    for done in arriving:
        report.warnings += list(done.warnings)
        if done.run is None:
            _fail(report, reporter, config, done.post.path, done.error or LabbookError("execution failed"), kept,
                  done.post.slug)
            continue
        reporter.executed(done.post, done.seconds)
        done = executor.localized(done, store.new_folder)
        yield _Ready(done.post, done.run, store.put(done.run, Path(done.folder)), "executed", done.seconds)


def job_for(post: Post, config: Config, store: cache.Store) -> executor.Job:
    """Local: run in place, artifacts into a cache folder. Remote: ship the files the post needs."""
    if not config.scheduler:
        return executor.Job(post, str(config.root), str(store.new_folder()))
    previous = store.lookup(post, verify_artifacts=False)
    known = list(previous.run.inputs) if previous.run else _published_inputs(store, post)
    return executor.Job(post, str(config.root), files=executor.ship_files(post, config.root, known))


def _published_inputs(store: cache.Store, post: Post) -> list[str]:
    with contextlib.suppress(LabbookError):
        return list(cache.read_run(store.published_folder(post.slug)).inputs)
    return []


def _fail(report: BuildReport, reporter: Reporter, config: Config, path: PurePosixPath, error: LabbookError,
          kept: dict[str, Any], slug: str | None = None) -> None:
    """A failed post keeps its last good published version, if it has one."""
    if error.path is None:
        error.path = str(path)
    slug = slug or source.slug_hint(config.root / path, path)  # a post that did not even read
    published = site.published_summary(config.site, slug) if slug else None
    if published is not None and slug is not None:
        kept[slug] = published
        _done(report, reporter, Outcome(path, "kept-last-good", error))
    else:
        _done(report, reporter, Outcome(path, "failed", error))


def _done(report: BuildReport, reporter: Reporter, outcome: Outcome) -> None:
    report.outcomes.append(outcome)
    reporter.done(outcome)


# --- status: what a build would do, and why -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostStatus:
    path: PurePosixPath
    state: str
    """cached | stale | new | failed"""
    reason: str


def status(config: Config) -> list[PostStatus]:
    """Per post: would the next build reuse a run, or execute it, and why."""
    with contextlib.suppress(LockError), locked(config, wait=False):
        site.recover(config.site)  # only when no build is under way: status never waits for one
    store = cache.Store(config)
    rows = []
    read = source.read_all(config)
    for path, error in read.failures:
        rows.append(PostStatus(path, "failed", str(error)))
    for post in read.posts:
        found = store.lookup(post)
        if found.run is not None:
            rows.append(PostStatus(post.path, "cached", f"{found.reason} run from {found.run.started[:10]}"))
        elif found.reason == "never executed":
            rows.append(PostStatus(post.path, "new", "never executed"))
        else:
            rows.append(PostStatus(post.path, "stale", found.reason))
    return sorted(rows, key=lambda r: str(r.path))
