"""The sweep scenario (issue 17): a sweep of a ~0.5 s toy model, point by point through labbook,
against a plain Python loop over the same grid in one process.

in → out: the settings → `Measurement` rows:

* `sweep-floor`: the per-point code and the gather's code as one plain script, a loop over the
  grid in one process (MPLBACKEND=Agg, the figure saved as the PNG labbook's backend makes);
  `sweep-floor-j2`: the same points split over 2 processes at once (no gather), the ceiling
  that 2 cores of this machine give at that time.
* `sweep-j1`, `sweep-j2`: cold `labbook build -j N` of the sweep post (every point executed,
  then the gather); `sweep-dask`: the same with `--scheduler` on a LocalCluster of 2 workers
  (1 thread each) on loopback, started once for all the rounds, so its workers' kernel servers
  stay warm between builds as a real cluster's do.
* `sweep-add`: a built sweep whose weight-decay list gains one value (`seeds` new points):
  the build's own summary line must say exactly that many points executed, the rest cached,
  and the gather executed once. Counted, and timed.

The five timed rows are taken in turn, round after round, so that a change in the machine's
speed touches them alike: ratios are measured side by side. The toy model's step count is
calibrated at start so that one point costs `point_seconds` single-threaded here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..harness import (
    Finished,
    Measurement,
    Sample,
    Settings,
    checked,
    environment,
    progress,
    quiet,
    run,
    tree_seconds,
)
from .builds import run_build

LR = 0.1

MODEL = '''
def train(lr, wd, seed, steps):
    """A two-layer tanh network fitted to a random teacher by full-batch gradient descent."""
    rng = np.random.default_rng(seed)
    x, x_test = rng.standard_normal((256, 16)), rng.standard_normal((256, 16))
    teacher = rng.standard_normal((16, 1)) / 4
    y, y_test = np.tanh(x @ teacher), np.tanh(x_test @ teacher)
    w1 = rng.standard_normal((16, 32)) / 4
    w2 = rng.standard_normal((32, 1)) / np.sqrt(32)
    curve, every = [], max(1, steps // 50)
    for step in range(steps + 1):
        h = np.tanh(x @ w1)
        err = h @ w2 - y
        if step % every == 0 or step == steps:
            test = np.mean((np.tanh(x_test @ w1) @ w2 - y_test) ** 2)
            curve.append((step, np.mean(err**2), test))
        if step == steps:
            break
        g2 = h.T @ err / len(x) + wd * w2
        g1 = x.T @ ((err @ w2.T) * (1 - h**2)) / len(x) + wd * w1
        w1 -= lr * g1
        w2 -= lr * g2
    norm = float(np.sqrt((w1**2).sum() + (w2**2).sum()))
    return {"train_loss": float(curve[-1][1]), "test_loss": float(curve[-1][2]), "weight_norm": norm}, np.array(curve)
'''.strip()
"""The toy model: the same text in the post's per-point cell and in the plain loop."""

GATHER = '''
import numpy as np
import matplotlib.pyplot as plt

ok = [r for r in rows if r["status"] == "ok"]
decays = sorted({r["wd"] for r in ok})
final = {wd: [r["test_loss"] for r in ok if r["wd"] == wd] for wd in decays}
curves = [np.loadtxt(f"points/{r['point']}/curve.csv", delimiter=",", skiprows=1) for r in ok]
fig, ax = plt.subplots(figsize=(4.8, 3.2))
ax.errorbar(decays, [np.mean(final[wd]) for wd in decays], yerr=[np.std(final[wd]) for wd in decays], fmt="o-")
ax.set(xscale="log", xlabel="weight decay", ylabel="test loss")
best = min(decays, key=lambda wd: np.mean(final[wd]))
print(f"{len(ok)} points, {len(curves)} curves; lowest mean test loss at weight decay {best:g}")
'''.strip()
"""The gather's code, given `rows` (labbook: `labbook.sweep_table()`; the plain loop: its own list)."""

POST = '''---
title: A toy sweep for the benchmark
date: 2026-01-05
description: A two-layer network on a random teacher, across weight decays and seeds.
tags: [bench, sweep]
status: open
labbook:
  params: {{lr: {lr}, wd: {first}}}
  sweep: {{wd: [{wds}], seed: [{seeds}]}}
---

Each point trains a two-layer tanh network on a random teacher by full-batch gradient descent,
with its weight decay and seed, and reports its final losses.

```python
import os
import numpy as np
import labbook

STEPS = {steps}
{model}


lr, wd = labbook.param("lr"), labbook.param("wd")
seed = int(os.environ["LABBOOK_SEED"])
observed, curve = train(lr, wd, seed, STEPS)
np.savetxt("curve.csv", curve, delimiter=",", header="step,train_loss,test_loss", comments="")
labbook.observe(**observed)
```

The gather reads every point's row and curve.

```python
#| gather: true
#| label: fig-decay
#| caption: Test loss against weight decay: mean and spread over the seeds.
import labbook

rows = labbook.sweep_table()
{gather}
plt.show()
```
'''

FLOOR = '''
import json
import os
import sys
import time

import numpy as np

STEPS = {steps}
{model}


WDS, SEEDS, LR = {wds}, {seeds}, {lr}
part, parts = (int(n) for n in (sys.argv[1] if len(sys.argv) > 1 else "0/1").split("/"))
began = time.perf_counter()
rows = []
for wd, seed in [(wd, seed) for wd in WDS for seed in SEEDS][part::parts]:
    point = f"wd-{{wd:g}}_seed-{{seed}}"
    os.makedirs(f"points/{{point}}")
    observed, curve = train(LR, wd, seed, STEPS)
    np.savetxt(f"points/{{point}}/curve.csv", curve, delimiter=",", header="step,train_loss,test_loss", comments="")
    rows.append({{"wd": wd, "seed": seed, **observed, "status": "ok", "point": point}})
points = time.perf_counter() - began
if parts == 1:
{gather}
    plt.savefig("fig-decay.png", dpi=110, bbox_inches="tight")
print(json.dumps({{"points_seconds": points, "gather_seconds": time.perf_counter() - began - points}}))
'''.lstrip()
"""The plain loop: the same model and gather code, one process (or one part of the grid)."""

SPLIT = """
import subprocess, sys
script, base, parts = sys.argv[1], sys.argv[2], int(sys.argv[3])
running = [subprocess.Popen([sys.executable, script, f"{i}/{parts}"], cwd=f"{base}/{i}", stdout=subprocess.DEVNULL)
           for i in range(parts)]
sys.exit(max(p.wait() for p in running))
"""
"""Runs the plain loop's parts at once, each in its own folder."""

CALIBRATE = """
import time
import numpy as np
{model}
laps = []
for _ in range(3):
    began = time.perf_counter()
    train(0.1, 0.001, 0, 400)
    laps.append(time.perf_counter() - began)
print(sorted(laps)[1] / 400)
"""

CLUSTER = """
import os
import sys

from distributed import LocalCluster

if __name__ == "__main__":
    cluster = LocalCluster(n_workers=int(sys.argv[2]), threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    cluster.wait_for_workers(int(sys.argv[2]), timeout=120)
    with open(sys.argv[1] + ".part", "w") as out:
        out.write(cluster.scheduler_address)
    os.replace(sys.argv[1] + ".part", sys.argv[1])
    sys.stdin.read()  # until the benchmark closes our stdin
    cluster.close()
"""
"""A distributed LocalCluster (2 worker processes, 1 thread each) on loopback, in its own process
so that its CPU is measured apart from this script's."""

POINTS = re.compile(r"points: (\d+) executed(?: \((\d+) failed\))?, (\d+) cached of (\d+); (\d+) gathers? executed")


@dataclass(frozen=True, slots=True)
class Grid:
    """The sweep's grid: weight decays × seeds, and the model's step count."""

    wds: tuple[float, ...]
    seeds: tuple[int, ...]
    steps: int

    @property
    def points(self) -> int:
        return len(self.wds) * len(self.seeds)

    def grown(self, extra: float) -> Grid:
        """One more weight decay: `len(seeds)` new points."""
        return Grid((*self.wds, extra), self.seeds, self.steps)


def grid_for(settings: Settings, steps: int) -> Grid:
    seeds = min(settings.sweep_seeds, settings.sweep_points)
    if settings.sweep_points % seeds:
        raise SystemExit(f"--sweep-points {settings.sweep_points} is not a multiple of the {seeds} seeds")
    wds = tuple(round(0.001 * (i + 1), 6) for i in range(settings.sweep_points // seeds))
    return Grid(wds, tuple(range(seeds)), steps)


def _listed(values: Sequence[float | int]) -> str:
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def post_text(grid: Grid) -> str:
    return POST.format(lr=LR, first=f"{grid.wds[0]:g}", wds=_listed(grid.wds), seeds=_listed(grid.seeds),
                       steps=grid.steps, model=MODEL, gather=GATHER)


def floor_text(grid: Grid) -> str:
    indented = "\n".join("    " + line if line else "" for line in GATHER.splitlines())
    return FLOOR.format(steps=grid.steps, model=MODEL, wds=list(grid.wds), seeds=list(grid.seeds), lr=LR,
                        gather=indented)


def make_sweep_project(folder: Path, grid: Grid) -> Path:
    (folder / "posts").mkdir(parents=True)
    (folder / "pyproject.toml").write_text('[tool.labbook]\ntitle = "bench"\n', encoding="utf-8")
    (folder / "posts" / "toy-sweep.md").write_text(post_text(grid), encoding="utf-8")
    return folder


def calibrate(work: Path, seconds: float) -> int:
    """Steps of the toy model that take `seconds` here, single-threaded (the median of 3 laps)."""
    script = work / "calibrate.py"
    script.write_text(CALIBRATE.format(model=MODEL), encoding="utf-8")
    done = checked(run([sys.executable, script], cwd=work), "calibrating the toy model")
    per_step = float(done.output.strip().splitlines()[-1])
    return max(10, round(seconds / per_step))


# --- a Dask cluster on loopback -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cluster:
    address: str
    pid: int

    def cpu_seconds(self) -> float:
        return tree_seconds(self.pid)


@contextlib.contextmanager
def local_cluster(work: Path, workers: int = 2) -> Iterator[Cluster | None]:
    """A LocalCluster of `workers` processes in a helper process; None when distributed is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("distributed not installed: the Dask row is skipped (pip install 'labbook[dask]')", flush=True)
        yield None
        return
    script, address_file = work / "cluster.py", work / "scheduler-address"
    script.write_text(CLUSTER, encoding="utf-8")
    helper = subprocess.Popen([sys.executable, str(script), str(address_file), str(workers)], cwd=work,
                              env=environment(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=open(work / "cluster.log", "wb"))  # noqa: SIM115 - closed with the process
    try:
        deadline = time.monotonic() + 180
        while not address_file.exists():
            if helper.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the Dask cluster did not start; see {work / 'cluster.log'}")
            time.sleep(0.2)
        yield Cluster(address_file.read_text().strip(), helper.pid)
    finally:
        _stop(helper)


def _stop(helper: subprocess.Popen[bytes]) -> None:
    if helper.stdin is not None:
        helper.stdin.close()
    try:
        helper.wait(timeout=60)
    except subprocess.TimeoutExpired:
        helper.kill()
        helper.wait()


# --- the runs ------------------------------------------------------------------------------------------


def sweep_build(root: Path, jobs: int, *options: str, ours: Callable[[], float] | None = None,
                expect: tuple[int, int] | None = None) -> Sample:
    """One `labbook build` of the sweep project; `executed` is the points it ran, read from its
    summary line; `expect` = (points executed, points cached), checked, with the gather executed."""
    done = run_build(root, jobs, *options, ours=ours)
    match = POINTS.search(done.output)
    if match is None:
        raise SystemExit(f"no sweep summary in labbook's output:\n{done.output[-2000:]}")
    executed, failed, cached, total, gathers = (int(g or 0) for g in match.groups())
    if failed:
        raise SystemExit(f"{failed} points failed:\n{done.output[-3000:]}")
    if expect is not None and ((executed, cached) != expect or gathers != 1):
        raise SystemExit(f"expected {expect[0]} points executed and {expect[1]} cached, then the gather; "
                         f"labbook says: {match.group(0)}")
    done.sample.executed = executed
    done.sample.detail = {"points_cached": cached, "points": total, "gathers": gathers}
    return done.sample


def fresh_sweep(project: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(project / "pyproject.toml", target / "pyproject.toml")
    shutil.copytree(project / "posts", target / "posts")
    return target


def floor_once(script: Path, work: Path, parts: int, ours: Callable[[], float]) -> Sample:
    """The plain loop, in fresh folders: one process, or `parts` at once (points only)."""
    base = Path(tempfile.mkdtemp(prefix="floor-", dir=work))
    env = environment(MPLBACKEND="Agg")
    if parts == 1:
        done = checked(run([sys.executable, script], cwd=base, env=env, ours=ours), "the plain loop")
        done.sample.detail = json.loads(done.output.strip().splitlines()[-1])
        return done.sample
    for part in range(parts):
        (base / str(part)).mkdir()
    command = [sys.executable, "-c", SPLIT, script, base, str(parts)]
    return checked(run(command, cwd=base, env=env, ours=ours), "the plain loop, split").sample


@dataclass(slots=True)
class SweepRun:
    """One benchmark's sweep scenario: where, what, and its rows."""

    settings: Settings
    work: Path
    grid: Grid
    project: Path
    script: Path
    rows: dict[str, Measurement]
    cluster: Cluster | None = None

    def ours(self) -> float:
        """CPU seconds of the helper processes we keep running (the Dask cluster)."""
        return self.cluster.cpu_seconds() if self.cluster is not None else 0.0

    def row(self, key: str, scenario: str, tool: str, jobs: int | str | None, note: str = "") -> Measurement:
        self.rows[key] = Measurement(key, scenario, tool, self.grid.points, jobs, note=note)
        return self.rows[key]

    def take(self, key: str, once: Callable[[], Sample | Finished]) -> None:
        self.rows[key].samples.append(quiet(once, ours=self.ours))


def measure_sweeps(settings: Settings) -> list[Measurement]:
    """The sweep rows (see the module's docstring), in turn, `cold_repeat` rounds."""
    work = settings.workdir / "sweep"
    work.mkdir(parents=True, exist_ok=True)
    steps = calibrate(work, settings.point_seconds)
    grid = grid_for(settings, steps)
    script = work / "plain_loop.py"
    script.write_text(floor_text(grid), encoding="utf-8")
    project = make_sweep_project(work / "master", grid)
    print(f"sweep: {grid.points} points ({len(grid.wds)} weight decays × {len(grid.seeds)} seeds), "
          f"{steps} steps a point (~{settings.point_seconds:g} s)", flush=True)
    with local_cluster(work) as cluster:
        bench = SweepRun(settings, work, grid, project, script, {}, cluster)
        _declare_rows(bench)
        for _ in range(settings.cold_repeat):
            _one_round(bench)
        _measure_added(bench)
    for row in bench.rows.values():
        progress(row)
    return list(bench.rows.values())


def _declare_rows(bench: SweepRun) -> None:
    seconds = f"~{bench.settings.point_seconds:g} s a point"
    bench.row("sweep-floor", "sweep: plain Python loop, one process", "python", 1,
              f"{seconds}; the same model and gather code; Agg, PNG saved")
    bench.row("sweep-floor-j2", "sweep: plain Python loop, grid split over 2 processes", "python", 2,
              "points only (no gather): what 2 cores give here")
    for jobs in (1, 2):
        bench.row(f"sweep-j{jobs}", "sweep: cold build", "labbook", jobs, "every point executed, then the gather")
    if bench.cluster is not None:
        bench.row("sweep-dask", "sweep: cold build on Dask", "labbook", "dask",
                  "--scheduler: LocalCluster, 2 workers × 1 thread, loopback")


def _one_round(bench: SweepRun) -> None:
    """Each timed row once, in turn."""
    points = bench.grid.points
    bench.take("sweep-floor", lambda: floor_once(bench.script, bench.work, 1, bench.ours))
    bench.take("sweep-floor-j2", lambda: floor_once(bench.script, bench.work, 2, bench.ours))
    for jobs in (1, 2):
        target = bench.work / f"j{jobs}"
        bench.take(f"sweep-j{jobs}", lambda jobs=jobs, target=target: sweep_build(
            fresh_sweep(bench.project, target), jobs, ours=bench.ours, expect=(points, 0)))
    if bench.cluster is not None:
        address = bench.cluster.address
        bench.take("sweep-dask", lambda: sweep_build(fresh_sweep(bench.project, bench.work / "dask"), 2,
                                                     "--scheduler", address, ours=bench.ours, expect=(points, 0)))


def _measure_added(bench: SweepRun) -> None:
    """A copy of the last -j2 build, one weight decay more: exactly `seeds` points executed."""
    grown = bench.grid.grown(round(0.001 * (len(bench.grid.wds) + 1), 6))
    added = grown.points - bench.grid.points
    jobs = os.cpu_count() or 1
    row = bench.row("sweep-add", f"sweep: {added} points added to a built one", "labbook", jobs,
                    f"'{added} executed, {bench.grid.points} cached' and the gather, checked")
    row.posts = grown.points

    def once() -> Sample:
        copy = bench.work / "grown"
        if copy.exists():
            shutil.rmtree(copy)
        shutil.copytree(bench.work / "j2", copy, symlinks=True)
        (copy / "posts" / "toy-sweep.md").write_text(post_text(grown), encoding="utf-8")
        return sweep_build(copy, jobs, ours=bench.ours, expect=(added, bench.grid.points))

    for _ in range(bench.settings.cold_repeat):
        bench.take("sweep-add", once)
