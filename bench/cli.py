"""The command line: which groups of rows to measure, at what sizes; then the report.

    python bench/bench.py [--sizes 20,100,1000] [--repeat 5] [--peers/--no-peers] [--quick]
                          [--sweep-points 64] [--point-seconds 0.5] [--only builds|serve|sweep]

Groups: the builds (bench/scenarios/builds.py), `labbook serve` (scenarios/serve.py), the sweep
(scenarios/sweeps.py) and the peers (peers.py). `--quick` shrinks every group to a smoke test.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from . import harness, report
from .harness import HERE, Measurement, Settings
from .peers import run_peers
from .posts import make_project
from .scenarios.builds import run_labbook
from .scenarios.serve import run_serve
from .scenarios.sweeps import measure_sweeps

DESCRIPTION = ("Benchmark labbook against its own targets, a plain-Python floor, nbconvert and Jupyter Book 1.x; "
               "and a sweep against a plain loop, at -j1, -j2 and on Dask.")
GROUPS = ("builds", "serve", "sweep")


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="bench/bench.py", description=DESCRIPTION)
    parser.add_argument("--sizes", default="20,100,1000", help="numbers of posts, comma-separated")
    parser.add_argument("--repeat", type=int, default=5, help="runs per sub-second measurement (median)")
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure nbconvert and Jupyter Book 1.x on the same 20 posts")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: sizes 20, repeat 2, no peers, a sweep of 16 points of ~0.05 s")
    parser.add_argument("--cpu-posts", type=int, default=8, help="CPU-bound posts for the -j1/-j2 ratio")
    parser.add_argument("--sweep-points", type=int, default=None, help="points of the sweep (default 64; --quick 16)")
    parser.add_argument("--sweep-seeds", type=int, default=8, help="the sweep's seed axis (points added in one step)")
    parser.add_argument("--point-seconds", type=float, default=None,
                        help="seconds one point of the toy model takes, single-threaded (default 0.5; --quick 0.05)")
    parser.add_argument("--workdir", type=Path, default=None, help="where projects are generated (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=HERE, help="where RESULTS.md and results.json go (default: bench/)")
    parser.add_argument("--max-wait", type=float, default=harness.WAIT_BUDGET / 60,
                        help="minutes the whole run may spend waiting for a quiet machine (default 20)")
    parser.add_argument("--only", choices=GROUPS, help="only this group of rows; the report keeps the other rows")
    args = parser.parse_args(argv)
    harness.WAIT_BUDGET = max(0.0, args.max_wait * 60)
    sizes = [20] if args.quick else sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="labbook-bench-"))
    if workdir.exists() and any(workdir.iterdir()):
        raise SystemExit(f"{workdir} is not empty")
    return Settings(
        sizes=sizes, repeat=2 if args.quick else args.repeat, peers=args.peers and not args.quick, quick=args.quick,
        cpu_posts=4 if args.quick else args.cpu_posts, workdir=workdir, only=args.only, out=args.out,
        sweep_points=args.sweep_points or (16 if args.quick else 64), sweep_seeds=args.sweep_seeds,
        point_seconds=args.point_seconds or (0.05 if args.quick else 0.5),
    )


def measure(settings: Settings, results: dict[str, Measurement]) -> None:
    """Every group the settings ask for, into `results` row by row (kept if a later one fails)."""

    def keep(rows: Sequence[Measurement]) -> None:
        results.update((row.key, row) for row in rows)

    if settings.only == "builds":  # labbook's build rows, and the peers on the same posts unless --no-peers
        run_labbook(settings, results)
        if settings.peers:
            run_peers(settings, results)
        return
    if settings.only == "serve":
        projects = {size: make_project(settings.workdir / f"master-{size}", size) for size in settings.sizes}
        run_serve(settings, results, projects)
        return
    if settings.only != "sweep":
        projects = run_labbook(settings, results)
        run_serve(settings, results, projects)
    keep(measure_sweeps(settings))
    if settings.peers and not settings.only:
        run_peers(settings, results)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    began = time.perf_counter()
    date = report.now()
    settings.workdir.mkdir(parents=True, exist_ok=True)
    if settings.quick:  # a smoke test: never wait for a quiet machine, never take a run again
        harness.WAIT_BUDGET, harness.NOISY = 0.0, float("inf")
    source = harness.snapshot_labbook(settings.workdir)
    info = report.machine()
    load = report.load_average()
    print(f"workdir {settings.workdir}; sizes {settings.sizes}; repeat {settings.repeat}; load {report.load_average()}",
          flush=True)
    results: dict[str, Measurement] = {}
    try:
        measure(settings, results)
    finally:
        if results:
            for row in results.values():
                row.measured = date
            this = report.RunInfo(date, f"a copy of labbook/ taken when the benchmark started: {source}",
                                  (time.perf_counter() - began) / 60, harness.WAITED[0] / 60,
                                  settings.only or "every group", settings.quick,
                                  f"(1, 5, 15 min) {load} at the start, {report.load_average()} at the end")
            report.save(results, settings, info, this)
    return 0
