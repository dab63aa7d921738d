"""Time labbook's math: the engine's start-up, a formula, a page of 50 formulas.

    python bench/math_speed.py

Runs in this process (the start-up is measured once, as a build pays it once); reports CPU time
of the whole process (V8 runs on its own thread) and wall time, so a busy machine still gives
the CPU figures. Uses the corpus of tests/fixtures/math/corpus.yaml.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from mathcorpus import entries

from labbook import render, texmath


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """CPU and wall milliseconds of one call."""
    cpu_start, wall_start = cpu(), time.perf_counter()
    work()
    return (cpu() - cpu_start) * 1000, (time.perf_counter() - wall_start) * 1000


def median(samples: list[tuple[float, float]]) -> str:
    return f"cpu {statistics.median(s[0] for s in samples):.1f} ms, wall {statistics.median(s[1] for s in samples):.1f} ms"


def main() -> None:
    corpus = entries()
    formulas = [texmath.Formula(e.tex, e.display) for e in corpus]
    page = "\n\n".join(e.markdown() for e in corpus[:50])
    start = timed(lambda: texmath.typeset_formulas(formulas[:1]))
    first = timed(lambda: texmath.typeset_formulas(formulas[:50]))
    warm = [timed(lambda: texmath.typeset_formulas(formulas[:50])) for _ in range(9)]
    single = [timed(lambda f=f: texmath.typeset_formulas([f])) for f in formulas]
    pages = [timed(lambda: render.markdown_html(page, {})) for _ in range(5)]
    print(f"engine start-up and first formula (once per process): cpu {start[0]:.0f} ms, wall {start[1]:.0f} ms")
    print(f"first page of 50 formulas (V8 warming up): cpu {first[0]:.0f} ms, wall {first[1]:.0f} ms")
    print(f"page of 50 formulas, engine warm: {median(warm)}")
    print(f"one formula per engine call ({len(single)} formulas): {median(single)}")
    print(f"markdown page of 50 formulas, formulas already typeset (numbering, references): {median(pages[1:])}")


if __name__ == "__main__":
    main()
