"""The whole pipeline, top to bottom: read -> (cache | execute) -> render -> write.

Each step is a plain call that returns what it made. One bad post never stops the rest: its
error becomes a failed Outcome, and its last good published version stays.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from . import cache, executor, lock, render, site, source
from .config import Config
from .errors import LabbookError, per_post
from .jobs import job_for
from .model import Notice, Outcome, Page, Post, Run, Summary
from .state import Entry, State, fingerprint, published_stat
from .theme import Theme

__all__ = ["build", "BuildReport", "Reporter", "NullReporter", "BrokenClaim"]


class Reporter(Protocol):
    """Where the build says what it does, as it does it; the CLI's is a rich live display."""

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


@dataclass(frozen=True, slots=True)
class BrokenClaim:
    """A claim cell whose assertions did not hold in the published run."""

    path: PurePosixPath
    claim: str
    message: str


@dataclass(frozen=True, slots=True)
class BuildReport:
    outcomes: tuple[Outcome, ...] = ()
    notices: tuple[Notice, ...] = ()
    change: site.Change = field(default_factory=site.Change)
    broken_claims: tuple[BrokenClaim, ...] = ()

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is not None]

    @property
    def executed(self) -> int:
        return self.count("executed")


# --- the pipeline ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ready:
    """A post with a run to render: cached, or just executed."""

    post: Post
    run: Run
    folder: Path | None
    status: str
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class _Rendered:
    page: Page
    status: str
    """executed | cached"""
    seconds: float


@dataclass(frozen=True, slots=True)
class _Failure:
    path: PurePosixPath
    error: LabbookError
    key: str | None = None
    """The key of the post that failed, when it was read: status says 'failing' while it holds."""
    slug: str | None = None
    """Its slug, when it was read (a `slug:` may differ from the file's name)."""


def build(config: Config, *, only: Sequence[Path] | None = None, force: bool = False, prune: bool = False,
          wait: bool = True, reporter: Reporter | None = None) -> BuildReport:
    """Read every post, execute what changed, render, write. One bad post never stops the rest.

    Raises:
        ConfigError: the posts folder does not exist.
        LockError: another build holds the project and `wait` is False.
        SiteError: site/ could not be written (it is left as before), or the build would
            unpublish more posts than it keeps and `prune` is False.
    """
    reporter = reporter or NullReporter()
    clock = time.perf_counter()
    with lock.held(config, wait=wait, on_wait=reporter.warning):
        site.recover(config.site)
        theme = Theme(config.templates)
        state = State(config, fingerprint(config, theme.digest()))
        store = cache.Store(config, state.hashes)
        store.clean_tmp()
        chosen = _Chosen(config, only, force)
        files = source.discover(config)
        unchanged = _unchanged(files, state, chosen, reporter)
        read = source.read_all(config, [p for p in files if config.relative(p) not in unchanged],
                               taken={e.slug: name for name, e in unchanged.items()})
        reporter.stage("read", time.perf_counter() - clock)
        ready, missing, skipped = _look_up(read.posts, store, chosen, reporter)
        with _executions(_one_per_key(missing), config, store, reporter) as arrivals:  # kernels start now
            arriving = _for_every_post(arrivals, missing)
            rendered = [_render(item, config, theme, reporter) for item in _ready_first(ready, arriving)]
        pages = sorted((r.page for r in rendered if isinstance(r, _Rendered)), key=lambda p: p.slug)
        failures = [*(_Failure(p, e) for p, e in read.failures), *(r for r in rendered if isinstance(r, _Failure))]
        settled = [_settle(f, config, reporter) for f in failures]
        kept = {e.slug: e.summary for e in unchanged.values()} | _published(skipped, config) | {
            s.slug: s for _, s in settled if s is not None}
        change = site.write(site.Publication(pages, kept), config, theme, prune=prune)
        outcomes = _outcomes(unchanged, skipped, read.drafts, rendered, settled, reporter)
        _remember(state, pages, failures, outcomes, files, config)
        reporter.stage("build", time.perf_counter() - clock)
    notices = (*read.notices, *(n for p in pages for n in p.notices), *change.notices)
    for notice in notices:
        reporter.warning(str(notice))
    claims = _broken_claims(pages, unchanged)
    return BuildReport(tuple(outcomes), notices, change, claims)


@dataclass(frozen=True, slots=True)
class _Chosen:
    """Which posts this build may execute: all, or those named on the command line."""

    config: Config
    only: Sequence[Path] | None
    force: bool

    def __contains__(self, path: object) -> bool:
        if self.only is None:
            return True
        return Path(str(path)).resolve() in {p.resolve() for p in self.only}

    def forced(self, path: Path) -> bool:
        return self.force and path in self


def _unchanged(files: Iterable[Path], state: State, chosen: _Chosen, reporter: Reporter) -> dict[str, Entry]:
    """Posts whose file, inputs and published pages are as the last build left them: not even read."""
    found = {}
    for path in files:
        entry = None if chosen.forced(path) else state.unchanged(path)
        if entry is not None:
            found[state.config.relative(path)] = entry
    return found


def _look_up(posts: Sequence[Post], store: cache.Store, chosen: _Chosen,
             reporter: Reporter) -> tuple[list[_Ready], list[Post], list[Post]]:
    """(posts with a usable run, posts to execute, posts left as published: not chosen); the
    corrupt cache entries met on the way are reported, and executed again."""
    ready, missing, skipped = [], [], []
    for post in posts:
        path = store.config.root / post.path
        forced = chosen.forced(path) and bool(post.cells)  # a post without code never runs
        found = cache.Lookup(None, None, "--force") if forced else store.lookup(post)
        for note in found.notes:
            reporter.warning(note)
        if found.run is not None:
            ready.append(_Ready(post, found.run, found.folder, "cached"))
        elif path in chosen:
            missing.append(post)
        else:
            skipped.append(post)
    return ready, missing, skipped


@contextlib.contextmanager
def _executions(posts: Sequence[Post], config: Config, store: cache.Store,
                reporter: Reporter) -> Iterator[Iterator[_Ready | _Failure]]:
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
        yield _arrivals(dispatcher.run(jobs, progress=reporter.cell), store, reporter)
    reporter.stage("execute", time.perf_counter() - clock)


def _arrivals(arriving: Iterator[executor.Done], store: cache.Store, reporter: Reporter) -> Iterator[_Ready | _Failure]:
    for done in arriving:
        for warning in done.warnings:
            reporter.warning(warning)
        if done.run is None:
            yield _Failure(done.post.path, done.error or LabbookError("execution failed"), done.post.key, done.post.slug)
            continue
        reporter.executed(done.post, done.seconds)
        done = executor.localized(done, store.new_folder)
        yield _Ready(done.post, done.run, store.put(done.run, Path(done.folder)), "executed", done.seconds)


def _one_per_key(posts: Sequence[Post]) -> list[Post]:
    """Posts with equal code and settings share one execution (each still gets its own page)."""
    return list({post.key: post for post in reversed(posts)}.values())[::-1]


def _for_every_post(arrivals: Iterator[_Ready | _Failure], posts: Sequence[Post]) -> Iterator[_Ready | _Failure]:
    """Each arriving run (or failure) for every post that has its key."""
    by_key: dict[str, list[Post]] = {}
    for post in posts:
        by_key.setdefault(post.key, []).append(post)
    for item in arrivals:
        key = item.post.key if isinstance(item, _Ready) else item.key
        twins = by_key.get(key or "", [])
        for post in twins:
            if isinstance(item, _Ready):
                yield _Ready(post, item.run, item.folder, item.status, item.seconds)
            elif post.path == item.path:
                yield item
            else:
                first = next(p for p in twins if p.path == item.path)
                yield _Failure(post.path, _moved_to(item.error, first, post), post.key, post.slug)


def _moved_to(error: LabbookError, first: Post, twin: Post) -> LabbookError:
    """The error of `first`'s execution, told of `twin`, which has the same code at other lines."""
    line = error.line
    cell = error.details.get("cell")
    if isinstance(cell, int) and line is not None and cell < len(twin.cells):
        line = twin.cells[cell].line + (line - first.cells[cell].line)
    return type(error)(error.message, path=str(twin.path), line=line, hint=error.hint, **error.details)


def _ready_first(ready: Sequence[_Ready], arrivals: Iterator[_Ready | _Failure]) -> Iterator[_Ready | _Failure]:
    """Cached posts render while kernels run; executed ones as they arrive."""
    yield from ready
    yield from arrivals


def _render(item: _Ready | _Failure, config: Config, theme: Theme, reporter: Reporter) -> _Rendered | _Failure:
    """The post's page; or why it has none."""
    if isinstance(item, _Failure):
        return item
    try:
        with per_post(item.post.path):
            page = render.render(item.post, item.run, item.folder, config, theme)
    except LabbookError as error:
        return _Failure(item.post.path, error, item.post.key, item.post.slug)
    return _Rendered(page, item.status, item.seconds)


def _settle(failure: _Failure, config: Config, reporter: Reporter) -> tuple[Outcome, Summary | None]:
    """A failed post keeps its last good published version, if it has one of its own."""
    slug = failure.slug or source.slug_hint(config.root / failure.path, failure.path)  # read or not
    summary = site.published_summary(config, slug, source=str(failure.path))
    outcome = Outcome(failure.path, "kept-last-good" if summary else "failed", failure.error)
    reporter.done(outcome)
    return outcome, summary


def _published(posts: Iterable[Post], config: Config) -> dict[str, Summary]:
    """Posts not chosen for this build stay as published."""
    kept = {}
    for post in posts:
        summary = site.published_summary(config, post.slug, source=str(post.path))
        if summary is not None:
            kept[post.slug] = summary
    return kept


def _outcomes(unchanged: dict[str, Entry], skipped: Sequence[Post], drafts: Sequence[PurePosixPath],
              rendered: Sequence[_Rendered | _Failure], settled: Sequence[tuple[Outcome, Summary | None]],
              reporter: Reporter) -> list[Outcome]:
    """One Outcome per post file, in file order; each reported as it is decided here."""
    new: list[Outcome] = [Outcome(PurePosixPath(name), "unchanged") for name in unchanged]
    new += [Outcome(post.path, "skipped") for post in skipped]
    new += [Outcome(path, "unpublished") for path in drafts]
    new += [Outcome(r.page.path, r.status, seconds=r.seconds) for r in rendered  # type: ignore[arg-type]
            if isinstance(r, _Rendered)]
    for outcome in new:
        reporter.done(outcome)
    return sorted([*new, *(o for o, _ in settled)], key=lambda o: str(o.path))


def _remember(state: State, pages: Sequence[Page], failures: Sequence[_Failure], outcomes: Sequence[Outcome],
              files: Sequence[Path], config: Config) -> None:
    for page in pages:
        state.record(str(page.path), Entry(
            sha=page.post.source_sha, slug=page.slug, key=page.post.key, summary=page.summary,
            inputs=dict(page.run.inputs), files=published_stat(config.site, site.post_files(page)),
            broken=tuple(claim for claim, _ in _claims_broken(page.run)),
        ))
    for failure in failures:
        state.record_failure(str(failure.path), failure.key, str(failure.error))
    live = [str(o.path) for o in outcomes if o.status in ("executed", "cached", "unchanged")]
    state.save(live, [config.relative(p) for p in files])


def _claims_broken(run: Run) -> list[tuple[str, str]]:
    return [(c.claim.claim, c.claim.message) for c in run.cells if c.claim is not None and not c.claim.holds]


def _broken_claims(pages: Sequence[Page], unchanged: dict[str, Entry]) -> tuple[BrokenClaim, ...]:
    claims = [BrokenClaim(page.path, claim, message) for page in pages for claim, message in _claims_broken(page.run)]
    claims += [BrokenClaim(PurePosixPath(name), claim, "") for name, e in unchanged.items() for claim in e.broken]
    return tuple(sorted(claims, key=lambda c: str(c.path)))
