"""The whole pipeline, top to bottom: read -> (cache | execute) -> render -> write.

Each step is a plain call that returns what it made. One bad post never stops the rest: its
error becomes a failed Outcome, and its last good published version stays.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, NamedTuple, Protocol

from . import journal, lock
from .config import Config, discover, remember_settings
from .errors import LabbookError, per_post
from .published import Change, Notice, Outcome, Summary
from .state import Entry, State, fingerprint, published_stat
from .theme import Theme

if TYPE_CHECKING:  # imported where they are used: a build with nothing to read, run or render needs none of them
    from . import cache, dispatch, gather
    from .model import Page, Post, Run
    from .sweep import Progress

__all__ = ["build", "BuildReport", "Reporter", "NullReporter", "BrokenClaim", "inline_added"]


class Reporter(Protocol):
    """Where the build says what it does, as it does it; the CLI's is a rich live display.

    Every method does nothing here: a reporter says only what it cares about.
    """

    def stage(self, name: str, seconds: float) -> None:
        """A stage (read, execute, build) finished."""
        return None

    def executing(self, posts: Sequence[Post]) -> None:
        """Kernels start for these posts."""
        return None

    def cell(self, slug: str, index: int, total: int) -> None:
        """A post's kernel starts its cell `index` (0-based) of `total`."""
        return None

    def executed(self, post: Post, seconds: float, sweep: gather.SweepCounts | None = None) -> None:
        """A post's kernels are done: `seconds` of execution (a sweep's: its points' and its
        gather's, added up, with what they were in `sweep`)."""
        return None

    def points(self, post: Post, progress: Progress, finished: str = "") -> None:
        """A sweep post's points: how far; `finished` names the point that just came back."""
        return None

    def done(self, outcome: Outcome) -> None:
        """What became of one post (executed, cached, failed, …)."""
        return None

    def warning(self, message: str) -> None:
        return None

    def detail(self, message: str) -> None:
        """What only `-v` shows: how the build went about it, not what came of it."""
        return None


class NullReporter(Reporter):
    """Says nothing."""


class BrokenClaim(NamedTuple):
    """A claim cell whose assertions did not hold in the published run."""

    path: PurePosixPath
    claim: str
    message: str


class BuildReport(NamedTuple):
    outcomes: tuple[Outcome, ...] = ()
    notices: tuple[Notice, ...] = ()
    change: Change = Change()
    broken_claims: tuple[BrokenClaim, ...] = ()
    sweeps: tuple[gather.SweepCounts, ...] = ()
    """What happened to the points of each sweep post this build read."""

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is not None]

    @property
    def executed(self) -> int:
        return self.count("executed")

    @property
    def failed_points(self) -> list[LabbookError]:
        return [error for counts in self.sweeps for error in counts.failed]

    def strict_failure(self, strict: bool) -> bool:
        """With --strict, a broken claim or a warning fails the build too."""
        return strict and bool(self.broken_claims or self.notices)

    def exit_code(self, *, strict: bool = False) -> int:
        """1 when a post or a sweep point failed (or, strict, a claim broke or a warning was given)."""
        return 1 if self.failed or self.failed_points or self.strict_failure(strict) else 0


# --- the pipeline ----------------------------------------------------------------------------------


class _Ready(NamedTuple):
    """A post with a run to render: cached, or just executed."""

    post: Post
    run: Run
    folder: Path | None
    status: str
    seconds: float = 0.0
    sweep: gather.SweepCounts | None = None


class _Rendered(NamedTuple):
    page: Page
    status: str
    """executed | cached"""
    seconds: float
    sweep: gather.SweepCounts | None = None


class _Failure(NamedTuple):
    path: PurePosixPath
    error: LabbookError
    key: str | None = None
    """The key of the post that failed, when it was read: status says 'failing' while it holds."""
    slug: str | None = None
    """Its slug, when it was read (a `slug:` may differ from the file's name)."""
    sweep: gather.SweepCounts | None = None


def build(config: Config, *, only: Sequence[Path] | None = None, force: bool = False, prune: bool = False,
          wait: bool = True, reporter: Reporter | None = None, search: bool = True) -> BuildReport:
    """Read every post, execute what changed, render, write. One bad post never stops the rest.

    `search=False` leaves the search bundle as it is; the next build brings it up to date.

    Raises:
        ConfigError: the posts folder does not exist.
        LockError: another build holds the project and `wait` is False.
        SiteError: site/ could not be written (it is left as before), or the build would
            unpublish more posts than it keeps and `prune` is False.
    """
    reporter = reporter or NullReporter()
    clock = time.perf_counter()
    with lock.held(config, wait=wait, on_wait=reporter.warning):
        remember_settings(config)                                                # the next command reads no TOML
        project = _Project.open(config, _Chosen(config, only, force))            # theme, state, run store
        read = _read(project)                                                    # unchanged posts: not even read
        reporter.stage("read", time.perf_counter() - clock)
        ready, missing, skipped = _look_up(read.posts, project.store, project.chosen, reporter)
        with _executions(missing, project, reporter) as arriving:  # kernels start now
            rendered = _Results([_render(item, config, project.theme) for item in _ready_first(ready, arriving)],
                                read.failures)
        settled = [_settle(f, config, reporter) for f in rendered.failures]      # keep the last good pages
        kept = _kept(read.unchanged, skipped, settled, config)
        change = _write(project, rendered.pages, kept, bool(rendered.failures), search=search, prune=prune)
        outcomes = _outcomes(read.unchanged, skipped, read.drafts, rendered.items, settled, reporter)
        _remember(project.state, rendered, outcomes, read.files, config)
        reporter.stage("build", time.perf_counter() - clock)
    notices = (*read.notices, *(n for p in rendered.pages for n in p.notices), *change.notices)
    for notice in notices:
        reporter.warning(str(notice))
    claims = _broken_claims(rendered.pages, read.unchanged)
    return BuildReport(tuple(outcomes), notices, change, claims, rendered.sweeps)


class _Project(NamedTuple):
    """What one build works with, opened once under the lock."""

    config: Config
    chosen: _Chosen
    theme: Theme
    state: State
    store: cache.Store

    @classmethod
    def open(cls, config: Config, chosen: _Chosen) -> _Project:
        """Finish (or undo) an interrupted write of site/; load the theme, the state of the last
        build and the run store; clear what killed builds left in the store."""
        journal.recover(config.site, config.site.name)  # site.recover, without importing the write stage
        theme = Theme(config.templates, compiled=config.cache / "jinja2")  # compiled templates kept there
        state = State(config, lambda hashes: fingerprint(config, theme.digest(hashes)))
        from .cache import Store

        store = Store(config, state.hashes)
        store.clean_tmp()
        return cls(config, chosen, theme, state, store)


class _Read(NamedTuple):
    """The posts this build read, and those it did not need to."""

    files: list[Path]
    """Every post file, in order."""
    unchanged: dict[str, Entry]
    """Posts as the last build left them (file -> entry): not read."""
    posts: tuple[Post, ...]
    failures: list[_Failure]
    """Posts that did not read."""
    drafts: tuple[PurePosixPath, ...]
    notices: tuple[Notice, ...]


def _read(project: _Project) -> _Read:
    """Every post whose file, inputs or published pages changed since the last build."""
    config = project.config
    files = discover(config)
    unchanged = _unchanged(files, project.state, project.chosen)
    changed = [p for p in files if config.relative(p) not in unchanged]
    if not changed:
        return _Read(files, unchanged, (), [], (), ())
    from . import source

    read = source.read_all(config, changed, taken={e.slug: name for name, e in unchanged.items()})
    return _Read(files, unchanged, read.posts, [_Failure(p, e) for p, e in read.failures], read.drafts,
                 read.notices)


class _Results:
    """Every post that was looked up, executed or failed: its page, or why it has none."""

    def __init__(self, items: list[_Rendered | _Failure], unread: Sequence[_Failure]) -> None:
        self.items = items
        self.pages = sorted((r.page for r in items if isinstance(r, _Rendered)), key=lambda p: p.slug)
        self.failures = [*unread, *(r for r in items if isinstance(r, _Failure))]
        self.sweeps = tuple(r.sweep for r in items if r.sweep is not None)


def _kept(unchanged: dict[str, Entry], skipped: Iterable[Post], settled: Sequence[tuple[Outcome, Summary | None]],
          config: Config) -> dict[str, Summary]:
    """The posts left as published: unchanged, not chosen, or failed with a last good page."""
    return {e.slug: e.summary for e in unchanged.values()} | _published(skipped, config) | {
        s.slug: s for _, s in settled if s is not None}


def _write(project: _Project, pages: Sequence[Page], kept: Mapping[str, Summary], failed: bool, *, search: bool,
           prune: bool) -> Change:
    """site/ brought to the publication; nothing at all when no page, failure or listing changed."""
    if not pages and not failed and project.state.listing_holds(pages, kept):
        return Change()  # a no-op: every listing, theme and author file as the last write left it (no jinja2, no YAML)
    from . import site

    change = site.write(site.Publication(pages, kept, search), project.config, project.theme, prune=prune)
    if search:
        project.state.wrote_listing(pages, kept)
    else:
        project.state.listing = {}  # the search bundle is behind: the next build writes the site again
    return change


class _Chosen(NamedTuple):
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


def _unchanged(files: Iterable[Path], state: State, chosen: _Chosen) -> dict[str, Entry]:
    """Posts whose file, inputs and published pages are as the last build left them: not even read."""
    found = {}
    for path in files:
        entry = None if chosen.forced(path) else state.unchanged(path)
        if entry is not None:
            found[state.config.relative(path)] = entry
    return found


def _look_up(posts: Sequence[Post], store: cache.Store, chosen: _Chosen,
             reporter: Reporter) -> tuple[list[_Ready], list[Post | gather.SweepPlan], list[Post]]:
    """(posts with a usable run, posts and sweeps to execute, posts left as published: not
    chosen); the corrupt cache entries met on the way are reported, and executed again."""
    from .cache import Lookup

    ready: list[_Ready] = []
    missing: list[Post | gather.SweepPlan] = []
    skipped: list[Post] = []
    for post in posts:
        path = store.config.root / post.path
        if post.sweep is not None and path in chosen:
            plan = _look_up_sweep(post, store, chosen, reporter)
            ready.append(plan) if isinstance(plan, _Ready) else missing.append(plan)
            continue
        forced = chosen.forced(path) and bool(post.cells)  # a post without code never runs
        found = Lookup(None, None, "--force") if forced else store.lookup(post)
        for note in found.notes:
            reporter.warning(note)
        found = inline_added(post, found, store)  # a lookup without a run comes back as it is
        if found.run is not None:
            ready.append(_Ready(post, found.run, found.folder, "cached"))
        elif path in chosen:
            missing.append(post)
        else:
            skipped.append(post)
    return ready, missing, skipped


def _look_up_sweep(post: Post, store: cache.Store, chosen: _Chosen, reporter: Reporter) -> gather.SweepPlan | _Ready:
    """A sweep post's points (and gather) looked up: ready when all are, else the plan that runs the rest."""
    from . import gather

    plan = gather.SweepPlan(post, store.config, store, force=chosen.forced(store.config.root / post.path),
                            inline_added=inline_added, workers=store.config.workers)
    for note in plan.notes:
        reporter.warning(note)
    if isinstance(plan.result, gather.Gathered):
        return _Ready(post, plan.result.run, plan.result.folder, "cached", sweep=plan.result.counts)
    return plan


def inline_added(post: Post, found: cache.Lookup, store: cache.Store) -> cache.Lookup:
    """A prose edit added inline expressions: evaluate them over the run's snapshot (no cells
    run) and store the run with their values; the lookup already said the snapshot suffices."""
    if found.run is None or found.folder is None or all(i.expression in found.run.inline for i in post.inline):
        return found
    from . import execute  # only now: a build that runs nothing does not import the kernel machinery
    from .cache import Lookup

    run = execute.evaluate_inline(post, found.run, found.folder, store.config.root)
    return Lookup(run, store.put_copy(run, found.folder), found.reason, found.notes)


@contextlib.contextmanager
def _executions(missing: Sequence[Post | gather.SweepPlan], project: _Project,
                reporter: Reporter) -> Iterator[Iterator[_Ready | _Failure]]:
    """Start every post's and every sweep point's execution at once; the runs then come as they
    finish (a sweep's gather starts when its last point arrives), one per post. Meanwhile the
    render stage gets ready (`_prepare_rendering`).

    Leaving the block early (an interrupt, an error) stops every kernel still running.
    """
    if not missing:
        yield iter(())
        return
    from . import dispatch, gather
    from .jobs import job_for
    from .model import Post

    config, store = project.config, project.store
    posts = [m for m in missing if isinstance(m, Post)]
    sweeps = [m for m in missing if isinstance(m, gather.SweepPlan)]
    reporter.executing([*posts, *(plan.post for plan in sweeps)])
    clock = time.perf_counter()
    with dispatch.open_dispatcher(config.workers, config.scheduler) as dispatcher, \
            dispatcher.session(progress=reporter.cell) as session:
        for job in [*(job_for(post, config, store) for post in _one_per_key(posts)),
                    *(j for s in sweeps for j in s.jobs)]:
            session.submit(job)
        for expected in (s.gather_ahead for s in sweeps):
            if expected is not None:
                session.expect(expected)
        _prepare_rendering(project.theme)
        for plan in sweeps:
            reporter.points(plan.post, plan.progress)
        yield _for_every_post(_arrivals(session, sweeps, store, reporter), posts)
    reporter.stage("execute", time.perf_counter() - clock)


def _prepare_rendering(theme: Theme) -> None:
    """Import the render stage, load the site's templates and make the code cells' lexer on a
    helper thread while the kernels boot and run (~0.2 s of imports, ~0.3 s of compiling
    templates and ~0.1 s of pygments' Python patterns on a cold build): the first page then
    renders as soon as its run arrives. Whatever fails here fails again, and is reported, when
    the page is rendered."""
    import threading

    def prepare() -> None:
        with contextlib.suppress(Exception):
            from . import render

            theme.compile_all()
            render.ready_to_highlight()

    threading.Thread(target=prepare, daemon=True, name="labbook-render-ready").start()


def _arrivals(session: dispatch.Session, sweeps: Sequence[gather.SweepPlan], store: cache.Store,
              reporter: Reporter) -> Iterator[_Ready | _Failure]:
    from . import dispatch

    for done in session:
        for warning in done.warnings:
            reporter.warning(warning)
        plan = next((s for s in sweeps if s.owns(done)), None)
        if plan is not None:
            yield from _sweep_arrival(plan, done, session, reporter)
        elif done.run is None:
            error = done.error or LabbookError("execution failed")
            yield _Failure(done.post.path, error, done.post.key, done.post.slug)
        else:
            reporter.executed(done.post, done.seconds)
            folder = store.put(done.run, dispatch.local_folder(done, store.new_folder))
            yield _Ready(done.post, done.run, folder, "executed", done.seconds)


def _sweep_arrival(plan: gather.SweepPlan, done: dispatch.Done, session: dispatch.Session,
                   reporter: Reporter) -> Iterator[_Ready | _Failure]:
    """A point or a gather arrived: the gather's job after the last point; the post once gathered."""
    from . import gather

    following = plan.take(done)
    reporter.points(plan.post, plan.progress, plan.label(done))
    if done.fresh_kernel:
        point = plan.label(done).split(" ", 1)[-1]
        reporter.detail(f"{plan.post.path} {point}: ran in a fresh kernel: {done.fresh_kernel}")
    if following is not None:
        session.submit(following)
    for warning in plan.warnings if following is not None or plan.result is not None else ():
        reporter.warning(f"{plan.post.path}: {warning}")
    result = plan.result
    if isinstance(result, gather.Gathered):
        reporter.executed(plan.post, result.seconds, result.counts)
        yield _Ready(plan.post, result.run, result.folder, result.status, result.seconds, sweep=result.counts)
    elif isinstance(result, LabbookError):
        yield _Failure(plan.post.path, result, plan.post.key, plan.post.slug, sweep=plan.counts)


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
        if item.sweep is not None:  # a sweep post runs its own points: it has no twin
            yield item
            continue
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


def _render(item: _Ready | _Failure, config: Config, theme: Theme) -> _Rendered | _Failure:
    """The post's page; or why it has none."""
    if isinstance(item, _Failure):
        return item
    try:
        with per_post(item.post.path):
            from . import render  # only now: a build with nothing to render imports no markdown or math

            page = render.render(item.post, item.run, item.folder, config, theme)
    except LabbookError as error:
        return _Failure(item.post.path, error, item.post.key, item.post.slug, item.sweep)
    return _Rendered(page, item.status, item.seconds, item.sweep)


def _settle(failure: _Failure, config: Config, reporter: Reporter) -> tuple[Outcome, Summary | None]:
    """A failed post keeps its last good published version, if it has one of its own."""
    from . import site, source

    slug = failure.slug or source.slug_hint(config.root / failure.path, failure.path)  # read or not
    summary = site.published_summary(config, slug, source=str(failure.path))
    outcome = Outcome(failure.path, "kept-last-good" if summary else "failed", failure.error)
    reporter.done(outcome)
    return outcome, summary


def _published(posts: Iterable[Post], config: Config) -> dict[str, Summary]:
    """Posts not chosen for this build stay as published."""
    kept = {}
    for post in posts:
        from . import site  # only for a post left out: an unchanged site never imports the write stage

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


def _remember(state: State, results: _Results, outcomes: Sequence[Outcome], files: Sequence[Path],
              config: Config) -> None:
    """What the next build needs to skip what did not change. A sweep post with failed points is
    not skipped: they run again next time, as a failed post does."""
    failing = {str(counts.path): counts.failed for counts in results.sweeps if counts.failed}
    for page in results.pages:
        if str(page.path) in failing:
            state.entries.pop(str(page.path), None)
            state.record_failure(str(page.path), page.post.key, str(failing[str(page.path)][0]))
            continue
        from .site import post_files  # a build that rendered nothing does not import the write stage

        state.record(str(page.path), Entry(
            sha=page.post.source_sha, slug=page.slug, key=page.post.key, summary=page.summary,
            inputs=dict(page.run.inputs), files=published_stat(config.site, post_files(page)),
            broken=tuple(claim for claim, _ in _claims_broken(page.run)),
        ))
    for failure in results.failures:
        state.record_failure(str(failure.path), failure.key, str(failure.error))
    live = [str(o.path) for o in outcomes if o.status in ("executed", "cached", "unchanged")]
    state.save(live, [config.relative(p) for p in files])


def _claims_broken(run: Run) -> list[tuple[str, str]]:
    return [(c.claim.claim, c.claim.message) for c in run.cells if c.claim is not None and not c.claim.holds]


def _broken_claims(pages: Sequence[Page], unchanged: dict[str, Entry]) -> tuple[BrokenClaim, ...]:
    claims = [BrokenClaim(page.path, claim, message) for page in pages for claim, message in _claims_broken(page.run)]
    claims += [BrokenClaim(PurePosixPath(name), claim, "") for name, e in unchanged.items() for claim in e.broken]
    return tuple(sorted(claims, key=lambda c: str(c.path)))
