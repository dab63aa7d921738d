"""What a check finds for one post, and the rule that turns it into a verdict.

in → out: a post, its published run and a fresh re-run (each with its folder) → differences,
claim results, and one of VERDICTS.
Owns the verdict rule, and which parts of the numeric platform can explain digits that differ
while every claim holds (`consistent`) — drift on the same platform stays `drifted`.
Never executes, never writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .. import compare
from ..errors import LabbookError
from ..model import Platform, Post, Run
from .seeds import SeedSpread

__all__ = ["VERDICTS", "PASSING", "ClaimResult", "PointCheck", "PostCheck", "CheckReport", "compare_runs", "verdict",
           "platform_change", "run_identity"]

VERDICTS = ("reproduced", "consistent", "drifted", "claim broken", "failed", "new", "stale")
PASSING = ("reproduced", "consistent")
"""Verdicts that exit 0 (`--strict` keeps only `reproduced`)."""
NOT_COMPARED = {"executed.ipynb", "outputs.ipynb"}
"""The executed notebook holds the same outputs as run.json's cells, which are compared instead."""
NOT_EXPLAINED_BY_PLATFORM = ("missing", "extra")
"""Difference kinds a platform cannot cause: a file that appeared or vanished is a changed result."""


@dataclass(frozen=True, slots=True)
class ClaimResult:
    claim: str
    published: bool | None
    """Whether it held in the published run; None when that run did not have this claim."""
    now: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class PointCheck:
    """The check of one point of a sweep post."""

    point: str
    """Its id: `wd=0.5,seed=2`."""
    verdict: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PostCheck:
    """The check of one post."""

    path: PurePosixPath
    slug: str
    verdict: str
    differences: tuple[compare.Difference, ...] = ()
    claims: tuple[ClaimResult, ...] = ()
    error: LabbookError | None = None
    reason: str = ""
    """Why it is new, stale or consistent, in one sentence."""
    note: str = ""
    """What the reader should know besides: a published run with no platform record."""
    seeds: SeedSpread | None = None
    seconds: float = 0.0
    published_dir: str = ""
    new_dir: str = ""
    published_run: tuple[str, ...] = ()
    """run_identity() of the published run that was compared: the check is recorded onto that
    run only (a build may publish another one meanwhile)."""
    platform: str = ""
    """Where the re-run executed (Platform.description)."""
    points: tuple[PointCheck, ...] = ()
    """A sweep post: the verdict of each point it ran again."""

    def passed(self, strict: bool = False) -> bool:
        return self.verdict == "reproduced" or (self.verdict == "consistent" and not strict)

    @property
    def ok(self) -> bool:
        return self.passed()


@dataclass(slots=True)
class CheckReport:
    posts: list[PostCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the check did not do and why: a verdict not recorded, a page not refreshed."""
    without_code: int = 0
    """Posts with no code cell: no run to execute or compare, so never a failure."""

    def passed(self, strict: bool = False) -> bool:
        return bool(self.posts or self.without_code) and all(p.passed(strict) for p in self.posts)

    @property
    def ok(self) -> bool:
        return self.passed()


def run_identity(run: Run) -> tuple[str, ...]:
    """One execution of a post: its key, when it started, and the hash of every artifact."""
    return (run.key, run.started, *(f"{a.name}:{a.sha256}" for a in run.artifacts))


# --- comparing one post ---------------------------------------------------------------------------


def compare_runs(post: Post, published: Run, published_dir: Path, new: Run, new_dir: Path,
                 diff_dir: Path | None) -> tuple[list[compare.Difference], list[ClaimResult]]:
    """Every way `new` fails to reproduce `published`, and each claim's verdict then and now."""
    kinds = {a.name: a.kind for a in (*published.artifacts, *new.artifacts)}
    differences = compare.compare_files(
        published_dir, new_dir, [a.name for a in published.artifacts if a.name not in NOT_COMPARED],
        [a.name for a in new.artifacts if a.name not in NOT_COMPARED], kinds, post.settings.tolerance, diff_dir,
        post.settings.sanitize,
    )
    old_cells = {c.index: c for c in published.cells}
    for cell in new.cells:
        before = old_cells.get(cell.index)
        difference = compare.compare_outputs(before.outputs if before else (), cell.outputs, cell.index + 1,
                                             post.settings.sanitize)
        if difference is not None:
            differences.append(difference)
    claims = []
    for cell in new.cells:
        if cell.claim is None:
            continue
        before = old_cells.get(cell.index)
        held = before.claim.holds if before is not None and before.claim is not None else None
        claims.append(ClaimResult(cell.claim.claim, held, cell.claim.holds, cell.claim.message))
    return differences, claims


def verdict(differences: Sequence[compare.Difference], claims: Sequence[ClaimResult],
            platform_differs: bool) -> str:
    """A broken claim first; then reproduced, or digits that a different platform explains
    (`consistent`), or drift."""
    if any(not c.now for c in claims):
        return "claim broken"
    if not differences:
        return "reproduced"
    if platform_differs and not any(d.kind in NOT_EXPLAINED_BY_PLATFORM for d in differences):
        return "consistent"
    return "drifted"


# --- the numeric platform -------------------------------------------------------------------------

NUMERIC_LIBRARIES = ("numpy", "torch")
"""Library versions that change float results (from Run.environment)."""


def _numeric_parts(platform: Platform, environment: Mapping[str, str]) -> dict[str, str]:
    """The parts of a platform that decide the last digits of a float, by name."""
    parts = {
        "ISA": platform.isa,
        "machine": platform.machine,
        "libc": platform.libc,
        "numpy SIMD": platform.numpy_simd,
        "BLAS": "; ".join(f"{b.library} {b.version} {b.kernel}".strip() + f" ×{b.threads}" for b in platform.blas),
        "torch CPU capability": platform.torch,
        "torch BLAS": platform.torch_blas,
        "torch threads": str(platform.torch_threads or ""),
        **{name: platform.variables.get(name, "") for name in sorted(platform.variables)},
    }
    parts.update({name: environment.get(name, "") for name in NUMERIC_LIBRARIES})
    return parts


def platform_change(published: Run, new: Run) -> tuple[str, str]:
    """(sentence, note): how the numeric platforms differ, "published on X, checked on Y" —
    "" when they are the same; the note says when it cannot be known."""
    if published.platform is None:
        return "", ("the published run records no numeric platform (it was published by an older labbook): "
                    "republish it, so that check can tell digits that differ on another CPU from a changed result")
    if new.platform is None:
        return "", "the re-run recorded no numeric platform, so digits that differ cannot be put down to the CPU"
    before = _numeric_parts(published.platform, published.environment)
    after = _numeric_parts(new.platform, new.environment)
    names = [*before, *(name for name in after if name not in before)]
    before, after = {n: before.get(n, "") for n in names}, {n: after.get(n, "") for n in names}
    changed = [name for name in names if before[name] != after[name]]
    if not changed:
        return "", ""

    def side(platform: Platform, parts: Mapping[str, str]) -> str:
        shown = ", ".join(f"{name} {parts[name] or ('unset' if name.isupper() else 'unknown')}" for name in changed)
        return f"{platform.cpu or 'an unknown CPU'} ({shown})"

    return f"published on {side(published.platform, before)}, checked on {side(new.platform, after)}", ""
