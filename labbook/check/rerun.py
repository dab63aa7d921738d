"""The check itself: execute every post again, ignoring every cache, and judge the re-run
against what site/ publishes.

in → out: the project's posts and site/ → a CheckReport.
Owns which posts can be checked (new and stale ones cannot), running them and their seed
variants, and each post's verdict.
Never writes into site/ (recording is `record`'s, and only when asked).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from .. import cache, dispatch, source
from ..config import Config
from ..errors import CacheError, LabbookError
from ..model import Post, Run
from .record import record_verdicts
from .seeds import seed_spread, with_seed
from .sweeps import SweepCheck, published_sweep
from .verdicts import CheckReport, PostCheck, compare_runs, platform_change, run_identity, verdict

__all__ = ["check", "CheckReporter"]


class CheckReporter(Protocol):
    """Where the check says what it does; the CLI's shows kernels and cells as they run."""

    def started(self, posts: Sequence[Post], runs: int) -> None: ...
    def cell(self, slug: str, index: int, total: int) -> None: ...
    def executed(self, post: Post, seconds: float) -> None: ...
    def checked(self, result: PostCheck) -> None: ...


class _Quiet:
    def started(self, posts: Sequence[Post], runs: int) -> None: ...
    def cell(self, slug: str, index: int, total: int) -> None: ...
    def executed(self, post: Post, seconds: float) -> None: ...
    def checked(self, result: PostCheck) -> None: ...


def check(config: Config, *, only: Sequence[Path] | None = None, seeds: int = 0, record: bool = False,
          diff_dir: Path | None = None, reporter: CheckReporter | None = None, points: int = 0) -> CheckReport:
    """Execute every post again, ignoring all caches, and compare with what site/ publishes.

    A sweep post runs every point again (or `points` of them, chosen with a fixed seed), then
    its gather on the published table with those rows fresh; `seeds` runs its points with each
    seed (a sweep over the seed axis).

    With `record`, each verdict is kept in the run.json of the very run it was judged against
    (never in another one that a build published meanwhile), and the pages show it; the pages'
    build clears the re-runs' folders, so write an HTML report first (`record_verdicts` after it,
    as the CLI does).

    Raises:
        ConfigError: a bad scheduler address.
    """
    from ..lock import held
    from ..site import recover

    reporter = reporter or _Quiet()
    with held(config):
        recover(config.site)  # a build killed mid-commit is finished before site/ is read
    store = cache.Store(config)
    read = source.read_all(config, only)
    report = CheckReport([PostCheck(path, path.stem, "failed", error=error) for path, error in read.failures])
    published: dict[str, tuple[Run, Path]] = {}
    for post in read.posts:
        if not (post.cells or post.inline):  # no run: nothing to re-execute, nothing to compare
            report.without_code += 1
            continue
        found = _published(post, store, config)
        if isinstance(found, PostCheck):
            report.posts.append(found)
        else:
            published[post.slug] = found
    to_run = [post for post in read.posts if post.slug in published]
    seed_list = list(range(seeds)) if seeds > 1 else []
    plain = [post for post in to_run if post.sweep is None]
    sweeps = [SweepCheck(post, published[post.slug], config, store, points=points, seeds=seed_list)
              for post in to_run if post.sweep is not None]
    jobs = _jobs(plain, seed_list, config, store)
    reporter.started(to_run, len(jobs) + sum(len(s.jobs) for s in sweeps))
    results = _execute(jobs, sweeps, config, store, reporter)
    work = diff_dir or config.cache / "check"
    for post in plain:
        result = _judge(post, published[post.slug], results, seed_list, work / post.slug)
        report.posts.append(result)
        reporter.checked(result)
    for swept in sweeps:
        result = swept.judge(work / swept.post.slug)
        report.posts.append(result)
        reporter.checked(result)
    report.posts.sort(key=lambda p: str(p.path))
    if record:
        report.notes += record_verdicts(config, report)
    return report


def _published(post: Post, store: cache.Store, config: Config) -> tuple[Run, Path] | PostCheck:
    """The published run to compare with, or why there is none to compare with."""
    if post.sweep is not None:
        found = published_sweep(post, store, config)
        if isinstance(found, str):
            verdict_ = "new" if found == "no published run in site/" else "stale"
            return PostCheck(post.path, post.slug, verdict_, reason=found)
        return found
    folder = store.published_folder(post.slug)
    try:
        run = cache.read_run(folder)
    except CacheError:
        return PostCheck(post.path, post.slug, "new", reason="no published run in site/")
    stale = cache.stale_reason(post, run, config.root, store.hashes)
    if stale is not None:
        reason = f"site/ publishes an older run ({stale}); run labbook build"
        return PostCheck(post.path, post.slug, "stale", reason=reason)
    return run, folder


def _jobs(posts: Sequence[Post], seeds: Sequence[int], config: Config, store: cache.Store) -> list[dispatch.Job]:
    from ..jobs import job_for

    variants = []
    for post in posts:
        variants.append(post)
        variants += [with_seed(post, s) for s in seeds if s != post.settings.seed]
    return [job_for(post, config, store) for post in variants]


def _execute(jobs: Sequence[dispatch.Job], sweeps: Sequence[SweepCheck], config: Config, store: cache.Store,
             reporter: CheckReporter) -> dict[tuple[str, int], dispatch.Done]:
    """Every job's Done; a sweep's own are kept by it (and its gather submitted after its points)."""
    results: dict[tuple[str, int], dispatch.Done] = {}
    if not jobs and not any(s.jobs for s in sweeps):
        return results
    with dispatch.open_dispatcher(config.workers, config.scheduler) as dispatcher, \
            dispatcher.session(progress=reporter.cell) as session:
        for job in [*jobs, *(j for s in sweeps for j in s.jobs)]:
            session.submit(job)
        for done in session:
            reporter.executed(done.post, done.seconds)
            owner = next((s for s in sweeps if s.owns(done)), None)
            if owner is not None:
                following = owner.take(done)
                if following is not None:
                    session.submit(following)
                continue
            done = dispatch.localized(done, store.new_folder)
            results[(done.post.slug, done.post.settings.seed)] = done
    return results


def _judge(post: Post, published: tuple[Run, Path], results: Mapping[tuple[str, int], dispatch.Done],
           seeds: Sequence[int], work: Path) -> PostCheck:
    run, folder = published
    done = results.get((post.slug, post.settings.seed))
    spread = None
    if seeds:
        ok = {s: (results[(post.slug, s)].run, Path(results[(post.slug, s)].folder)) for s in seeds
              if (post.slug, s) in results and results[(post.slug, s)].run is not None}
        spread = seed_spread(ok, [s for s in seeds if s not in ok])  # type: ignore[arg-type]
    identity = run_identity(run)
    if done is None or done.run is None:
        error = done.error if done else LabbookError("the run was lost")
        return PostCheck(post.path, post.slug, "failed", error=error, seeds=spread, published_dir=str(folder),
                         published_run=identity)
    shutil.rmtree(work, ignore_errors=True)
    differences, claims = compare_runs(post, run, folder, done.run, Path(done.folder), work / "diffs")
    change, note = platform_change(run, done.run)
    judged = verdict(differences, claims, platform_differs=bool(change))
    reason = f"claims hold; numbers differ on a different platform: {change}" if judged == "consistent" else ""
    if judged in ("reproduced", "claim broken") or change:
        note = ""  # only drift needs to know that the platform could not be compared
    platform = done.run.platform.description if done.run.platform else ""
    return PostCheck(post.path, post.slug, judged, tuple(differences), tuple(claims), reason=reason, note=note,
                     seeds=spread, seconds=done.seconds, published_dir=str(folder), new_dir=done.folder,
                     published_run=identity, platform=platform)
