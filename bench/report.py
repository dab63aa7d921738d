"""The report: the rows and DESIGN.md's targets → bench/RESULTS.md and bench/results.json.

in → out: the measured rows, the settings, the machine → the Markdown report (how to run, the
method, the machine, the table, labbook against its peers, the targets with PASS/FAIL) and
the raw samples as JSON. A run restricted with `--only` keeps the rows of earlier runs that it
did not measure again (each row says when it was measured), so one group can be re-run alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import harness
from .harness import Measurement, Sample, Settings

RESULTS_MD = "RESULTS.md"
RESULTS_JSON = "results.json"


@dataclass(slots=True)
class Target:
    """A promise of DESIGN.md's (or an issue's) performance budget, checked against the measurements."""

    name: str
    measured: str
    passed: bool | None
    """None when a measurement it needs was not run (e.g. --no-peers)."""


@dataclass(slots=True)
class RunInfo:
    """One benchmark run whose rows are in the report."""

    date: str
    source: str
    minutes: float
    waited: float
    groups: str
    quick: bool = False
    load: str = ""
    """The machine's load average (1, 5, 15 min) at the start and at the end: others' processes and ours."""


# --- targets ------------------------------------------------------------------------------------------


class _Targets:
    """Collects targets; one whose rows were not measured says so."""

    def __init__(self, results: dict[str, Measurement]) -> None:
        self.results = results
        self.out: list[Target] = []

    def add(self, name: str, needs: Sequence[str], check: Callable[..., tuple[str, bool]]) -> None:
        rows = [self.results.get(k) for k in needs]
        if any(r is None or not r.samples for r in rows):
            self.out.append(Target(name, "not measured", None))
        else:
            measured, ok = check(*rows)
            self.out.append(Target(name, measured, ok))


def targets(results: dict[str, Measurement]) -> list[Target]:
    """DESIGN.md's budget and issue 17's sweep goals, each checked against the medians."""
    collected = _Targets(results)
    _build_targets(collected)
    _sweep_targets(collected)
    return collected.out


def _build_targets(t: _Targets) -> None:
    t.add("no-op of 1000 posts < 2 s wall", ["noop-1000"],
          lambda r: (f"{r.wall:.2f} s", r.wall < 2.0))
    t.add("no-op of 1000 posts: labbook peak RSS < 300 MB", ["noop-1000"],
          lambda r: (f"{r.rss_self_mb:.0f} MB", r.rss_self_mb < 300))
    t.add("prose edit of 1 among 100 within 0.3 s of no-op", ["prose-100", "noop-100"],
          lambda p, n: (f"{p.wall:.2f} s vs {n.wall:.2f} s (+{p.wall - n.wall:.2f} s)", p.wall - n.wall <= 0.3))
    t.add("cold -j1 of 20 posts ≤ 0.5 s/post above the plain-Python floor", ["cold-20-j1", "floor"],
          lambda c, f: (f"{c.wall:.1f} s vs {f.wall:.1f} s: +{(c.wall - f.wall) / c.posts:.2f} s/post",
                        (c.wall - f.wall) / c.posts <= 0.5))
    t.add("-j2 ≥ 1.7× faster than -j1 on CPU-bound posts", ["cpu-j1", "cpu-j2", "cpu-floor-j1", "cpu-floor-j2"],
          lambda a, b, f1, f2: ((f"{a.wall:.2f} s / {b.wall:.2f} s = {a.wall / b.wall:.2f}× (the same code as plain "
                                f"scripts, 1 vs 2 at a time, same rounds: {f1.wall / f2.wall:.2f}×)"), a.wall / b.wall >= 1.7))
    t.add("vs Jupyter Book, 20 posts: cold (-j1) no slower", ["cold-20-j1", "jb-cold"],
          lambda a, b: (f"{a.wall:.1f} s vs {b.wall:.1f} s ({b.wall / a.wall:.2f}× faster)", a.wall <= b.wall))
    t.add("vs Jupyter Book, 20 posts: no-op ≥ 5× faster", ["noop-20", "jb-noop"],
          lambda a, b: (f"{a.wall:.2f} s vs {b.wall:.2f} s ({b.wall / a.wall:.1f}×)", b.wall / a.wall >= 5))
    t.add("serve: a prose edit reaches the open page < 0.2 s (example project)", ["serve-reload-example"],
          lambda r: (f"{r.wall:.3f} s (reload event {statistics.median(s.event or 0.0 for s in r.samples):.3f} s)",
                     r.wall < 0.2))
    t.add("prose edit of 1 among 20 < 0.2 s", ["prose-20"], lambda r: (f"{r.wall:.2f} s", r.wall < 0.2))
    t.add("no-op of 20 posts < 0.13 s", ["noop-20"], lambda r: (f"{r.wall:.2f} s", r.wall < 0.13))
    t.add("vs Jupyter Book, 20 posts: prose edit ≥ 3× faster", ["prose-20", "jb-prose"],
          lambda a, b: (f"{a.wall:.2f} s vs {b.wall:.2f} s ({b.wall / a.wall:.1f}×)", b.wall / a.wall >= 3))


def _sweep_targets(t: _Targets) -> None:
    t.add("sweep: labbook -j1 ≤ 0.1 s a point above a plain loop over the grid", ["sweep-j1", "sweep-floor"],
          lambda a, f: ((f"{a.wall:.1f} s vs {f.wall:.1f} s for {a.posts} points: "
                        f"+{(a.wall - f.wall) / a.posts:.3f} s a point"), (a.wall - f.wall) / a.posts <= 0.1))
    t.add("sweep: -j2 ≥ 1.8× faster than -j1", ["sweep-j1", "sweep-j2", "sweep-floor", "sweep-floor-j2"],
          lambda a, b, f1, f2: ((f"{a.wall:.1f} s / {b.wall:.1f} s = {a.wall / b.wall:.2f}× (the plain loop's points, "
                                f"1 vs 2 processes, same rounds: {_plain_ratio(f1, f2):.2f}×)"), a.wall / b.wall >= 1.8))
    t.add("sweep: Dask (2 workers) within 15% of -j2", ["sweep-dask", "sweep-j2"],
          lambda d, b: (f"{d.wall:.1f} s vs {b.wall:.1f} s ({(d.wall / b.wall - 1) * 100:+.0f}%)", d.wall <= 1.15 * b.wall))
    t.add("sweep: adding points to a built sweep executes exactly those", ["sweep-add"], _added)


def _plain_ratio(one: Measurement, two: Measurement) -> float:
    """The plain loop's points alone (its wall minus its gather) over the same points in 2 processes."""
    gather = one.median_detail("gather_seconds") or 0.0
    return (one.wall - gather) / two.wall


def _added(row: Measurement) -> tuple[str, bool]:
    cached = {int(s.detail.get("points_cached", -1)) for s in row.samples}
    gathers = {int(s.detail.get("gathers", -1)) for s in row.samples}
    new = row.posts - max(cached)
    ok = row.executed == str(new) and len(cached) == 1 and gathers == {1}
    return ((f"{row.executed} executed, {'/'.join(map(str, sorted(cached)))} cached, gather "
            f"{'/'.join(map(str, sorted(gathers)))}× ({row.runs} runs; median {row.wall:.1f} s)"), ok)


def ratios(results: dict[str, Measurement]) -> list[tuple[str, str, float, float]]:
    """labbook's median time over each peer's, per scenario (< 1: labbook is faster)."""
    pairs = [
        ("cold build, 20 posts (-j1)", "cold-20-j1", "jb-cold"),
        ("cold build, 20 posts (-j default)", "cold-20-j2", "jb-cold"),
        ("no-op rebuild, 20 posts", "noop-20", "jb-noop"),
        ("prose edit of 1 of 20", "prose-20", "jb-prose"),
        ("code edit of 1 of 20", "code-20", "jb-code"),
        ("cold build, 20 posts (-j1)", "cold-20-j1", "nbconvert-cold"),
        ("cold build, 20 posts (-j1)", "cold-20-j1", "nbconvert-all-cold"),
        ("no-op rebuild, 20 posts (nbconvert re-executes)", "noop-20", "nbconvert-cold"),
    ]
    rows = []
    for scenario, ours, theirs in pairs:
        if ours in results and theirs in results:
            a, b = results[ours], results[theirs]
            rows.append((scenario, b.tool, a.wall / b.wall, b.wall / a.wall))
    return rows


# --- the machine ------------------------------------------------------------------------------------------


LIBRARIES = ["labbook", "jupyter-book", "myst-nb", "sphinx", "jupytext", "nbclient", "nbconvert", "jupyter_client",
             "ipykernel", "numpy", "matplotlib", "distributed", "psutil"]


def machine() -> dict[str, str]:
    import psutil

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "CPU": cpu,
        "cores": f"{os.cpu_count()} logical, {psutil.cpu_count(logical=False)} physical",
        "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "libraries": ", ".join(_versions(LIBRARIES)),
    }


def _versions(names: Sequence[str]) -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return found


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


# --- the Markdown -------------------------------------------------------------------------------------------


def table(results: dict[str, Measurement]) -> list[str]:
    lines = [
        ("| scenario | tool | posts/points | -j | runs | median (s) | min–max (s) | per post/point (s) | labbook RSS (MB) "
        "| executed | other load | note |"),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in results.values():
        low, high = row.spread
        rss = f"{row.rss_self_mb:.0f}" if row.tool == "labbook" else "–"
        lines.append(
            f"| {row.scenario} | {row.tool} | {row.posts} | {row.jobs or '–'} | {row.runs} | {row.wall:.2f} | "
            f"{low:.2f}–{high:.2f} | {row.wall / row.posts:.3f} | {rss} | {row.executed} | {row.foreign:.2f} | {row.note} |"
        )
    return lines


HOW_TO_RUN = """\
## How to run

```sh
python -m venv /root/venv-bench && /root/venv-bench/bin/pip install -e '.[examples,bench]'
/root/venv-bench/bin/python bench/bench.py --quick          # smoke test, a few minutes
/root/venv-bench/bin/python bench/bench.py                  # full run, sizes 20,100,1000, peers, the sweep
/root/venv-bench/bin/python bench/bench.py --only sweep     # the sweep rows alone (~10 min on a quiet machine)
```

Options: `--sizes 20,100,1000`, `--repeat 5` (sub-second measurements; cold builds and the sweep's
rounds use min(repeat, 3) runs, peers' cold builds min(repeat, 2)), `--peers/--no-peers`, `--quick`
(sizes 20, repeat 2, no peers, 4 CPU-bound posts, a sweep of 16 points of ~0.05 s), `--cpu-posts 8`,
`--sweep-points 64`, `--sweep-seeds 8`, `--point-seconds 0.5`, `--only builds|serve|sweep`, `--max-wait 20`
(minutes the run may wait for a quiet machine), `--workdir DIR`,
`--out DIR` (where the report goes; default bench/).
The script (`bench/bench.py`, or `python -m bench`; the package is bench/: harness.py, posts.py,
peers.py, scenarios/, report.py) rewrites this file and `bench/results.json` (every sample); a run
with `--only` keeps the other rows of the previous report, each with the date it was measured."""

METHOD = """\
- Synthetic posts (`post_text` in bench/posts.py): front matter with title, date, description, tags,
  status, models, data, phenomena; prose with inline `$…$` and display `$$…$$` math; three python
  cells: eigenvalues of a random 200×200 matrix seeded by the post number (~30 ms), a matplotlib
  figure (`plt.plot`, `plt.show()`), a print, and a CSV written with `np.savetxt`. Every post's code
  differs (the seed), so no two posts share a cache entry. The CPU-bound variant computes 12
  eigen-decompositions of 400×400 (~1.5 s single-threaded) per post. Its four rows (labbook -j1
  and -j2, the same code as plain scripts 1 and 2 at a time) are taken in turn, {repeat} rounds:
  the plain scripts' ratio is what two cores of this machine give to two processes at that time
  (a shared host makes it less than 2), the ceiling for labbook's own ratio.
- Every tool runs as a subprocess, as typed by a user: `labbook --root DIR build -j N -q`,
  `jupyter-book build DIR`, `jupyter nbconvert --to notebook --execute`, `python post.py`. Wall clock.
- Each figure is the **median** of the number of runs in the `runs` column ({repeat} for
  rebuilds, {cold} for cold builds of ≤ 20 posts, 1 for cold builds of 100 and 1000,
  {peer_cold} for the peers' cold builds; no-op series start with one uncounted warm-up run).
- Cold = a fresh copy of the posts, no `.labbook/` and no `site/` (Jupyter Book: no `_build/`).
  The no-op, prose-edit and code-edit rows then run on the last cold-built copy. A prose edit rewrites
  one sentence of one post; a code edit sets a constant of one post's figure cell to a value never
  used before. labbook's own summary line is checked: `0 executed` for no-op and prose, `1 executed`
  for a code edit (Jupyter Book: its `Executing notebook` log lines are counted).
- **Sweep** (issue 17; bench/scenarios/sweeps.py): one post with `labbook: {{sweep: {{wd: [...], seed: [...]}}}}`,
  {points} points ({wds} weight decays × {seeds} seeds). Each point trains a two-layer tanh network
  (16→32→1, 256 samples) on a random teacher by full-batch gradient descent, for a number of steps
  calibrated at start so that a point costs ~{point_seconds:g} s single-threaded here; it writes its
  curve as a CSV and reports 3 scalars with `labbook.observe`. The gather (`#| gather: true`) reads
  the table and every curve and draws one figure. The **plain loop** is the same model and gather
  code in one Python process, looping over the grid (Agg; the PNG saved as labbook's backend makes
  it); the same points split over **2 processes** at once (no gather) give the machine's ceiling
  for -j2. labbook's rows are cold builds (`-j1`, `-j2`, and `--scheduler` on a distributed
  `LocalCluster` of 2 worker processes × 1 thread on loopback, started once for all rounds, so its
  workers' kernel servers stay warm between builds as a real cluster's do). These five rows are
  taken in turn, {cold} rounds, so their ratios are side by side. **Overhead per point** is
  (labbook -j1 − plain loop) / points. The **added points** row copies the last built -j2 project,
  adds one weight decay ({seeds} new points) and checks labbook's own summary line:
  `points: {seeds} executed, {points} cached of …; 1 gather executed`.
- Every process gets one BLAS thread (`OMP_NUM_THREADS=1` …), which labbook gives its kernels
  anyway, so all tools do the same numpy work. The floor runs with `MPLBACKEND=Agg`, where
  `plt.show()` draws nothing; the `+ PNG savefig` floor writes the PNG that labbook's inline backend
  makes (dpi 110, tight bbox), to separate figure rendering from kernel overhead.
- **labbook RSS** is the peak resident memory of the labbook process itself, not of its kernels (they
  are separate processes): exact (`ru_maxrss` from `wait4`) when labbook started no child process,
  as in no-op and prose-edit builds; polled with psutil every 10 ms otherwise.
- labbook writes a Jekyll source tree (`site/`, turned into HTML by `jekyll build` or served by
  `labbook serve`); Jupyter Book's build ends with HTML. Jupyter Book reads the same `.md` files
  through `nb_custom_formats: {{.md: [jupytext.reads, {{fmt: md}}]}}`, with `execute_notebooks: cache`,
  and executes notebooks one after the other; so the like-for-like cold comparison is labbook `-j1`.
- The machine may be shared. Before each run the script waits (≤ 90 s) until other processes use
  < 0.15 cores, and takes a run again (up to 3 times) when others used > 0.25 cores during it.
  **other load** is the most CPU (in cores, averaged over a run) that processes not started by
  this benchmark used during any run of the row, from `/proc/stat` minus our own rusage (and the
  Dask cluster's processes). Rows with other load above ~0.2 cores on this 2-core machine are
  slower than they should be."""


def method(settings: Settings) -> str:
    seeds = min(settings.sweep_seeds, settings.sweep_points)
    return METHOD.format(repeat=settings.repeat, cold=settings.cold_repeat, peer_cold=settings.peer_cold_repeat,
                         points=settings.sweep_points, seeds=seeds, wds=settings.sweep_points // seeds,
                         point_seconds=settings.point_seconds)


def machine_lines(info: dict[str, str], runs: Sequence[RunInfo]) -> list[str]:
    lines = [f"- {k}: {v}" for k, v in info.items()]
    for number, done in enumerate(runs):
        which = "this run" if number == len(runs) - 1 else "an earlier run"
        lines.append(f"- {which} ({done.groups}{', --quick' if done.quick else ''}): started {done.date}; labbook "
                     f"source: {done.source}; {done.minutes:.1f} min, of which {done.waited:.1f} min waiting for "
                     f"other processes to go quiet" + (f"; load average {done.load}" if done.load else ""))
    return lines


def report(results: dict[str, Measurement], settings: Settings, info: dict[str, str], runs: Sequence[RunInfo]) -> str:
    mark = {True: "**PASS**", False: "**FAIL**", None: "not run"}
    lines = ["# labbook benchmark", "", HOW_TO_RUN, "", "## Method", "", method(settings), "",
             "## Machine", "", *machine_lines(info, runs), "", "## Results", "", *table(results), ""]
    peer_rows = ratios(results)
    if peer_rows:
        lines += ["## labbook vs peers (same 20 posts)", "",
                  "| scenario | peer | labbook / peer time | labbook is … faster |", "| --- | --- | ---: | ---: |"]
        lines += [f"| {s} | {peer} | {r:.2g} | {f:.1f}× |" for s, peer, r, f in peer_rows]
        lines.append("")
    if harness.INCIDENTS:
        lines += ["## Incidents", "", "Runs disturbed by other processes on this shared machine, or failed and run again:", ""]
        lines += [f"- {line}" for line in harness.INCIDENTS]
        lines.append("")
    lines += ["## Targets", "", "| target | measured | verdict |", "| --- | --- | --- |"]
    lines += [f"| {t.name} | {t.measured} | {mark[t.passed]} |" for t in targets(results)]
    lines.append("")
    return "\n".join(lines)


# --- results.json, and the rows of earlier runs -------------------------------------------------------


def earlier(path: Path) -> tuple[dict[str, Measurement], list[RunInfo]]:
    """The rows and runs of the previous results.json (nothing when it is missing or unreadable)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, []
    runs = [RunInfo(**r) for r in raw.get("runs", [])]
    rows = {}
    for key, row in raw.get("results", {}).items():
        samples = [Sample(**s) for s in row.pop("samples")]
        rows[key] = Measurement(**row, samples=samples)
    return rows, runs


def merged(results: dict[str, Measurement], this: RunInfo, settings: Settings) -> tuple[dict[str, Measurement], list[RunInfo]]:
    """This run's rows; with `--only`, after the earlier rows it did not measure again."""
    if not settings.only:
        return results, [this]
    rows, runs = earlier(settings.out / RESULTS_JSON)
    rows = {k: v for k, v in rows.items() if k not in results}
    rows.update(results)
    kept = {row.measured for row in rows.values()}
    return rows, [*(r for r in runs if r.date in kept and r.date != this.date), this]


def save(results: dict[str, Measurement], settings: Settings, info: dict[str, str], this: RunInfo) -> None:
    rows, runs = merged(results, this, settings)
    settings.out.mkdir(parents=True, exist_ok=True)
    (settings.out / RESULTS_MD).write_text(report(rows, settings, info, runs), encoding="utf-8")
    raw: dict[str, Any] = {
        "machine": info, "runs": [dataclasses.asdict(r) for r in runs],
        "settings": {"sizes": settings.sizes, "repeat": settings.repeat, "peers": settings.peers, "quick": settings.quick,
                     "cpu_posts": settings.cpu_posts, "sweep_points": settings.sweep_points,
                     "sweep_seeds": settings.sweep_seeds, "point_seconds": settings.point_seconds},
        "results": {k: dataclasses.asdict(v) for k, v in rows.items()},
    }
    (settings.out / RESULTS_JSON).write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")
    print("\n" + "\n".join(table(results)))
    print("\n" + "\n".join(f"{'PASS' if t.passed else 'FAIL' if t.passed is False else 'n/a '}  {t.name}: {t.measured}"
                           for t in targets(rows)))
    print(f"\nwrote {settings.out / RESULTS_MD}")


def now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="minutes")
