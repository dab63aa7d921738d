"""Seeds: how a post's results move with LABBOOK_SEED.

in → out: the runs of one post under several seeds (each with its folder) → a SeedSpread of
every numeric series the runs wrote and a tally of each claim; and the record of it kept in
run.json.
Never executes (check runs the variants) and never writes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import compare
from ..model import Run
from ..source import with_seed

__all__ = ["SeedSpread", "with_seed", "seed_spread", "seeds_record", "seed_lines"]

MAX_SERIES = 500
"""Series compared across seeds at most (the first, by name): a post may write thousands."""


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
    refused: str = ""
    """Why no other seed ran (a sweep over the seed already): said instead of a spread, never recorded."""


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
    names = sorted(set.intersection(*(set(s) for s in per_seed))) if per_seed else []
    series = [_spread(name, [s[name] for s in per_seed]) for name in names[:MAX_SERIES]]
    return SeedSpread(len(runs) + len(failed), {k: (v[0], v[1] + len(failed)) for k, v in claims.items()},
                      tuple(s for s in series if s), tuple(sorted(failed)))


def _numeric_series(run: Run, folder: Path) -> dict[str, Any]:
    """name -> number or array: every numeric series of the run's data files (compare reads them)."""
    found: dict[str, Any] = {}
    for artifact in run.artifacts:
        if artifact.kind == "data":
            found.update(compare.numeric_series(folder / artifact.name, artifact.name.removeprefix("data/")))
    return found


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


def seeds_record(spread: SeedSpread, date: str) -> dict[str, Any]:
    """What run.json keeps of a spread, and the page shows."""
    return {
        "n": spread.seeds,
        "date": date,
        "claims": {claim: f"{held}/{total}" for claim, (held, total) in spread.claims.items()},
        "series": [{k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v) for k, v in s.items()}
                   for s in spread.series[:50]],
        "failed": list(spread.failed),
    }


def seed_lines(spread: SeedSpread) -> list[str]:
    """The spread as the terminal and the reports show it."""
    if spread.refused:
        return [f"seeds: none run: {spread.refused}"]
    failed = f" ({len(spread.failed)} failed: {list(spread.failed)})" if spread.failed else ""
    lines = [f"seeds: {spread.seeds}{failed}"]
    lines += [f"  claim held on {held}/{total} seeds: {claim}" for claim, (held, total) in spread.claims.items()]
    for series in spread.series[:30]:
        lines.append(f"  {series['name']}: mean {series['mean']:.6g}, std across seeds {series['std']:.3g}, "
                     f"min {series['min']:.6g}, max {series['max']:.6g}")
    return lines
