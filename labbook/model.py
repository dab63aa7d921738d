"""The plain data passed between the stages: frozen, picklable, JSON round-trippable.

`Run` holds no prose, title or caption: render joins a fresh `Post` with a possibly
cached `Run` by `Cell.index`, which is why a prose edit never re-executes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import PurePosixPath
from typing import Any, Literal

from .published import Notice, Outcome, Summary

__all__ = [
    "STATUSES",
    "RUN_SCHEMA",
    "CellOptions",
    "Cell",
    "Prose",
    "Inline",
    "FrontMatter",
    "SUMMARY_STATISTICS",
    "SummaryTolerance",
    "ColumnTolerance",
    "FileTolerance",
    "Tolerance",
    "BlasLibrary",
    "Platform",
    "RunSettings",
    "Post",
    "Artifact",
    "Verdict",
    "CellResult",
    "Run",
    "Page",
    "Outcome",
    "Summary",
    "Notice",
    "replace",
    "Scalar",
    "Point",
    "Sweep",
    "SEED",
    "show_value",
]

STATUSES = ("partial", "open", "supported", "refuted")
RUN_SCHEMA = 1

ArtifactKind = Literal["figure", "data", "notebook"]


@dataclass(frozen=True, slots=True)
class CellOptions:
    """The `#| key: value` lines at the top of a code cell."""

    label: str | None = None
    """Names the cell's figures (`fig-curves.png`) and anchors it on the page."""
    caption: str | None = None
    echo: bool = True
    """Show the code on the page."""
    output: bool = True
    """Show the outputs on the page (figures are still captured and published)."""
    timeout: float | None = None
    """Seconds for this cell; overrides `labbook.timeout`."""
    claim: str | None = None
    """The observation, in words, that this cell's assertions test."""
    gather: bool | None = None
    """`#| gather: true`: in a sweep post, this cell and every one after it run once, after all
    the points (sweep.py); None when the cell does not say."""
    code_fold: bool | None = None
    """`#| code-fold:` true folds the code, false keeps it open; None folds it past a few lines."""


@dataclass(frozen=True, slots=True)
class Cell:
    """A ```python fence of the post."""

    index: int
    """Position among code cells: the join key between Post and Run."""
    text: str
    """The cell as written, option lines included: what the kernel runs."""
    source: str
    """The code without its `#|` option lines: what the page shows."""
    line: int
    """1-based line in the post file of the cell's first line (the one after the fence)."""
    options: CellOptions = CellOptions()


@dataclass(frozen=True, slots=True)
class Prose:
    """Markdown between code cells."""

    text: str
    line: int
    """1-based line in the post file where this prose starts."""


@dataclass(frozen=True, slots=True)
class Inline:
    """A computed value in prose: `{python} expression` in inline code (Quarto's syntax)."""

    expression: str
    line: int
    """1-based line in the post file."""


@dataclass(frozen=True, slots=True)
class FrontMatter:
    """What the post says of itself: the phenomenology index is built from this."""

    title: str
    date: dt.date
    description: str = ""
    tags: tuple[str, ...] = ()
    status: str | None = None
    """partial | open | supported | refuted; None when the author gives none (no badge)."""
    models: tuple[str, ...] = ()
    data: tuple[str, ...] = ()
    phenomena: tuple[str, ...] = ()
    observables: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    published: bool = True
    """`published: false`: a draft, built by neither builder."""
    redirect_from: tuple[str, ...] = ()
    """Old URL paths of the post (/blog/2019/old-name/): each gets a page that sends readers on."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Keys labbook does not know, passed to the Jekyll front matter as they are."""


SUMMARY_STATISTICS = ("mean", "std", "min", "max", "median")
"""Statistics a summary tolerance may compare, besides quantiles written q0 … q100 (q10, q50, q90)."""


@dataclass(frozen=True, slots=True)
class SummaryTolerance:
    """Compare statistics of a column instead of its values row by row: for what is chaotic.

    Two runs of a chaotic trajectory on two CPUs part ways after a few hundred steps, yet their
    mean and quantiles agree: that is what a reader can reproduce.
    """

    statistics: tuple[str, ...] = ("mean",)
    """"mean", "std", "min", "max", "median", or a quantile "q10" (percent)."""
    rtol: float | None = None
    """None: the column's rtol."""
    atol: float | None = None
    """None: the column's atol."""


@dataclass(frozen=True, slots=True)
class ColumnTolerance:
    """How one column of a table (or one array of an .npz) is compared; None: as its file says."""

    rtol: float | None = None
    atol: float | None = None
    rows: tuple[int, int | None] | None = None
    """Only rows [start, stop) are compared value by value (Python slice rules; stop None: to the
    end); `rows: 1000` in the front matter is (0, 1000). None: every row."""
    summary: SummaryTolerance | None = None
    """The rows that `rows` leaves out (every row when `rows` is None) compared by statistics."""


@dataclass(frozen=True, slots=True)
class FileTolerance:
    """The tolerance of one artifact, overriding the post's; None: as the post says."""

    rtol: float | None = None
    atol: float | None = None
    figure_rms: float | None = None
    rows: tuple[int, int | None] | None = None
    """For every column of the file (see ColumnTolerance.rows)."""
    summary: SummaryTolerance | None = None
    """For every column of the file (see ColumnTolerance.summary)."""
    columns: Mapping[str, ColumnTolerance] = field(default_factory=dict)
    """Per column of a CSV/TSV (by header name) or per array of an .npz (by key)."""


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far a re-run may drift from the published run and still reproduce it."""

    rtol: float = 1e-5
    atol: float = 1e-8
    figure_rms: float = 2.0
    """Root-mean-square pixel difference (0-255 scale) allowed between figures."""
    files: Mapping[str, FileTolerance] = field(default_factory=dict)
    """Per-artifact overrides, by file name ("eos_loss.csv"), path ("data/eos_loss.csv") or glob."""

    def file(self, name: str) -> FileTolerance:
        """The override for one artifact ("data/x.csv"): by its path, its name in data/ or
        figures/, then the first glob that matches; an empty one when none does."""
        import fnmatch

        short = name.split("/", 1)[1] if name.startswith(("data/", "figures/")) else name
        for key in (name, short):
            if key in self.files:
                return self.files[key]
        return next((rule for pattern, rule in self.files.items()
                     if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(short, pattern)), FileTolerance())

    def for_file(self, name: str) -> Tolerance:
        """The post's tolerance with the artifact's rtol, atol and figure_rms applied."""
        rule = self.file(name)
        override = {k: v for k in ("rtol", "atol", "figure_rms") if (v := getattr(rule, k)) is not None}
        return replace(self, files={}, **override) if override else self


# --- sweeps: the points of a post's configuration -> observable map (sweep.py parses them) -------

Scalar = bool | int | float | str
SEED = "seed"
_PLAIN_TEXT = re.compile(r'^[^\s,="]+$')


def show_value(value: Scalar) -> str:
    """A value as it appears in a point id: `0.1`, `3`, `true`, `relu`, `"a b"`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return value if _PLAIN_TEXT.match(value) else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Point:
    """One configuration of a sweep."""

    index: int
    """Position in the sweep's order."""
    values: tuple[tuple[str, Scalar], ...]
    """(axis, value) in the sweep's axis order; `seed` among them when the seed is swept."""
    folder: str
    """Its folder under the post's assets (points/<folder>/): `wd-0.5_seed-2` for `wd=0.5,seed=2`
    (letters, digits, '.', '_', '-': safe in every file system and URL, and what
    execute.safe_name keeps), a cleaned id with a short hash for odd values; unique even where
    case is not."""

    @property
    def id(self) -> str:
        """`wd=0.1,seed=2`: what messages, the table and the page call the point."""
        return ",".join(f"{name}={show_value(value)}" for name, value in self.values)

    @property
    def params(self) -> dict[str, Scalar]:
        """The parameters this point sets (the seed is not a parameter)."""
        return {name: value for name, value in self.values if name != SEED}

    @property
    def seed(self) -> int | None:
        """The seed this point sets, or None when the sweep does not vary it."""
        return next((int(v) for n, v in self.values if n == SEED), None)

    def value(self, name: str) -> Scalar:
        return dict(self.values)[name]


@dataclass(frozen=True, slots=True)
class Sweep:
    """The points of a post's sweep, in a fixed order."""

    axes: tuple[str, ...]
    """Every name the sweep varies, in the order written."""
    groups: tuple[tuple[str, ...], ...]
    """Axes that vary together (a zip group), in product order; for the page's 'lr × wd'."""
    points: tuple[Point, ...]
    form: Literal["product", "points"] = "product"
    """'product' (lists and zip groups) or 'points' (an explicit list)."""

    @property
    def grid(self) -> tuple[tuple[str, tuple[Scalar, ...]], ...]:
        """Each axis and the distinct values it takes, in first-seen order: the page's grid."""
        grid = []
        for axis in self.axes:
            seen: dict[Any, Scalar] = {}
            for point in self.points:
                value = point.value(axis)
                seen.setdefault((type(value).__name__, value), value)
            grid.append((axis, tuple(seen.values())))
        return tuple(grid)

    def describe(self) -> str:
        """`wd (3) × seed (3) = 9 points`, `lr+wd (2, zipped) × seed (2) = 4 points`, `5 points`."""
        if self.form == "points":
            return f"{len(self.points)} listed points over {', '.join(self.axes)}"
        sizes = dict(self.grid)
        parts = []
        for group in self.groups:
            if len(group) > 1:
                count = len({tuple(p.value(a) for a in group) for p in self.points})
            else:
                count = len(sizes[group[0]])
            parts.append(f"{'+'.join(group)} ({count}{', zipped' if len(group) > 1 else ''})")
        noun = "point" if len(self.points) == 1 else "points"
        return f"{' × '.join(parts)} = {len(self.points)} {noun}"

    def point(self, point_id: str) -> Point | None:
        return next((p for p in self.points if p.id == point_id), None)


@dataclass(frozen=True, slots=True)
class RunSettings:
    """The post's `labbook:` block: how to execute it."""

    timeout: float = 600.0
    """Seconds per cell."""
    inputs: tuple[str, ...] = ()
    """Globs, relative to the post's folder, whose content is part of the cache key."""
    figure_format: str = "png"
    seed: int = 0
    threads: int = 1
    memory_mb: int = 4096
    """Address-space limit of the kernel; a runaway allocation ends as 'out of memory'."""
    tolerance: Tolerance = Tolerance()
    sanitize: tuple[tuple[str, str], ...] = ()
    """Extra (regex, replacement) pairs applied to text outputs before comparing them."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Parameters the code reads with `labbook.param(name)`: name -> JSON scalar or list."""
    fresh_kernels: bool = False
    """A sweep's points each in a kernel of its own. By default, points that run one after
    another on one worker share a kernel, reset between them (kernel_reset); not part of the key:
    either way a point must give the same result."""

    def key_fields(self) -> dict[str, Any]:
        """The settings that decide a run's result (tolerances and sanitizers do not)."""
        fields_ = {
            "timeout": self.timeout,
            "figure_format": self.figure_format,
            "seed": self.seed,
            "threads": self.threads,
            "memory_mb": self.memory_mb,
        }
        if self.params:  # only then: the keys of posts without parameters stay what they were
            fields_["params"] = dict(sorted(self.params.items()))
        return fields_


@dataclass(frozen=True, slots=True)
class Post:
    """One `posts/<slug>.md`, read and validated; nothing executed yet."""

    path: PurePosixPath
    """Relative to the project root: posts/grokking.md."""
    slug: str
    meta: FrontMatter
    blocks: tuple[Prose | Cell, ...]
    settings: RunSettings
    inputs: Mapping[str, str]
    """Declared input files (root-relative path -> sha256) at read time."""
    basis: Mapping[str, Any]
    """What the key is made of: a hash per code cell, the run settings, the declared inputs."""
    key: str
    """sha256 of `basis`; never prose, title or captions."""
    source_sha: str
    """sha256 of the file's bytes: a changed file is re-rendered."""
    text: str = ""
    """The file as written."""
    body_line: int = 1
    """1-based line of the file where the body (after the front matter) starts."""
    inline: tuple[Inline, ...] = ()
    """Computed values in the prose, evaluated after the cells; never part of the key."""
    sweep: Sweep | None = None
    """`labbook.sweep`: the points its cells run over (before the `#| gather: true` cell); None
    for a post that runs once."""

    @property
    def cells(self) -> tuple[Cell, ...]:
        return tuple(b for b in self.blocks if isinstance(b, Cell))

    @property
    def date_slug(self) -> str:
        return f"{self.meta.date.isoformat()}-{self.slug}"

    @property
    def body(self) -> str:
        """The Markdown after the front matter, exactly as written."""
        return "".join(self.text.splitlines(keepends=True)[self.body_line - 1 :])


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file a run produced, published under assets/posts/<slug>/."""

    kind: ArtifactKind
    name: str
    """Relative to the run's folder; never absolute, never '..'."""
    sha256: str
    size: int
    cell: int | None = None
    """The code cell that displayed it (figures)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a claim cell's assertions held."""

    claim: str
    holds: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class CellResult:
    """What one code cell did."""

    index: int
    outputs: tuple[dict[str, Any], ...]
    """nbformat outputs; images replaced by {"output_type": "figure", "name": ...}."""
    seconds: float
    claim: Verdict | None = None


@dataclass(frozen=True, slots=True)
class BlasLibrary:
    """A BLAS the kernel had loaded, as threadpoolctl reports it."""

    library: str
    """"openblas", "mkl", "blis", "flexiblas"."""
    version: str = ""
    kernel: str = ""
    """The code path it chose for this CPU ("SkylakeX", "Haswell"); "" when it does not say."""
    threads: int = 0
    file: str = ""
    """The shared library's file name: which package's copy it is (numpy's, scipy's)."""


@dataclass(frozen=True, slots=True)
class Platform:
    """The numeric platform a run executed on: what decides the last digits of its floats.

    Collected inside the kernel after the post's cells ran, so it describes the libraries the
    post really loaded. Fields a run could not know are "" (or 0).
    """

    cpu: str = ""
    """"Intel(R) Xeon(R) Processor", "AMD EPYC 7B13"."""
    isa: str = ""
    """The widest vector instructions the CPU offers: "AVX-512", "AVX2", "AVX", "SSE4.2", "NEON", "SVE"."""
    machine: str = ""
    system: str = ""
    """"Linux 6.1.0", "Darwin 24.1.0"."""
    libc: str = ""
    """"glibc 2.36": its libm computes exp, sin, … for the code that calls it."""
    blas: tuple[BlasLibrary, ...] = ()
    numpy_simd: str = ""
    """The widest SIMD target numpy dispatched to ("AVX512_SKX"), when the post imported numpy."""
    torch: str = ""
    """torch's CPU capability ("AVX512", "AVX2", "DEFAULT"), when the post imported torch."""
    torch_threads: int = 0
    torch_blas: str = ""
    """The BLAS torch was built with ("mkl 2024.2"): linked into torch, so threadpoolctl cannot see it."""
    variables: Mapping[str, str] = field(default_factory=dict)
    """Environment variables that choose numeric code paths (MKL_CBWR, OPENBLAS_CORETYPE,
    ATEN_CPU_CAPABILITY, NPY_DISABLE_CPU_FEATURES, …), when set: how one machine imitates another."""

    @property
    def description(self) -> str:
        """One line for a page or a message: "Intel Xeon (AVX-512); openblas 0.3.31 (SkylakeX kernel, 1 thread); …"."""
        parts = [f"{self.cpu or self.machine or 'an unknown CPU'}" + (f" ({self.isa})" if self.isa else "")]
        for blas in self.blas:
            how = [p for p in (blas.kernel and f"{blas.kernel} kernel",
                               blas.threads and f"{blas.threads} thread{'s' * (blas.threads != 1)}") if p]
            name = " ".join(p for p in (blas.library, blas.version) if p)
            parts.append(name + (f" ({', '.join(how)})" if how else ""))
        if self.numpy_simd:
            parts.append(f"numpy SIMD {self.numpy_simd}")
        if self.torch:
            threads = f", {self.torch_threads} thread{'s' * (self.torch_threads != 1)}" if self.torch_threads else ""
            parts.append(f"torch CPU capability {self.torch}" + (f" with {self.torch_blas}" if self.torch_blas else "")
                         + threads)
        parts += [p for p in (self.system, self.libc) if p]
        parts += [f"{name}={value}" for name, value in sorted(self.variables.items())]
        return "; ".join(parts)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Platform:
        """Keys it does not know are dropped: a newer labbook may record more."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and k != "blas"}
        blas_known = {f.name for f in fields(BlasLibrary)}
        blas = tuple(BlasLibrary(**{k: v for k, v in b.items() if k in blas_known}) for b in data.get("blas", ())
                     if isinstance(b, Mapping) and "library" in b)
        return cls(**values, blas=blas)


@dataclass(frozen=True, slots=True)
class Run:
    """The record of one execution of a post (run.json)."""

    key: str
    cells: tuple[CellResult, ...]
    artifacts: tuple[Artifact, ...]
    inputs: Mapping[str, str]
    """Project files the run depended on, declared or seen read (path -> sha256)."""
    basis: Mapping[str, Any]
    """What the key was made of (cell hashes, settings): tells *why* a post is stale."""
    environment: Mapping[str, str]
    started: str
    seconds: float
    seed: int = 0
    check: Mapping[str, Any] | None = None
    """The last `labbook check` of this run: date, verdict, seeds summary."""
    platform: Platform | None = None
    """Where it ran (CPU, BLAS, torch's kernels); None in a run.json older than the record."""
    schema: int = RUN_SCHEMA
    params: Mapping[str, Any] = field(default_factory=dict)
    """The parameters the code ran with (`labbook.params`, or `-p NAME=VALUE`)."""
    inline: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Computed values in prose: expression -> {"text": …} or {"error": …}."""

    def artifact(self, name: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.name == name), None)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("params", "inline"):  # absent when empty: older records stay byte for byte the same
            if not data[name]:
                del data[name]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Run:
        """Raises ValueError on a record labbook cannot read."""
        if data.get("schema") != RUN_SCHEMA:
            raise ValueError(f"run record schema {data.get('schema')!r}, expected {RUN_SCHEMA}")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["cells"] = tuple(
            CellResult(
                index=c["index"],
                outputs=tuple(c["outputs"]),
                seconds=c["seconds"],
                claim=Verdict(**c["claim"]) if c.get("claim") else None,
            )
            for c in data["cells"]
        )
        values["artifacts"] = tuple(Artifact(**a) for a in data["artifacts"])
        values["platform"] = Platform.from_json(data["platform"]) if data.get("platform") else None
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Page:
    """A post rendered: what the write stage puts into site/."""

    post: Post
    run: Run
    url: str
    """/blog/2026/grokking/ — the same under Jekyll and `labbook serve`."""
    filename: str
    """_posts/2026-01-10-grokking.html"""
    front_matter: Mapping[str, Any]
    html: str
    """The body; Liquid already made inert."""
    run_dir: str | None
    """Folder holding the run's artifacts, copied to assets/posts/<slug>/; None for a post
    without code (nothing ran, nothing to publish beside the page)."""
    summary: Summary
    """What the indexes and the feed need."""
    files: Mapping[str, bytes] = field(default_factory=dict)
    """More files of the page, made by render (the post's own notebook): name under
    assets/posts/<slug>/ -> content."""
    notices: tuple[Notice, ...] = ()
    """What render warned about (math it could not typeset, …)."""

    @property
    def slug(self) -> str:
        return self.post.slug

    @property
    def path(self) -> PurePosixPath:
        return self.post.path
