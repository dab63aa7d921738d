"""The plain data passed between the stages: frozen, picklable, JSON round-trippable.

`Run` holds no prose, title or caption: render joins a fresh `Post` with a possibly
cached `Run` by `Cell.index`, which is why a prose edit never re-executes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import PurePosixPath
from typing import Any, Literal

__all__ = [
    "STATUSES",
    "RUN_SCHEMA",
    "CellOptions",
    "Cell",
    "Prose",
    "FrontMatter",
    "Tolerance",
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
]

STATUSES = ("partial", "open", "supported", "refuted")
RUN_SCHEMA = 1

ArtifactKind = Literal["figure", "data", "notebook"]
OutcomeStatus = Literal["executed", "cached", "unchanged", "skipped", "unpublished", "failed", "kept-last-good"]


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
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Keys labbook does not know, passed to the Jekyll front matter as they are."""


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far a re-run may drift from the published run and still reproduce it."""

    rtol: float = 1e-5
    atol: float = 1e-8
    figure_rms: float = 2.0
    """Root-mean-square pixel difference (0-255 scale) allowed between figures."""
    files: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Per-artifact overrides: {"curves.csv": {"rtol": 1e-3}}."""

    def for_file(self, name: str) -> Tolerance:
        """The tolerance that applies to one artifact."""
        override = self.files.get(name)
        return replace(self, files={}, **override) if override else self


KERNEL_START_MB = 512
"""Address space a kernel needs just to start (ipykernel's threads reserve their stacks): the
smallest memory limit a post may ask for."""


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

    def key_fields(self) -> dict[str, Any]:
        """The settings that decide a run's result (tolerances and sanitizers do not)."""
        return {
            "timeout": self.timeout,
            "figure_format": self.figure_format,
            "seed": self.seed,
            "threads": self.threads,
            "memory_mb": self.memory_mb,
        }


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
    schema: int = RUN_SCHEMA

    def artifact(self, name: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

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
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Summary:
    """What the indexes, the feed and the next build need of a published post.

    Written into the page's front matter (`to_front_matter`) and read back from it
    (`from_front_matter`), so a post that fails later keeps its place in the listings; the two
    live side by side so they cannot drift apart.
    """

    slug: str
    url: str
    """/blog/2026/grokking/, baseurl included."""
    source: str
    """The post file it was built from: posts/grokking.md."""
    title: str
    date: str
    """ISO date: 2026-01-10."""
    description: str = ""
    status: str | None = None
    tags: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    data: tuple[str, ...] = ()
    phenomena: tuple[str, ...] = ()
    observables: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    figure: str = ""
    """URL of the post's first figure, for thumbnails; '' when it has none."""
    verdict: str = ""
    """The last `labbook check` verdict of its run ('' when never checked)."""
    checked: str = ""
    """The date of that check."""
    authors: tuple[str, ...] = ()
    """The post's `author(s):`, or the site's author."""
    updated: str = ""
    """ISO date its results were last produced (its run), when later than `date`; '' otherwise."""
    links: tuple[str, ...] = ()
    """URLs of the other posts its body links to: the backlinks of those posts."""

    FACETS = ("tags", "models", "data", "phenomena", "observables", "questions")

    def to_front_matter(self) -> dict[str, Any]:
        """The page's front matter keys: Jekyll's own at the top, labbook's under `labbook`."""
        values: dict[str, Any] = {
            "title": self.title,
            "date": f"{self.date} 00:00:00 +0000",
            "description": self.description,
        }
        if self.status is not None:
            values["status"] = self.status
        values.update({name: list(getattr(self, name)) for name in self.FACETS})
        values["labbook"] = {"url": self.url, "source": self.source, "figure": self.figure,
                             "verdict": self.verdict, "checked": self.checked, "authors": list(self.authors),
                             "updated": self.updated, "links": list(self.links)}
        return values

    @classmethod
    def from_front_matter(cls, front: Mapping[str, Any], slug: str) -> Summary:
        """The summary a page was written with; missing or odd values fall back to empty ones."""
        own = front.get("labbook") if isinstance(front.get("labbook"), Mapping) else {}
        status = front.get("status")
        return cls(
            slug=slug,
            url=_text(own.get("url") or front.get("labbook_url")),
            source=_text(own.get("source")),
            title=_text(front.get("title")) or slug,
            date=_text(front.get("date"))[:10],
            description=_text(front.get("description")),
            status=status if isinstance(status, str) and status else None,
            figure=_text(own.get("figure")),
            verdict=_text(own.get("verdict")),
            checked=_text(own.get("checked")),
            authors=_texts(own.get("authors")),
            updated=_text(own.get("updated"))[:10],
            links=_texts(own.get("links")),
            **{name: _texts(front.get(name)) for name in cls.FACETS},
        )

    def to_json(self) -> dict[str, Any]:
        return {name.name: _plain_value(getattr(self, name.name)) for name in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Summary:
        known = {f.name for f in fields(cls)}
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known}
        return cls(**values)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _texts(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value if v is not None)
    return (str(value),) if isinstance(value, (str, int, float)) and value != "" else ()


def _plain_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True, slots=True)
class Notice:
    """A warning for the author: something was done, but maybe not what they meant."""

    message: str
    path: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


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


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the build did with one post."""

    path: PurePosixPath
    status: OutcomeStatus
    error: Exception | None = None
    seconds: float = 0.0
