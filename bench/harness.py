"""The measuring harness: one command run, timed and measured; medians; a quiet machine.

in → out: a command line and a folder → a `Sample` (wall clock, peak RSS of the process and
of its tree, the CPU that other processes used meanwhile); samples → a `Measurement` (one row,
its median). Knows nothing of labbook or its peers: the scenarios say what to run.

Every process gets one BLAS thread and PYTHONPATH on a frozen copy of labbook's source (the
repository may change while a benchmark runs). The machine may be shared: a run waits for
other processes to go quiet, and is taken again when they disturbed it.
"""

from __future__ import annotations

import compileall
import contextlib
import datetime as dt
import itertools
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
"""bench/: where RESULTS.md and results.json are written."""
BIN = Path(sys.executable).parent
"""The venv this script runs in: labbook, jupyter-book and jupyter are taken from it."""
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


# --- what is measured ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Sample:
    """One timed run of one command."""

    wall: float
    rss_self_mb: float
    """Peak RSS of the process we started (labbook itself; not its kernels)."""
    rss_tree_mb: float
    """Peak of the summed RSS of that process and all its descendants (kernels), polled."""
    children: int
    """Most descendants seen at once; 0 means rss_self_mb is exact (ru_maxrss)."""
    executed: int | None = None
    """Kernels the build started, read from the tool's own output (a sweep: the points run)."""
    foreign: float = 0.0
    """Cores kept busy by processes that are not ours, on average over the run: the noise."""
    retried: int = 0
    """Runs killed by a SIGKILL that was not ours and run again (see `run`)."""
    event: float | None = None
    """`labbook serve` rows: seconds from the save to the reload event (the wall is to the page fetched)."""
    detail: dict[str, float] = field(default_factory=dict)
    """What the run said of itself (a plain loop: seconds in its points, in its gather; a sweep: counts)."""


@dataclass(slots=True)
class Measurement:
    """One row of the table: a scenario, the tool, its size, and its samples."""

    key: str
    scenario: str
    tool: str
    posts: int
    """Posts, or a sweep's points: what the `per post` column divides by."""
    jobs: int | str | None
    samples: list[Sample] = field(default_factory=list)
    note: str = ""
    measured: str = ""
    """When the run that measured this row started (ISO date): rows of earlier runs are kept by --only."""

    @property
    def runs(self) -> int:
        return len(self.samples)

    @property
    def wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def spread(self) -> tuple[float, float]:
        walls = [s.wall for s in self.samples]
        return min(walls), max(walls)

    @property
    def rss_self_mb(self) -> float:
        return max(s.rss_self_mb for s in self.samples)

    @property
    def foreign(self) -> float:
        return max(s.foreign for s in self.samples)

    @property
    def executed(self) -> str:
        counts = sorted({s.executed for s in self.samples if s.executed is not None})
        return "/".join(map(str, counts)) if counts else "–"

    def median_detail(self, name: str) -> float | None:
        """The median of one `Sample.detail` figure over the samples that have it."""
        values = [s.detail[name] for s in self.samples if name in s.detail]
        return statistics.median(values) if values else None


@dataclass(slots=True)
class Settings:
    sizes: list[int]
    repeat: int
    peers: bool
    quick: bool
    cpu_posts: int
    workdir: Path
    only: str | None = None
    out: Path = HERE
    """Where RESULTS.md and results.json are written."""
    sweep_points: int = 64
    """Points of the sweep scenario (a multiple of `sweep_seeds`)."""
    sweep_seeds: int = 8
    """The sweep's seed axis; adding one weight decay adds this many points."""
    point_seconds: float = 0.5
    """What one point of the sweep's toy model should cost, single-threaded (calibrated at start)."""

    @property
    def cold_repeat(self) -> int:
        """Cold builds of 20 posts take ~30 s each: fewer runs than the sub-second ones."""
        return max(1, min(self.repeat, 3))

    @property
    def peer_cold_repeat(self) -> int:
        return max(1, min(self.repeat, 2))


# --- the environment of every run ---------------------------------------------------------------------


SNAPSHOT: list[Path] = []
"""The frozen copy of labbook's source that every labbook process (and kernel) imports."""


def environment(**extra: str) -> dict[str, str]:
    """One BLAS thread everywhere, as labbook gives its kernels, so every tool does the same work;
    and PYTHONPATH on the labbook snapshot (labbook's kernels and Dask workers inherit it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABBOOK_", "JPY_")) and k != "MPLBACKEND"}
    env.update({name: "1" for name in THREAD_VARS})
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    if SNAPSHOT:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SNAPSHOT[0]), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def snapshot_labbook(workdir: Path) -> str:
    """Copy labbook's package as it is now, and make every run import that copy.

    The repository may change while the benchmark runs (it is being worked on); without a
    snapshot one table could mix several versions. Returns the commit and any uncommitted files.
    """
    source = HERE.parent / "labbook"
    target = workdir / "labbook-src"
    shutil.copytree(source, target / "labbook", ignore=shutil.ignore_patterns("__pycache__"))  # follows templates/ link
    compileall.compile_dir(target, quiet=1)  # as pip does at install: no run pays for compiling labbook
    SNAPSHOT[:] = [target]
    found = subprocess.run([sys.executable, "-c", "import labbook; print(labbook.__file__)"],
                           env=environment(), cwd=workdir, capture_output=True, text=True, check=True).stdout.strip()
    if not found.startswith(str(target)):
        raise SystemExit(f"the labbook snapshot is not the one imported: {found}")
    git = ["git", "-C", str(HERE.parent)]
    commit = subprocess.run([*git, "log", "-1", "--format=%h (%ci)"], capture_output=True, text=True,
                            check=False).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "labbook"], capture_output=True, text=True,
                           check=False).stdout.split()
    changed = [name for name in dirty if "/" in name]
    described = f"commit {commit}"
    return described + (f"; plus uncommitted changes to {', '.join(changed)}" if changed else "; no uncommitted changes")


# --- a quiet machine ---------------------------------------------------------------------------------


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent not idle since boot, from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds of this script (its poller thread included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def tree_seconds(pid: int) -> float:
    """CPU seconds of a live process, its live descendants and the children they reaped
    (a Dask cluster we started: its CPU is ours, not the machine's noise)."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


WAIT_BUDGET = 20 * 60.0
"""Seconds the whole benchmark may spend waiting for a quiet machine; then it only records the load."""
WAITED = [0.0]


def wait_quiet(limit: float = 90.0, threshold: float = 0.15, ours: Callable[[], float] | None = None) -> float:
    """Wait (at most `limit` s) until other processes use < `threshold` cores; return what they used.

    The machine may be shared: someone else's test suite on 2 cores would double our timings.
    `ours` counts the CPU seconds of processes we keep running meanwhile (an idle Dask cluster).
    """
    waited = 0.0
    while True:
        before, mine = busy_seconds(), (ours() if ours else 0.0)
        time.sleep(1.0)
        load = busy_seconds() - before - ((ours() - mine) if ours else 0.0)
        if load < threshold or waited >= limit or WAITED[0] + waited >= WAIT_BUDGET:
            WAITED[0] += waited
            if waited:
                print(f"  (waited {waited:.0f} s for other processes to go quiet; now {load:.2f} cores)", flush=True)
            return load
        waited += 1.0


NOISY = 0.25
"""Cores used by other processes above which a run is taken again (2 cores here)."""
INCIDENTS: list[str] = []
"""Runs that were disturbed or failed, for the report."""


def quiet(once: Callable[[], Any], wait_first: bool = True, attempts: int = 3,
          ours: Callable[[], float] | None = None) -> Any:
    """`once()` (a Sample, or a Finished), taken again while other processes disturbed it.

    After `attempts` disturbed runs the last one is kept: its row shows the load it ran under.
    """
    for attempt in range(attempts):
        if wait_first or attempt:
            wait_quiet(ours=ours)
        result = once()
        sample = result if isinstance(result, Sample) else result.sample
        if sample.foreign <= NOISY:
            return result
        print(f"  (a run was disturbed: other processes used {sample.foreign:.2f} cores; taking it again)", flush=True)
    INCIDENTS.append(f"{dt.datetime.now():%H:%M:%S} a run stayed disturbed after {attempts} attempts "
                     f"({sample.foreign:.2f} cores used by other processes); kept")
    return result


# --- one command ---------------------------------------------------------------------------------------


class Poller(threading.Thread):
    """Peak RSS of one process (every 10 ms) and of its whole tree (every 50 ms)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process(pid)
        self.stop = threading.Event()
        self.self_peak = 0
        self.tree_peak = 0
        self.children = 0

    def run(self) -> None:
        import psutil

        tick = 0
        while not self.stop.is_set():
            try:
                rss = self.process.memory_info().rss
                self.self_peak = max(self.self_peak, rss)
                if tick % 5 == 0:
                    self._tree(rss)
            except psutil.Error:
                return
            tick += 1
            self.stop.wait(0.01)

    def _tree(self, rss: int) -> None:
        import psutil

        kids = self.process.children(recursive=True)
        self.children = max(self.children, len(kids))
        total = rss
        for kid in kids:
            with contextlib.suppress(psutil.Error):
                total += kid.memory_info().rss
        self.tree_peak = max(self.tree_peak, total)


@dataclass(slots=True)
class Finished:
    sample: Sample
    code: int
    output: str


def run(command: Sequence[str | Path], cwd: Path, env: dict[str, str] | None = None,
        ours: Callable[[], float] | None = None) -> Finished:
    """Run, time (wall clock), and measure peak memory; output goes to a file, never a pipe.

    `ours` counts the CPU seconds of other processes of this benchmark that the command uses
    (a Dask cluster's workers): left out of the other processes' load.
    """
    with tempfile.TemporaryFile(mode="w+b") as log:
        busy, mine, helpers = busy_seconds(), own_seconds(), (ours() if ours else 0.0)
        began = time.perf_counter()
        process = subprocess.Popen([str(c) for c in command], cwd=cwd, env=env or environment(),
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        poller = Poller(process.pid)
        poller.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - began
        busy, mine = busy_seconds() - busy, own_seconds() - mine
        helpers = (ours() - helpers) if ours else 0.0
        process.returncode = os.waitstatus_to_exitcode(status)
        poller.stop.set()
        poller.join()
        log.seek(0)
        output = log.read().decode(errors="replace")
    maxrss = usage.ru_maxrss * 1024  # kB on Linux; the max over the process and its reaped children
    exact = poller.children == 0
    spent = usage.ru_utime + usage.ru_stime  # the process and the children it reaped (kernels)
    sample = Sample(
        wall=wall,
        rss_self_mb=(maxrss if exact else poller.self_peak) / 2**20,
        rss_tree_mb=max(poller.tree_peak, poller.self_peak, maxrss if exact else 0) / 2**20,
        children=poller.children,
        foreign=max(0.0, busy - spent - mine - helpers) / wall,
    )
    return Finished(sample, process.returncode, output)


def checked(finished: Finished, what: str) -> Finished:
    if finished.code != 0:
        raise SystemExit(f"{what} failed with exit code {finished.code}:\n{finished.output[-3000:]}")
    return finished


# --- rows ---------------------------------------------------------------------------------------------


def progress(row: Measurement) -> None:
    walls = ", ".join(f"{s.wall:.2f}" for s in row.samples)
    print(f"  {row.key:<22} {row.tool:<14} n={row.posts:<5} runs: {walls} s  (other load ≤ {row.foreign:.2f} cores)",
          flush=True)


def measure_repeated(key: str, scenario: str, tool: str, posts: int, jobs: int | None, repeat: int,
                     once: Callable[[int], Sample], warmup: bool = False, note: str = "") -> Measurement:
    """`once(round)` `repeat` times, each round a new number (a code edit never repeats a value);
    with `warmup`, one more run first that is not counted (page cache)."""
    row = Measurement(key, scenario, tool, posts, jobs, note=note)
    rounds = itertools.count()
    if warmup:
        wait_quiet()
        once(next(rounds))
    for _ in range(repeat):
        row.samples.append(quiet(lambda: once(next(rounds))))
    progress(row)
    return row
