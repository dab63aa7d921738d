"""Gather: a sweep post through the build: its points (cached or run), its table, its gather.

in → out: a sweep Post and the cache → the jobs of the points that must run, then (as their
Dones arrive) the gather's job, and finally a `Gathered`: one folder laid out as site/ publishes
the post (the gather's run.json and artifacts; sweep.json, sweep.csv, sweep.parquet; each
point's run under points/<folder>/), which render turns into the page.
Owns where a point's run is published (assets/posts/<slug>/points/<folder>/), the gather's key
and what its working directory holds, the table made from the points' observations, and which
modules a point's kernel server preloads. Executes nothing itself (the dispatcher does) and
never renders.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Literal, NamedTuple

from . import cache, dispatch, sweep
from .config import Config
from .errors import ExecutionError, LabbookError
from .files import link_files
from .jobs import job_for
from .model import Point, Post, Run
from .observations import OBSERVATIONS

__all__ = ["SweepPlan", "Gathered", "SweepCounts", "plan", "preload_modules", "point_error", "TABLE_FILES",
           "stale_points", "SweepState"]

TABLE_FILES = (sweep.TABLE_JSON, sweep.TABLE_CSV, sweep.TABLE_PARQUET)
"""The table, beside the gather's run.json: exact types (read by `labbook.sweep_table()`), CSV
for everyone, Parquet when pyarrow is installed."""
NOT_PRELOADED = frozenset({"matplotlib", "pylab", "seaborn", "IPython", "ipykernel", "ipywidgets", "labbook",
                           "__future__", "__main__"})
"""Never imported by a kernel server: pyplot (and what imports it) picks its backend as the kernel
starts; IPython and labbook are the kernel's own."""
TORCH_OPTIMIZERS = "torch._dynamo"
"""What a server preloads for points that use torch's optimizers: the first one made in a process
imports it (with sympy, ~800 modules: ~2 s), and a server that has it makes one, once."""
PLOTTING = frozenset({"matplotlib", "pylab", "seaborn"})
MATPLOTLIB_BASE = ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg")
"""What a server preloads for points that plot, instead of pyplot: matplotlib with no backend
chosen (its rc files and font cache read, its figure and Agg modules). A fresh kernel's `import
matplotlib.pyplot` costs ~0.75 s, ~0.05 s with these; pyplot itself still loads in the kernel,
where it picks the inline backend and hooks it into the kernel's shell."""

PointStatus = Literal["cached", "executed", "failed"]
InlineAdder = Callable[[Post, cache.Lookup, cache.Store], cache.Lookup]


@dataclass(frozen=True, slots=True)
class PointOutcome:
    """One point of this build: its run and folder (cached or just executed), or its error."""

    point: Point
    post: Post
    """The point as it runs (sweep.point_post): its key is the point's."""
    status: PointStatus
    run: Run | None = None
    folder: Path | None = None
    error: LabbookError | None = None
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class SweepCounts:
    """What the build did with one sweep post's points: for the summary line and the benchmark."""

    path: PurePosixPath
    points: int
    executed: int = 0
    """Points run in this build, failed ones included."""
    cached: int = 0
    failed: tuple[LabbookError, ...] = ()
    """Each failed point's error, its message ending with `(point wd=0.1,seed=2)`."""
    gathered: bool = False
    """The gather executed in this build (False: cached, or no gather part)."""


@dataclass(frozen=True, slots=True)
class Gathered:
    """A sweep post ready to render: `folder` holds everything its page publishes."""

    post: Post
    run: Run
    """The gather's run (run.json at the top of `folder`); its inputs include every point's."""
    folder: Path
    status: Literal["executed", "cached"]
    seconds: float
    """The executions of this build, added up: the points' and the gather's."""
    counts: SweepCounts


def point_error(error: LabbookError, point: Point) -> LabbookError:
    """The error of a point, saying which point: `posts/x.md:41: … (point wd=0.1,seed=2)`."""
    return type(error)(f"{error.message} (point {point.id})", path=error.path, line=error.line, hint=error.hint,
                       **error.details)


# --- which modules a point's kernel server imports once -----------------------------------------------


def preload_modules(post: Post, root: Path, *, gather: bool = False) -> tuple[str, ...]:
    """The installed, non-standard modules that the per-point cells (or with `gather`, the
    gather's) import at their top level (`import numpy as np`, `from torch import nn`): every
    point's kernel imports them, so its kernel server imports them once (a fresh kernel pays
    0.13 s for numpy, 2 s for torch); the gather's server imports its own while the points run.

    Never the project's own modules (they are traced inputs: a point must import them itself),
    but what they import at their top level, as the cells do (a post's `import model` whose
    model.py imports torch); nor pyplot and friends (see NOT_PRELOADED: cells that plot get
    MATPLOTLIB_BASE instead). An import inside an `if` or a `try` is left to the kernel.
    IPython's magic and shell lines (`%matplotlib inline`, `!pip list`) are read as `pass`; a
    cell that still does not parse as Python (a `%%bash` cell) adds nothing.
    """
    split = sweep.split_cells(post.cells, swept=True, path=str(post.path))
    trees = []
    for cell in split.gather_cells if gather else split.point_cells:
        with contextlib.suppress(SyntaxError):
            trees.append(ast.parse(_without_magics(cell.source)))
    folders = [root / post.path.parent, root]
    trees += _project_module_trees(_imported(trees), folders)
    names = _imported(trees)
    tops = {name.split(".")[0] for name in names}
    plotting = MATPLOTLIB_BASE if tops & PLOTTING and _installed("matplotlib", folders) else ()
    installed = [name for name in names if name.split(".")[0] not in NOT_PRELOADED
                 and _installed(name.split(".")[0], folders)]
    torch = any(name.split(".")[0] == "torch" for name in installed)
    optimizing = (TORCH_OPTIMIZERS,) if torch and _use_optimizers(trees, names) else ()
    return tuple(dict.fromkeys([*installed, *plotting, *optimizing]))


def _imported(trees: Sequence[ast.Module]) -> list[str]:
    """The absolute module names the trees import at their top level."""
    names: list[str] = []
    for node in (node for tree in trees for node in tree.body):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


PROJECT_MODULES_READ = 50
"""The most project modules whose imports count (a folder of scripts is not a project's model)."""


def _project_module_trees(names: Sequence[str], folders: Sequence[Path]) -> list[ast.Module]:
    """The parsed project modules these names import, and the ones those import in turn: their
    files under the post's folder or the project root (a package's __init__.py too)."""
    trees: list[ast.Module] = []
    seen: set[Path] = set()
    pending = list(names)
    while pending and len(seen) < PROJECT_MODULES_READ:
        for path in _project_files(pending.pop(0), folders):
            if path in seen:
                continue
            seen.add(path)
            with contextlib.suppress(OSError, UnicodeDecodeError, SyntaxError, ValueError):
                tree = ast.parse(path.read_text(encoding="utf-8"))
                trees.append(tree)
                pending += _imported([tree])
    return trees


def _project_files(name: str, folders: Sequence[Path]) -> list[Path]:
    """`a.b` as the project's files: a/__init__.py, then a/b.py or a/b/__init__.py, in the first
    folder that has `a`; none for an installed or standard module."""
    parts = name.split(".")
    for folder in folders:
        if (folder / f"{parts[0]}.py").is_file() or (folder / parts[0]).is_dir():
            found = [folder.joinpath(*parts[:end], "__init__.py") for end in range(1, len(parts) + 1)]
            found.append(folder.joinpath(*parts[:-1], f"{parts[-1]}.py"))
            return [path for path in found if path.is_file()]
    return []


def _without_magics(source: str) -> str:
    """A cell's code with each line that IPython runs as a magic or a shell command made `pass`
    (its indent kept): a plotting post's `%matplotlib inline` hid every import after it."""
    lines = []
    for line in source.splitlines():
        code = line.lstrip()
        lines.append(line[: len(line) - len(code)] + "pass" if code.startswith(("%", "!")) else line)
    return "\n".join(lines)


def _use_optimizers(trees: Sequence[ast.Module], names: list[str]) -> bool:
    """Whether the cells use torch's optimizers: they import `torch.optim`, or name `optim`."""
    if any(name == "torch.optim" or name.startswith("torch.optim.") for name in names):
        return True
    return any((isinstance(node, ast.Attribute) and node.attr == "optim")
               or (isinstance(node, ast.alias) and node.name == "optim")
               for tree in trees for node in ast.walk(tree))


def _installed(top: str, project_folders: Sequence[Path]) -> bool:
    """An installed module, not the standard library's nor one of the project's own."""
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return False
    if any((folder / f"{top}.py").exists() or (folder / top).is_dir() for folder in project_folders):
        return False
    try:
        spec = importlib.util.find_spec(top)  # a top-level name: nothing is imported to find it
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin not in (None, "built-in", "frozen")


# --- a sweep post in one build --------------------------------------------------------------------------


class SweepPlan:
    """One sweep post in one build: its points looked up, then completed as their Dones arrive,
    then its gather, then the folder to render. Not thread-safe: the build's loop drives it."""

    def __init__(self, post: Post, config: Config, store: cache.Store, *, force: bool = False,
                 inline_added: InlineAdder | None = None, workers: int = 1) -> None:
        assert post.sweep is not None
        self.post, self.config, self.store, self.force = post, config, store, force
        self.inline_added = inline_added
        self.sweep = post.sweep
        self.split = sweep.split_cells(post.cells, swept=True, path=str(post.path))
        self.published = store.published_folder(post.slug)
        self.outcomes: dict[int, PointOutcome] = {}
        self.progress = sweep.Progress(len(self.sweep.points), workers=workers)
        self.jobs: list[dispatch.Job] = []
        """The jobs to submit first: missing points (or, when every point is cached, the gather)."""
        self.notes: list[str] = []
        """Corrupt cache entries met while looking up: warnings."""
        self.result: Gathered | LabbookError | None = None
        """Set once the sweep is complete: its folder to render, or why the gather failed."""
        self._by_key: dict[str, Point] = {}
        self._gather_job: dispatch.Job | None = None
        self._gather_preload: tuple[str, ...] = ()
        self._gather_post: Post | None = None
        self._gather_executed = False
        self._table = sweep.Table((), ())
        self._problems: list[str] = []
        self._look_up()

    # --- points ---

    def _look_up(self) -> None:
        preload = preload_modules(self.post, self.config.root)
        self._gather_preload = preload_modules(self.post, self.config.root, gather=True)
        # on a cluster, every worker would start the gather's server for the one that runs it
        gather_preload = () if self.config.scheduler else self._gather_preload
        defaults = self.post.settings.params
        cached = 0
        for point in self.sweep.points:
            post = sweep.point_post(self.post, self.split, point, defaults)
            published = self.store.published_point(self.post.slug, point.folder)
            found = (cache.Lookup(None, None, "--force") if self.force
                     else self.store.lookup(post, published=published))
            self.notes += found.notes
            if found.run is not None and found.folder is not None:
                self.outcomes[point.index] = PointOutcome(point, post, "cached", found.run, found.folder)
                cached += 1
                continue
            self._by_key[post.key] = point
            job = job_for(post, self.config, self.store, published=published)
            self.jobs.append(replace(job, preload=preload, gather_preload=gather_preload,
                                     label=f"{self.post.slug} {point.id}", group=self.post.path.as_posix()))
        self.progress = self.progress.reused(cached)
        if not self.jobs:
            self._points_done()

    @property
    def gather_ahead(self) -> dispatch.Job | None:
        """The gather's job as far as its kernel goes, while points are still to run: a worker
        with nothing left to do starts that kernel before the last point is in, where it would
        otherwise fork, boot and connect after it (~0.1-0.25 s at the end of a sweep's build).
        None when no point runs here, or the post has no gather part."""
        if not self.split.gather_cells or self._gather_post is not None or self.config.scheduler:
            return None
        return self._as_gather(dispatch.Job(self.post, str(self.config.root)))

    def _as_gather(self, job: dispatch.Job) -> dispatch.Job:
        """The job with the gather's kernel and label: its own preloads, so it forks from the
        server the points started, if they did. The job announced ahead and the one run must
        agree here, or the kernel started ahead is never taken."""
        modules = self._gather_preload
        return replace(job, preload=modules, gather_preload=modules, label=f"{self.post.slug} gather")

    def owns(self, done: dispatch.Done) -> bool:
        """The Done is one of this sweep's points, or its gather."""
        if done.post.path != self.post.path:
            return False
        return done.post.key in self._by_key or self._is_gather(done)

    def _is_gather(self, done: dispatch.Done) -> bool:
        return self._gather_post is not None and done.post.key == self._gather_post.key

    def take(self, done: dispatch.Done) -> dispatch.Job | None:
        """One of this sweep's executions finished: keep it; the gather's job when it was the last point."""
        if self._is_gather(done) and done.post.key not in self._by_key:
            self._gathered(done)
            return None
        point = self._by_key[done.post.key]
        _import_pyarrow_meanwhile()  # from the first point back: labbook's process idles while the next ones run
        self.progress = self.progress.finished(done.seconds, ok=done.run is not None)
        if done.run is None:
            error = done.error or LabbookError("the point did not run", path=str(self.post.path))
            self.outcomes[point.index] = PointOutcome(point, done.post, "failed", error=error, seconds=done.seconds)
        else:
            folder = self.store.put(done.run, dispatch.local_folder(done, self.store.new_folder))
            self.outcomes[point.index] = PointOutcome(point, done.post, "executed", done.run, folder,
                                                      seconds=done.seconds)
        if len(self.outcomes) == len(self.sweep.points):
            self._points_done()
            return self._gather_job
        return None

    def label(self, done: dispatch.Done) -> str:
        """What progress calls this execution: `slug wd=0.5,seed=0`, or `slug gather`."""
        point = self._by_key.get(done.post.key)
        return f"{self.post.slug} {point.id if point is not None else 'gather'}"

    @property
    def warnings(self) -> list[str]:
        """The table's problems (unreadable observations, clashing names)."""
        return list(self._problems)

    # --- the gather ---

    def _points_done(self) -> None:
        """Every point has an outcome: the table; then the gather, from the cache or as a job."""
        if all(o.status == "failed" for o in self.outcomes.values()):
            self.result = _nothing_succeeded(self.post, len(self.outcomes))
            return
        results = [self._result(o) for o in self._ordered()]
        table = sweep.tidy_table(self.sweep, results, seed=self.post.settings.seed)
        self._problems = [*table.problems, *(p for r in results for p in r.problems)]
        self._table = table
        keyed = [(o.point, o.post.key, o.status != "failed") for o in self._ordered()]
        self._gather_post = gather = sweep.gather_post(self.post, self.split, keyed)
        inputs = self._inputs()
        if not gather.cells:
            self._finish(_nothing_gathered(gather, inputs, self._ordered()), None)
            return
        found = cache.Lookup(None, None, "--force") if self.force else self.store.lookup(gather)
        self.notes += found.notes
        if found.run is not None and found.folder is not None:
            if self.inline_added is not None:
                found = self.inline_added(gather, found, self.store)
            self._finish(found.run, found.folder)  # type: ignore[arg-type]
            return
        job = job_for(gather, self.config, self.store)
        placed = self._placed(table, remote=bool(self.config.scheduler))
        self._gather_job = replace(self._as_gather(job), placed=placed)
        if not self.jobs:  # every point was cached: the gather is the first job
            self.jobs.append(self._gather_job)

    def _gathered(self, done: dispatch.Done) -> None:
        if done.run is None:
            self.result = done.error or LabbookError("the gather did not run", path=str(self.post.path))
            return
        self._gather_executed = True
        run = replace(done.run, inputs=self._inputs(done.run.inputs))
        self._finish(run, self.store.put(run, dispatch.local_folder(done, self.store.new_folder)), seconds=done.seconds)

    def _finish(self, run: Run, folder: Path | None, seconds: float = 0.0) -> None:
        """The sweep is complete; `seconds`: the gather's execution, if it ran in this build."""
        try:
            layout = self._layout(run, folder)
        except OSError as exc:
            self.result = LabbookError(f"could not lay out the sweep's files: {exc}", path=str(self.post.path))
            return
        executed = self._gather_executed or any(o.status != "cached" for o in self.outcomes.values())
        seconds += sum(o.seconds for o in self.outcomes.values() if o.status != "cached")
        self.result = Gathered(self.post, run, layout, "executed" if executed else "cached", seconds, self.counts)

    @property
    def counts(self) -> SweepCounts:
        outcomes = list(self.outcomes.values())
        return SweepCounts(
            self.post.path, len(self.sweep.points),
            executed=sum(o.status != "cached" for o in outcomes), cached=sum(o.status == "cached" for o in outcomes),
            failed=tuple(point_error(o.error, o.point) for o in self._ordered() if o.error is not None),
            gathered=self._gather_executed,
        )

    def _ordered(self) -> list[PointOutcome]:
        return [self.outcomes[i] for i in sorted(self.outcomes)]

    def _result(self, outcome: PointOutcome) -> sweep.PointResult:
        if outcome.run is None or outcome.folder is None:
            return sweep.point_result(outcome.point, error=outcome.error, seconds=outcome.seconds)
        observed = outcome.folder / "data" / OBSERVATIONS
        text = observed.read_bytes() if observed.is_file() else b""
        return sweep.point_result(outcome.point, observations=text, seconds=outcome.run.seconds)

    def _inputs(self, own: Mapping[str, str] | None = None) -> dict[str, str]:
        """The gather's inputs: its own, and every point's (a point's changed input makes the gather stale)."""
        merged: dict[str, str] = {}
        for outcome in self._ordered():
            if outcome.run is not None:
                merged.update(outcome.run.inputs)
        merged.update(own or self.post.inputs)
        return dict(sorted(merged.items()))

    def _placed(self, table: sweep.Table, *, remote: bool) -> dict[str, bytes | str]:
        """The gather's working directory: the table, and points/<folder>/ with each successful
        point's data files (its data/ folder). Bytes for a remote worker; paths to copy here."""
        placed: dict[str, bytes | str] = dict(_table_files(table))
        for outcome in self._ordered():
            if outcome.run is None or outcome.folder is None:
                continue
            for artifact in outcome.run.artifacts:
                if artifact.kind == "data":
                    source = outcome.folder / artifact.name
                    name = f"points/{outcome.point.folder}/{artifact.name.removeprefix('data/')}"
                    placed[name] = source.read_bytes() if remote else str(source)
        return placed

    def _layout(self, run: Run, folder: Path | None) -> Path:
        """The folder to render and publish: site/'s own when every part of it is already
        there (a prose edit); else a new one, linked together from the cache."""
        if self._all_published(run, folder):
            return self.published
        layout = self.store.new_folder()
        if folder is not None:
            _link_run(run, folder, layout)
        (layout / cache.RUN_FILE).write_bytes(_run_json(run))
        for name, data in _table_files(self._table).items():
            (layout / name).write_bytes(data)
        for outcome in self._ordered():
            if outcome.run is not None and outcome.folder is not None:
                _link_run(outcome.run, outcome.folder, layout / "points" / outcome.point.folder)
        return layout

    def _all_published(self, run: Run, folder: Path | None) -> bool:
        if folder != self.published and folder is not None:
            return False
        if folder is None and not _same_run(self.published, run):
            return False
        if any(o.folder != self.store.published_point(self.post.slug, o.point.folder) for o in self.outcomes.values()):
            return False
        return all((self.published / name).is_file() and (self.published / name).read_bytes() == data
                   for name, data in _table_files(self._table).items())


@functools.cache
def _import_pyarrow_meanwhile() -> None:
    """Write a one-cell Parquet table on a thread while the points run, once a process: pyarrow's
    import (~0.2-0.5 s: its CSV reader and Parquet writer) would otherwise come after the last
    point and before the gather starts. Nothing if pyarrow is absent."""
    import importlib.util
    import threading

    if "pyarrow.parquet" in sys.modules or importlib.util.find_spec("pyarrow") is None:
        return

    def load() -> None:
        with contextlib.suppress(Exception):  # the table's own write reports a broken pyarrow
            sweep.Table((sweep.Column("warm", "axis", "float"),), ((0.0,),)).to_parquet()

    threading.Thread(target=load, daemon=True, name="labbook-pyarrow").start()


def _table_files(table: sweep.Table) -> dict[str, bytes]:
    files = {sweep.TABLE_JSON: table.to_json(), sweep.TABLE_CSV: table.to_csv()}
    parquet = table.to_parquet()
    if parquet is not None:
        files[sweep.TABLE_PARQUET] = parquet
    return files


def _nothing_succeeded(post: Post, points: int) -> ExecutionError:
    """A sweep whose every point failed has no result: it fails as a post whose cell raised does,
    and its page keeps its last good version, where a table of failures alone would replace it."""
    return ExecutionError(
        f"every point of the sweep failed ({points} of {points}); the gather did not run",
        path=str(post.path), hint="each point's own error is listed with its values; fix the cells before the gather")


def _nothing_gathered(gather: Post, inputs: Mapping[str, str], outcomes: Sequence[PointOutcome]) -> Run:
    """The run of a sweep without a gather part: no cell, dated by its last point."""
    started = max((o.run.started for o in outcomes if o.run is not None), default="")
    return Run(key=gather.key, cells=(), artifacts=(), inputs=dict(inputs), basis=gather.basis,
               environment={}, started=started, seconds=0.0, seed=gather.settings.seed,
               params=dict(gather.settings.params))


def _run_json(run: Run) -> bytes:
    from .files import dump_json

    return dump_json(run.to_json())


def _same_run(folder: Path, run: Run) -> bool:
    with contextlib.suppress(LabbookError):
        return cache.read_run(folder) == run
    return False


def _link_run(run: Run, source: Path, target: Path) -> None:
    """A run's record and files in `target`, as hard links where the file system allows."""
    from . import _inline

    target.mkdir(parents=True, exist_ok=True)
    link_files(sorted({a.name for a in run.artifacts} | {cache.RUN_FILE, _inline.SNAPSHOT}), source, target)


def plan(posts: Iterable[Post], config: Config, store: cache.Store, *, forced: Callable[[Post], bool],
         inline_added: InlineAdder | None = None) -> list[SweepPlan]:
    """Each sweep post's plan: its points looked up in site/ and the cache."""
    return [SweepPlan(post, config, store, force=forced(post), inline_added=inline_added, workers=config.workers)
            for post in posts]


class SweepState(NamedTuple):
    """What the next build would do with a sweep post, for `labbook status` and `labbook check`."""

    missing: int
    """Points that would run because no run of theirs holds."""
    total: int
    reason: str
    """Why the first missing point (or, with none, the gather) would run; '' when nothing would."""
    failing: tuple[str, ...] = ()
    """Points that failed in the build site/ publishes, unchanged since: the published sweep is
    still this one (its gather ran on them failing), and the next build tries them again."""


def stale_points(post: Post, store: cache.Store, *, published_only: bool = False) -> SweepState:
    """The sweep's points looked up without running anything. When every point is cached, or
    failed as site/ publishes it, `reason` says why the gather would run ('' when it would not).
    `published_only`: what site/ publishes counts, the cache does not (`labbook check`)."""
    assert post.sweep is not None
    split = sweep.split_cells(post.cells, swept=True, path=str(post.path))
    total = len(post.sweep.points)
    unrun: dict[int, str] = {}  # point index -> why it would run
    keys = []
    for point in post.sweep.points:
        point_post = sweep.point_post(post, split, point, post.settings.params)
        found = store.lookup(point_post, published=store.published_point(post.slug, point.folder))
        keys.append((point, point_post.key))
        if found.run is None or (published_only and found.reason != "published"):
            unrun[point.index] = found.reason if found.run is None else "not published"
    keyed = [(point, key, point.index not in unrun) for point, key in keys]  # the unrun ones as failed
    if unrun and not _failed_as_published(post, split, store, keyed):
        first = next(p for p in post.sweep.points if p.index in unrun)
        return SweepState(len(unrun), total, f"point {first.id}: {unrun[first.index]}")
    failed = tuple(p.id for p in post.sweep.points if p.index in unrun)
    gathered = sweep.gather_post(post, split, keyed)
    if not gathered.cells:
        published = store.published_folder(post.slug)
        with contextlib.suppress(LabbookError):
            if cache.read_run(published).key == gathered.key or not published_only:
                return SweepState(0, total, "", failed)
        return SweepState(0, total, "the table is not published", failed)
    found = store.lookup(gathered)
    if found.run is None or (published_only and found.reason != "published"):
        return SweepState(0, total, f"the gather: {found.reason if found.run is None else 'not published'}", failed)
    return SweepState(0, total, "", failed)


def _failed_as_published(post: Post, split: sweep.Split, store: cache.Store,
                         keyed: Sequence[tuple[Point, str, bool]]) -> bool:
    """True when the points keyed as failed (they have no run) are exactly those the published
    sweep holds as failed, with the code and values they failed with: the published gather ran
    on a table keyed on each point's key and success, so its key matches only then. (A failed
    point leaves no run to find; the build that published the sweep tried it, and the next build
    tries it again.) A sweep whose every point failed publishes no gather."""
    if all(ok for *_, ok in keyed) or not any(ok for *_, ok in keyed):
        return False
    try:
        published = cache.read_run(store.published_folder(post.slug))
    except LabbookError:
        return False
    return published.key == sweep.gather_post(post, split, keyed).key
