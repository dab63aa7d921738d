"""Checking a sweep post: its points run again (all, or `--points K` of them), then its gather on
the published table with those rows fresh, each judged against what site/ publishes.

in → out: a sweep Post, its published folder (assets/posts/<slug>/: the gather's run.json, the
table, points/<folder>/) → the jobs to run, then one PostCheck with a verdict per point.
Owns which points a check runs (sweep.choose_points: the same on every machine), the
comparison of a point's observables with its published row within the post's tolerance, and
`--seeds K` as a sweep over the seed axis (the spread of every observable of every point).
Never writes into site/ and never uses the cache.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .. import cache, compare, dispatch, gather, sweep
from ..config import Config
from ..errors import CacheError, LabbookError
from ..jobs import job_for
from ..model import Point, Post, Run
from ..observations import OBSERVATIONS
from .seeds import SeedSpread
from .verdicts import ClaimResult, PointCheck, PostCheck, compare_runs, platform_change, run_identity, verdict

__all__ = ["SweepCheck", "published_sweep"]

_OBSERVATIONS = f"data/{OBSERVATIONS}"
"""Compared as the table's observables, within tolerance, rather than byte for byte."""


def published_sweep(post: Post, store: cache.Store, config: Config) -> tuple[Run, Path] | str:
    """The published gather run and folder of a sweep post, or why site/ does not publish its
    current sweep (a point or the gather changed since the last build)."""
    folder = store.published_folder(post.slug)
    try:
        run = cache.read_run(folder)
    except CacheError:
        return "no published run in site/"
    missing, _, reason, _ = gather.stale_points(post, store, published_only=True)
    if missing or reason:
        return f"site/ publishes an older run ({reason}); run labbook build"
    return run, folder


@dataclass(frozen=True, slots=True)
class _Fresh:
    """A point (or the gather) as the check ran it again."""

    done: dispatch.Done
    folder: Path | None


class SweepCheck:
    """One sweep post in one check: its jobs, the Dones as they arrive, then its PostCheck."""

    def __init__(self, post: Post, published: tuple[Run, Path], config: Config, store: cache.Store, *,
                 points: int = 0, seeds: Sequence[int] = ()) -> None:
        assert post.sweep is not None
        self.post, self.config, self.store = post, config, store
        self.run, self.folder = published
        self.split = sweep.split_cells(post.cells, swept=True, path=str(post.path))
        self.table = _published_table(self.folder)
        self.chosen = sweep.choose_points(post.sweep.points, points) if points else post.sweep.points
        self.seeded: tuple[Point, ...] = ()
        self.seed_error: str = ""
        if seeds:
            try:
                self.seeded = tuple(p for p in sweep.with_seeds(post.sweep, seeds).points
                                    if p.seed != post.settings.seed)
            except ValueError as exc:
                self.seed_error = str(exc)
        self.fresh: dict[str, _Fresh] = {}
        """point id -> its re-run; 'gather' -> the gather's."""
        self._posts: dict[str, tuple[str, Point | None]] = {}
        """job key -> (role: 'point' | 'seed' | 'gather', point)."""
        preload = gather.preload_modules(post, config.root)
        self.jobs = [self._job(p, "point", preload) for p in self.chosen]
        self.jobs += [self._job(p, "seed", preload) for p in self.seeded]
        self._waiting = len(self.jobs)

    def _job(self, point: Point, role: str, preload: tuple[str, ...]) -> dispatch.Job:
        post = sweep.point_post(self.post, self.split, point, self.post.settings.params)
        self._posts[post.key] = (role, point)
        return replace(job_for(post, self.config, self.store), preload=preload, label=f"{self.post.slug} {point.id}",
                       group=self.post.path.as_posix())  # on Dask, points go in chunks as a build's do

    def owns(self, done: dispatch.Done) -> bool:
        return done.post.path == self.post.path and done.post.key in self._posts

    def take(self, done: dispatch.Done) -> dispatch.Job | None:
        """Keep a re-run; after the last point, the gather's job (when the post has a gather part)."""
        role, point = self._posts[done.post.key]
        done = dispatch.localized(done, self.store.new_folder)
        fresh = _Fresh(done, Path(done.folder) if done.run is not None else None)
        self.fresh[point.id if point is not None else "gather"] = fresh
        if role == "gather":
            return None
        self._waiting -= 1
        if self._waiting or not self.split.gather_cells:
            return None
        return self._gather_job()

    def _gather_job(self) -> dispatch.Job:
        """The gather on the published table, the re-run points' rows (and files) replacing theirs."""
        assert self.post.sweep is not None
        results, placed = [], {}
        remote = bool(self.config.scheduler)
        chosen = {p.id for p in self.chosen}
        for point in self.post.sweep.points:
            fresh = self.fresh.get(point.id) if point.id in chosen else None
            if fresh is not None:
                results.append(_fresh_result(point, fresh))
                source = fresh.folder if fresh.done.run is not None else None
                run = fresh.done.run
            else:
                results.append(_published_result(point, self.table))
                source = self.store.published_point(self.post.slug, point.folder)
                run = _read_run(source)
            if run is None or source is None:
                continue
            for artifact in run.artifacts:
                if artifact.kind == "data" and (source / artifact.name).is_file():
                    name = f"points/{point.folder}/{artifact.name.removeprefix('data/')}"
                    placed[name] = (source / artifact.name).read_bytes() if remote else str(source / artifact.name)
        table = sweep.tidy_table(self.post.sweep, results, seed=self.post.settings.seed)
        placed.update({sweep.TABLE_JSON: table.to_json(), sweep.TABLE_CSV: table.to_csv()})
        keyed = [(r.point, "", r.status == "ok") for r in results]
        post = sweep.gather_post(self.post, self.split, keyed)
        self._posts[post.key] = ("gather", None)
        return replace(job_for(post, self.config, self.store), placed=placed, label=f"{self.post.slug} gather")

    # --- the verdict ---

    def judge(self, work: Path) -> PostCheck:
        shutil.rmtree(work, ignore_errors=True)
        checks, platforms, changes = [], [], []
        differences: list[compare.Difference] = []
        claims: list[ClaimResult] = []
        errors: list[LabbookError] = []
        for point in self.chosen:
            result = self._judge_point(point, work / "points" / point.folder)
            checks.append(result.check)
            differences += result.differences
            claims += result.claims
            changes += [result.change] if result.change else []
            platforms += [result.platform] if result.platform else []
            errors += [result.error] if result.error is not None else []
        gathered = self.fresh.get("gather")
        if gathered is not None and gathered.done.run is not None and gathered.folder is not None:
            found, held = compare_runs(_gather_of(self.post, self.split, self.run), self.run, self.folder,
                                       gathered.done.run, gathered.folder, work / "gather")
            differences += [replace(d, name=f"gather: {d.name}") for d in found]
            claims += held
            change, _ = platform_change(self.run, gathered.done.run)
            changes += [change] if change else []
        elif gathered is not None:
            errors.append(gathered.done.error or LabbookError("the gather did not run", path=str(self.post.path)))
        judged = "failed" if errors else verdict(differences, claims, platform_differs=bool(changes))
        reason = ""
        if judged == "consistent":
            reason = f"claims hold; numbers differ on a different platform: {changes[0]}"
        note = (f"{len(self.chosen)} of {len(self.post.sweep.points)} points re-run (chosen with a fixed seed)"  # type: ignore[union-attr]
                if len(self.chosen) < len(self.post.sweep.points) else "")  # type: ignore[union-attr]
        return PostCheck(
            self.post.path, self.post.slug, judged, tuple(differences), tuple(claims),
            error=errors[0] if errors else None,
            reason=reason, note=note, seeds=self._spread(), published_dir=str(self.folder),
            new_dir=str(gathered.folder) if gathered is not None and gathered.folder else "",
            published_run=run_identity(self.run), platform=platforms[0] if platforms else "",
            seconds=sum(f.done.seconds for f in self.fresh.values()), points=tuple(checks),
        )

    def _judge_point(self, point: Point, work: Path) -> _PointJudgement:
        fresh = self.fresh.get(point.id)
        published_folder = self.store.published_point(self.post.slug, point.folder)
        published = _read_run(published_folder)
        row = _row(self.table, point)
        if fresh is None or fresh.done.run is None or fresh.folder is None:
            error = fresh.done.error if fresh is not None else None
            if published is None and row is not None and row["status"] == "failed":
                return _PointJudgement(PointCheck(point.id, "reproduced", "fails as published"))
            error = gather.point_error(error or LabbookError("the point did not run", path=str(self.post.path)), point)
            return _PointJudgement(PointCheck(point.id, "failed", str(error).splitlines()[0]), error=error)
        new = fresh.done.run
        if published is None:
            reason = "failed when published; runs now"
            difference = compare.Difference(f"{point.id}: run", "extra", reason)
            return _PointJudgement(PointCheck(point.id, "drifted", reason), [difference])
        point_post = sweep.point_post(self.post, self.split, point, self.post.settings.params)
        found, claims = compare_runs(point_post, _without_observations(published), published_folder,
                                     _without_observations(new), fresh.folder, work)
        found += _observables(point, row, fresh.folder, self.post)
        change, _ = platform_change(published, new)
        judged = verdict(found, claims, platform_differs=bool(change))
        differences = [replace(d, name=f"{point.id}: {d.name}") for d in found]
        claims = [replace(c, claim=f"{c.claim} (point {point.id})") for c in claims]
        reason = "; ".join(f"{d.name}: {d.reason}" for d in found[:2])
        platform = new.platform.description if new.platform else ""
        return _PointJudgement(PointCheck(point.id, judged, reason), differences, claims, change, platform)

    def _spread(self) -> SeedSpread | None:
        """`--seeds K`: each observable of each point, across the seeds (the post's own is the published row's)."""
        if not self.seeded and not self.seed_error:
            return None
        assert self.post.sweep is not None
        series = []
        failed: set[int] = set()
        for point in self.post.sweep.points:
            values: dict[str, list[float]] = {}
            mine = [p for p in self.seeded if p.values[:-1] == point.values]
            own = _row(self.table, point) or {}
            samples = [{k: v for k, v in own.items() if _observable(self.table, k)}]
            for seeded in mine:
                fresh = self.fresh.get(seeded.id)
                if fresh is None or fresh.folder is None:
                    failed.add(seeded.seed or 0)
                    continue
                samples.append(_observed(fresh.folder))
            for sample in samples:
                for name, value in sample.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                        values.setdefault(name, []).append(float(value))
            for name, numbers in sorted(values.items()):
                mean = sum(numbers) / len(numbers)
                std = math.sqrt(sum((v - mean) ** 2 for v in numbers) / len(numbers))
                series.append({"name": f"{point.id}: {name}", "mean": mean, "std": std, "min": min(numbers),
                               "max": max(numbers), "size": len(numbers)})
        seeds = len({p.seed for p in self.seeded}) + 1
        spread = SeedSpread(seeds, {}, tuple(series), tuple(sorted(failed)))
        if self.seed_error:
            return SeedSpread(0, {}, (), refused=self.seed_error)
        return spread


@dataclass(frozen=True, slots=True)
class _PointJudgement:
    check: PointCheck
    differences: Sequence[compare.Difference] = ()
    claims: Sequence[ClaimResult] = ()
    change: str = ""
    platform: str = ""
    error: LabbookError | None = None


def _published_table(folder: Path) -> sweep.Table:
    try:
        return sweep.Table.from_json((folder / sweep.TABLE_JSON).read_bytes())
    except (OSError, ValueError, KeyError, TypeError):
        return sweep.Table((), ())


def _read_run(folder: Path) -> Run | None:
    try:
        return cache.read_run(folder)
    except CacheError:
        return None


def _row(table: sweep.Table, point: Point) -> Mapping[str, object] | None:
    return next((r for r in table.records() if r.get("point") == point.folder), None)


def _observable(table: sweep.Table, name: str) -> bool:
    return any(c.name == name and c.role == "observable" for c in table.columns)


def _observed(folder: Path) -> dict[str, object]:
    from ..observations import read_observations

    path = folder / _OBSERVATIONS
    return read_observations(path.read_text(encoding="utf-8", errors="replace"))[0] if path.is_file() else {}


def _fresh_result(point: Point, fresh: _Fresh) -> sweep.PointResult:
    if fresh.done.run is None or fresh.folder is None:
        error = fresh.done.error or LabbookError("the point did not run")
        return sweep.point_result(point, error=error, seconds=fresh.done.seconds)
    path = fresh.folder / _OBSERVATIONS
    return sweep.point_result(point, observations=path.read_bytes() if path.is_file() else b"",
                              seconds=fresh.done.run.seconds)


def _published_result(point: Point, table: sweep.Table) -> sweep.PointResult:
    row = _row(table, point) or {"status": "failed", "error": "not in the published table", "seconds": 0.0}
    observed = {k: v for k, v in row.items() if _observable(table, k) and v is not None}
    return sweep.PointResult(point, "ok" if row["status"] == "ok" else "failed", observed,  # type: ignore[arg-type]
                             error=str(row.get("error") or ""), seconds=float(row.get("seconds") or 0.0))  # type: ignore[arg-type]


def _without_observations(run: Run) -> Run:
    return replace(run, artifacts=tuple(a for a in run.artifacts if a.name != _OBSERVATIONS))


def _observables(point: Point, row: Mapping[str, object] | None, folder: Path, post: Post) -> list[compare.Difference]:
    """The point's observables now against its published row, within the post's tolerance for
    sweep.csv (per column when it gives one)."""
    if row is None:
        return [compare.Difference("observables", "missing", "the published table has no row for this point")]
    now = _observed(folder)
    file_rule = post.settings.tolerance.file(sweep.TABLE_CSV)
    base = post.settings.tolerance.for_file(sweep.TABLE_CSV)
    found = []
    for name, before in row.items():
        if name in ("status", "error", "seconds", "point") or name not in now and before is None:
            continue
        if name in dict(point.values) or name == "seed":
            continue
        after = now.get(name)
        column = file_rule.columns.get(name)
        rtol = column.rtol if column is not None and column.rtol is not None else base.rtol
        atol = column.atol if column is not None and column.atol is not None else base.atol
        if not _close(before, after, rtol, atol):
            found.append(compare.Difference(f"observable {name}", "data", f"{before!r} published, {after!r} now",
                                            _magnitude(before, after), f"rtol={rtol:g} atol={atol:g}"))
    return found


def _close(before: object, after: object, rtol: float, atol: float) -> bool:
    numbers = (int, float)
    if isinstance(before, bool) or isinstance(after, bool) or \
            not (isinstance(before, numbers) and isinstance(after, numbers)):
        return before == after
    if math.isnan(before) and math.isnan(after):
        return True
    return abs(after - before) <= atol + rtol * abs(before)


def _magnitude(before: object, after: object) -> float | None:
    if isinstance(before, (int, float)) and isinstance(after, (int, float)) and not isinstance(before, bool):
        return abs(float(after) - float(before))
    return None


def _gather_of(post: Post, split: sweep.Split, published: Run) -> Post:
    """The gather as a post (its cells and settings) for comparing outputs; its key is not used."""
    return replace(sweep.gather_post(post, split, []), key=published.key)
