"""Check: Post + published Run -> PostCheck.

Re-executes posts in fresh kernels, ignoring every cache, and compares what comes out with
what site/ publishes: data within the post's tolerances, figures by pixel RMS, text outputs
after sanitizing, and claims. A mismatch is a result, not an exception. Writes nothing into
site/ but the `check` record of each run.json (and, through a build, the page showing it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from . import cache, compare, executor, source
from .config import Config
from .errors import CacheError, LabbookError
from .files import write_json_atomic
from .model import Post, Run

__all__ = ["check", "CheckReport", "PostCheck", "ClaimResult", "SeedSpread", "write_junit", "write_html_report",
           "details", "VERDICTS", "refresh_pages"]

VERDICTS = ("reproduced", "drifted", "claim broken", "failed", "new", "stale")
NOT_COMPARED = {"executed.ipynb", "outputs.ipynb"}
"""The executed notebook holds the same outputs as run.json's cells, which are compared instead."""


@dataclass(frozen=True, slots=True)
class ClaimResult:
    claim: str
    published: bool | None
    now: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class SeedSpread:
    """How a post's results move with LABBOOK_SEED."""

    seeds: int
    claims: Mapping[str, tuple[int, int]]
    """claim -> (seeds on which it held, seeds run)."""
    series: tuple[dict[str, Any], ...]
    """Per numeric scalar / column / array: name, mean, std (across seeds), min, max."""
    failed: tuple[int, ...] = ()
    """Seeds whose run raised."""


@dataclass(frozen=True, slots=True)
class PostCheck:
    path: PurePosixPath
    slug: str
    verdict: str
    differences: tuple[compare.Difference, ...] = ()
    claims: tuple[ClaimResult, ...] = ()
    error: LabbookError | None = None
    reason: str = ""
    seeds: SeedSpread | None = None
    seconds: float = 0.0
    published_dir: str = ""
    new_dir: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == "reproduced"


@dataclass(slots=True)
class CheckReport:
    posts: list[PostCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.posts) and all(p.ok for p in self.posts)


# --- comparing one post ---------------------------------------------------------------------------


def compare_runs(post: Post, published: Run, published_dir: Path, new: Run, new_dir: Path,
                 diff_dir: Path | None) -> tuple[list[compare.Difference], list[ClaimResult]]:
    """Every way `new` fails to reproduce `published`, and each claim's verdict then and now."""
    tolerance = post.settings.tolerance
    kinds = {a.name: a.kind for a in (*published.artifacts, *new.artifacts)}
    differences = compare.compare_files(
        published_dir, new_dir,
        [a.name for a in published.artifacts if a.name not in NOT_COMPARED],
        [a.name for a in new.artifacts if a.name not in NOT_COMPARED],
        kinds, tolerance, diff_dir, post.settings.sanitize,
    )
    old_cells = {c.index: c for c in published.cells}
    for cell in new.cells:
        before = old_cells.get(cell.index)
        outputs_before = before.outputs if before else ()
        difference = compare.compare_outputs(outputs_before, cell.outputs, cell.index + 1, post.settings.sanitize)
        if difference is not None:
            differences.append(difference)
    claims = [
        ClaimResult(cell.claim.claim, old_cells[cell.index].claim.holds if cell.index in old_cells
                    and old_cells[cell.index].claim else None, cell.claim.holds, cell.claim.message)
        for cell in new.cells if cell.claim is not None
    ]
    return differences, claims


def _verdict(differences: Sequence[compare.Difference], claims: Sequence[ClaimResult]) -> str:
    if any(not c.now for c in claims):
        return "claim broken"
    return "drifted" if differences else "reproduced"


# --- seeds -----------------------------------------------------------------------------------------


def with_seed(post: Post, seed: int) -> Post:
    """The same post run with another LABBOOK_SEED: a different run, so a different key."""
    settings = replace(post.settings, seed=seed)
    basis = source.key_basis(post.cells, settings, post.inputs)
    return replace(post, settings=settings, basis=basis, key=source.compute_key(basis))


def seed_spread(runs: Mapping[int, tuple[Run, Path]], failed: Sequence[int]) -> SeedSpread:
    """Spread across seeds of every numeric scalar and column the runs wrote, and claim tallies."""
    claims: dict[str, list[int]] = {}
    for run, _ in runs.values():
        for cell in run.cells:
            if cell.claim is not None:
                tally = claims.setdefault(cell.claim.claim, [0, 0])
                tally[0] += int(cell.claim.holds)
                tally[1] += 1
    per_seed = [_numeric_series(run, folder) for run, folder in runs.values()]
    series = []
    names = sorted(set.intersection(*(set(s) for s in per_seed))) if per_seed else []
    for name in names[:500]:
        series.append(_spread(name, [s[name] for s in per_seed]))
    return SeedSpread(len(runs) + len(failed), {k: (v[0], v[1] + len(failed)) for k, v in claims.items()},
                      tuple(s for s in series if s), tuple(sorted(failed)))


def _spread(name: str, values: list[Any]) -> dict[str, Any] | None:
    import numpy as np

    shapes = {np.shape(v) for v in values}
    if len(shapes) != 1:
        return None
    stack = np.asarray(values, dtype=float)
    finite = stack[np.isfinite(stack)]
    if finite.size == 0:
        return None
    across = np.nanstd(stack, axis=0) if stack.ndim > 1 else np.nanstd(stack)
    return {"name": name, "mean": float(np.nanmean(stack)), "std": float(np.nanmean(across)),
            "min": float(finite.min()), "max": float(finite.max()), "size": int(stack[0].size)}


def _numeric_series(run: Run, folder: Path) -> dict[str, Any]:
    """name -> number or array: every numeric CSV column, JSON leaf, NPY and NPZ array."""
    import numpy as np

    found: dict[str, Any] = {}
    for artifact in run.artifacts:
        if artifact.kind != "data":
            continue
        path, label = folder / artifact.name, artifact.name.removeprefix("data/")
        with contextlib.suppress(Exception):  # a file that will not parse simply has no series
            if path.suffix in (".csv", ".tsv"):
                table = np.genfromtxt(path, delimiter="," if path.suffix == ".csv" else "\t", names=True,
                                      dtype=float, encoding="utf-8")
                for column in table.dtype.names or ():
                    if np.isfinite(table[column]).any():
                        found[f"{label}:{column}"] = np.atleast_1d(table[column])
            elif path.suffix == ".npy":
                found[label] = np.load(path, allow_pickle=False)
            elif path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as arrays:
                    for key in arrays.files:
                        if np.issubdtype(arrays[key].dtype, np.number):
                            found[f"{label}:{key}"] = arrays[key]
            elif path.suffix == ".json":
                _json_numbers(json.loads(path.read_text()), label + ":$", found)
    return found


def _json_numbers(value: Any, name: str, found: dict[str, Any]) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        found[name] = float(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _json_numbers(item, f"{name}.{key}", found)
    elif isinstance(value, list) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        found[name] = [float(v) for v in value]
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _json_numbers(item, f"{name}[{index}]", found)


# --- the entry point --------------------------------------------------------------------------------


class _Reporter:
    def started(self, posts: Sequence[Post], runs: int) -> None: ...
    def cell(self, slug: str, index: int, total: int) -> None: ...
    def executed(self, post: Post, seconds: float) -> None: ...
    def checked(self, result: PostCheck) -> None: ...


def check(config: Config, *, only: Sequence[Path] | None = None, seeds: int = 0, record: bool = True,
          diff_dir: Path | None = None, reporter: Any = None) -> CheckReport:
    """Execute every post again, ignoring all caches, and compare with what site/ publishes.

    Raises:
        ConfigError: a bad scheduler address.
    """
    from .lock import held
    from .site import recover

    reporter = reporter or _Reporter()
    with held(config):
        recover(config.site)  # a build killed mid-commit is finished before site/ is read
    store = cache.Store(config)
    read = source.read_all(config, only)
    report = CheckReport()
    for path, error in read.failures:
        report.posts.append(PostCheck(path, path.stem, "failed", error=error))
    published: dict[str, tuple[Run, Path]] = {}
    to_run: list[Post] = []
    for post in read.posts:
        folder = store.published_folder(post.slug)
        try:
            run = cache.read_run(folder)
        except CacheError:
            report.posts.append(PostCheck(post.path, post.slug, "new", reason="no published run in site/"))
            continue
        stale = cache.stale_reason(post, run, config.root, store.hashes)
        if stale is not None:
            report.posts.append(PostCheck(post.path, post.slug, "stale",
                                          reason=f"site/ publishes an older run ({stale}); run labbook build"))
            continue
        published[post.slug] = (run, folder)
        to_run.append(post)
    seed_list = list(range(seeds)) if seeds > 1 else []
    jobs = _jobs(to_run, seed_list, config, store)
    reporter.started(to_run, len(jobs))
    results = _execute(jobs, config, store, reporter)
    work = diff_dir or config.cache / "check"
    for post in to_run:
        result = _judge(post, published[post.slug], results, seed_list, work / post.slug)
        report.posts.append(result)
        reporter.checked(result)
    if record:
        _record(config, report)
    report.posts.sort(key=lambda p: str(p.path))
    return report


def _jobs(posts: Sequence[Post], seeds: Sequence[int], config: Config, store: cache.Store) -> list[executor.Job]:
    from .jobs import job_for

    variants = []
    for post in posts:
        variants.append(post)
        variants += [with_seed(post, s) for s in seeds if s != post.settings.seed]
    return [job_for(post, config, store) for post in variants]


def _execute(jobs: Sequence[executor.Job], config: Config, store: cache.Store,
             reporter: Any) -> dict[tuple[str, int], executor.Done]:
    results: dict[tuple[str, int], executor.Done] = {}
    if not jobs:
        return results
    with executor.open_dispatcher(config.workers, config.scheduler) as dispatcher:
        for done in dispatcher.run(jobs, progress=reporter.cell):
            reporter.executed(done.post, done.seconds)
            done = executor.localized(done, store.new_folder)
            results[(done.post.slug, done.post.settings.seed)] = done
    return results


def _judge(post: Post, published: tuple[Run, Path], results: Mapping[tuple[str, int], executor.Done],
           seeds: Sequence[int], work: Path) -> PostCheck:
    run, folder = published
    done = results.get((post.slug, post.settings.seed))
    spread = None
    if seeds:
        ok = {s: (results[(post.slug, s)].run, Path(results[(post.slug, s)].folder)) for s in seeds
              if (post.slug, s) in results and results[(post.slug, s)].run is not None}
        spread = seed_spread(ok, [s for s in seeds if s not in ok])  # type: ignore[arg-type]
    if done is None or done.run is None:
        error = done.error if done else LabbookError("the run was lost")
        return PostCheck(post.path, post.slug, "failed", error=error, seeds=spread, published_dir=str(folder))
    shutil.rmtree(work, ignore_errors=True)
    differences, claims = compare_runs(post, run, folder, done.run, Path(done.folder), work / "diffs")
    return PostCheck(post.path, post.slug, _verdict(differences, claims), tuple(differences), tuple(claims),
                     seeds=spread, seconds=done.seconds, published_dir=str(folder), new_dir=done.folder)


def _record(config: Config, report: CheckReport) -> None:
    """Keep the date and result of this check in each published run.json."""
    from .lock import held

    today = dt.date.today().isoformat()
    with held(config):
        for result in report.posts:
            if not result.published_dir or result.verdict in ("new", "stale"):
                continue
            folder = Path(result.published_dir)
            try:
                run = cache.read_run(folder)
            except CacheError:
                continue
            entry: dict[str, Any] = {"date": today, "verdict": result.verdict,
                                     "differences": [d.reason for d in result.differences][:20]}
            if result.seeds is not None:
                entry["seeds"] = _seeds_record(result.seeds, today)
            elif run.check and "seeds" in run.check:  # a check without --seeds keeps the last spread seen
                entry["seeds"] = run.check["seeds"]
            write_json_atomic(folder / cache.RUN_FILE, replace(run, check=entry).to_json())


def _seeds_record(spread: SeedSpread, date: str) -> dict[str, Any]:
    return {
        "n": spread.seeds,
        "date": date,
        "claims": {claim: f"{held}/{total}" for claim, (held, total) in spread.claims.items()},
        "series": [{k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v) for k, v in s.items()}
                   for s in spread.series[:50]],
        "failed": list(spread.failed),
    }


# --- reports for CI --------------------------------------------------------------------------------


def write_junit(report: CheckReport, path: Path) -> None:
    """One test case per post: failures for drift and broken claims, errors for failed runs."""
    import xml.etree.ElementTree as ET

    suite = ET.Element("testsuite", name="labbook check", tests=str(len(report.posts)),
                       failures=str(sum(p.verdict in ("drifted", "claim broken", "stale", "new") for p in report.posts)),
                       errors=str(sum(p.verdict == "failed" for p in report.posts)))
    for result in report.posts:
        case = ET.SubElement(suite, "testcase", classname="labbook.check", name=str(result.path),
                             time=f"{result.seconds:.3f}")
        if result.verdict == "failed":
            error = ET.SubElement(case, "error", message=str(result.error).splitlines()[0] if result.error else "failed")
            error.text = getattr(result.error, "traceback", "") or str(result.error)
        elif not result.ok:
            failure = ET.SubElement(case, "failure", message=f"{result.verdict}: {_summary(result)}")
            failure.text = "\n".join(details(result))
    path.parent.mkdir(parents=True, exist_ok=True)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def write_html_report(report: CheckReport, folder: Path, config: Config) -> Path:
    """Published and new figures side by side, with the diff image, for every post."""
    from .theme import Theme

    folder.mkdir(parents=True, exist_ok=True)
    posts = []
    for result in report.posts:
        figures = []
        for difference in result.differences:
            if difference.kind != "figure":
                continue
            target = folder / result.slug
            target.mkdir(parents=True, exist_ok=True)
            stem = Path(difference.name).name
            pair = {"name": difference.name, "reason": difference.reason}
            for role, source_dir in (("published", result.published_dir), ("new", result.new_dir)):
                source_file = Path(source_dir) / difference.name
                if source_dir and source_file.is_file():
                    shutil.copyfile(source_file, target / f"{role}-{stem}")
                    pair[role] = f"{result.slug}/{role}-{stem}"
            if difference.diff_image and Path(difference.diff_image).is_file():
                shutil.copyfile(difference.diff_image, target / f"diff-{stem}")
                pair["diff"] = f"{result.slug}/diff-{stem}"
            figures.append(pair)
        posts.append({"path": str(result.path), "verdict": result.verdict, "details": details(result),
                      "figures": figures})
    theme = Theme(config.templates)
    css = (theme.folder / "labbook.css").read_text(encoding="utf-8")
    html = theme.render("check-report.html", posts=posts, css=css,
                                          date=dt.date.today().isoformat())
    index = folder / "index.html"
    index.write_text(html, encoding="utf-8")
    return index


def _summary(result: PostCheck) -> str:
    if result.reason:
        return result.reason
    broken = [c.claim for c in result.claims if not c.now]
    if broken:
        return "claim broken: " + "; ".join(broken)
    return "; ".join(f"{d.name}: {d.reason}" for d in result.differences[:3])


def details(result: PostCheck) -> list[str]:
    lines = [f"claim {'holds' if c.now else 'broken'}: {c.claim}" + (f" ({c.message})" if c.message else "")
             for c in result.claims]
    lines += [f"{d.name}: {d.reason}" + (f" [{d.tolerance}]" if d.tolerance else "") for d in result.differences]
    if result.reason:
        lines.append(result.reason)
    if result.error is not None:
        lines.append(str(result.error))
    if result.seeds is not None:
        lines += _seed_lines(result.seeds)
    return lines


def _seed_lines(spread: SeedSpread) -> list[str]:
    lines = [f"seeds: {spread.seeds}" + (f" ({len(spread.failed)} failed: {list(spread.failed)})" if spread.failed else "")]
    lines += [f"  claim held on {held}/{total} seeds: {claim}" for claim, (held, total) in spread.claims.items()]
    for series in spread.series[:30]:
        lines.append(f"  {series['name']}: mean {series['mean']:.6g}, std across seeds {series['std']:.3g}, "
                     f"min {series['min']:.6g}, max {series['max']:.6g}")
    return lines


def refresh_pages(config: Config, report: CheckReport) -> Any:
    """Show the check on the post pages: a build that executes nothing (their runs are published)."""
    from .build import build

    paths = [config.root / p.path for p in report.posts if p.published_dir and p.verdict not in ("new", "stale")]
    return build(config, only=paths) if paths else None
