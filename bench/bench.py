"""Benchmark labbook against its own targets, a plain-Python floor, nbconvert and Jupyter Book 1.x.

    python bench/bench.py [--sizes 20,100,1000] [--repeat 5] [--peers/--no-peers] [--quick]

Every tool runs as a subprocess, exactly as a user types it, on synthetic posts generated here
(front matter, prose with math, 3 python cells: numpy, a matplotlib figure, a CSV). Each figure is
the median of k runs (k is printed next to it), wall clock. Peak RSS is that of the labbook process
itself (kernels are separate processes, reported apart): exact from wait4's ru_maxrss when labbook
started no child, else polled with psutil every 10 ms. Writes bench/RESULTS.md and bench/results.json.
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import datetime as dt
import itertools
import json
import os
import platform
import re
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
BIN = Path(sys.executable).parent
"""The venv this script runs in: labbook, jupyter-book and jupyter are taken from it."""
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
SUMMARY = re.compile(r"built (\d+) posts? \((\d+) executed, (\d+) cached\)")


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
    """Kernels the build started, read from the tool's own output."""
    foreign: float = 0.0
    """Cores kept busy by processes that are not ours, on average over the run: the noise."""
    retried: int = 0
    """Runs killed by a SIGKILL that was not ours and run again (see `run`)."""
    event: float | None = None
    """`labbook serve` rows: seconds from the save to the reload event (the wall is to the page fetched)."""


@dataclass(slots=True)
class Measurement:
    """One row of the table: a scenario, the tool, its size, and its samples."""

    key: str
    scenario: str
    tool: str
    posts: int
    jobs: int | None
    samples: list[Sample] = field(default_factory=list)
    note: str = ""

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


@dataclass(slots=True)
class Target:
    """A promise of DESIGN.md's performance budget, checked against the measurements."""

    name: str
    measured: str
    passed: bool | None
    """None when a measurement it needs was not run (e.g. --no-peers)."""


@dataclass(slots=True)
class Settings:
    sizes: list[int]
    repeat: int
    peers: bool
    quick: bool
    cpu_posts: int
    workdir: Path
    only: str | None = None

    @property
    def cold_repeat(self) -> int:
        """Cold builds of 20 posts take ~30 s each: fewer runs than the sub-second ones."""
        return max(1, min(self.repeat, 3))

    @property
    def peer_cold_repeat(self) -> int:
        return max(1, min(self.repeat, 2))


# --- synthetic posts ---------------------------------------------------------------------------------

TAGS = ["spectra", "random-matrices", "bench", "toy", "scaling", "noise", "linear-algebra", "stability",
        "circular-law", "outliers", "finite-size", "universality"]
MODELS = ["Ginibre matrix", "Wigner matrix", "Wishart matrix", "sparse matrix", "banded matrix"]
DATA = ["gaussian entries", "uniform entries", "rademacher entries", "heavy tails"]
PHENOMENA = ["circular law", "semicircle law", "spectral outliers", "edge universality", "level repulsion",
             "finite-size corrections", "Marchenko-Pastur law", "localisation"]

POST = """---
title: "Synthetic entry @N@: the spectrum of a random @MODEL@"
date: @DATE@
description: Eigenvalues of one random matrix, seeded by the entry number.
tags: [@TAGS@]
status: @STATUS@
models: [@MODEL@]
data: [@DATA@]
phenomena: [@PHENOMENON@]
---

This is entry number @N@ of the benchmark, and its numbers are a function of that number alone.
The spectral radius of an $n \\times n$ matrix with i.i.d. entries of variance $1/n$ tends to
$\\rho(A) \\to 1$, and its eigenvalues fill the unit disc uniformly:

$$
\\mu_n \\;\\to\\; \\frac{1}{\\pi}\\,\\mathbf{1}_{\\{|z| \\le 1\\}}\\, d^2 z .
$$

```python
import numpy as np

SEED = @N@
SIZE = @SIZE@
REPEATS = @REPEATS@
rng = np.random.default_rng(SEED)
for _ in range(REPEATS):
    a = rng.standard_normal((SIZE, SIZE)) / np.sqrt(SIZE)
    eig = np.linalg.eigvals(a)
radius = np.abs(eig).max()
print(f"entry {SEED}: spectral radius {radius:.4f} for n = {SIZE}")
```

The figure shows the eigenvalues against the unit circle $|z| = 1$.

```python
#| label: fig-spectrum
#| caption: Eigenvalues in the complex plane, and the unit circle.
import matplotlib.pyplot as plt

MARKER_SIZE = 3
t = np.linspace(0, 2 * np.pi, 200)
plt.figure(figsize=(4, 4))
plt.plot(eig.real, eig.imag, ".", ms=MARKER_SIZE)
plt.plot(np.cos(t), np.sin(t), "k-", lw=0.8)
plt.gca().set_aspect("equal")
plt.show()
```

The raw eigenvalues are published as a CSV file.

```python
np.savetxt("eigenvalues.csv", np.c_[eig.real, eig.imag], delimiter=",", header="re,im", comments="")
print(f"wrote eigenvalues.csv: {eig.size} rows")
```
"""

PROSE_SENTENCE = "and its numbers are a function of that number alone."
CODE_CONSTANT = "MARKER_SIZE = 3"


def post_text(number: int, cpu_bound: bool = False) -> str:
    """Post `number`: the same text for a given number at every size, so sizes share posts.

    The default is ~30 ms of numpy (eigenvalues of a 200x200 matrix); `cpu_bound` makes it
    ~1.5 s of single-threaded numpy (12 matrices of 400x400), for the -j scaling measurement.
    """
    date = dt.date(2023, 1, 1) + dt.timedelta(days=number)
    values = {
        "N": str(number), "DATE": date.isoformat(), "MODEL": MODELS[number % len(MODELS)],
        "TAGS": ", ".join([TAGS[number % len(TAGS)], TAGS[(number * 7 + 3) % len(TAGS)]]),
        "STATUS": ("partial", "open", "supported", "refuted")[number % 4],
        "DATA": DATA[number % len(DATA)], "PHENOMENON": PHENOMENA[number % len(PHENOMENA)],
        "SIZE": "400" if cpu_bound else "200", "REPEATS": "12" if cpu_bound else "1",
    }
    text = POST
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    return text


def make_project(folder: Path, posts: int, cpu_bound: bool = False) -> Path:
    """A labbook project: posts/ and a pyproject.toml with [tool.labbook] title = "bench"."""
    (folder / "posts").mkdir(parents=True)
    (folder / "pyproject.toml").write_text('[tool.labbook]\ntitle = "bench"\n', encoding="utf-8")
    for number in range(1, posts + 1):
        (folder / "posts" / f"entry-{number:04d}.md").write_text(post_text(number, cpu_bound), encoding="utf-8")
    return folder


def fresh_copy(project: Path, target: Path) -> Path:
    """The sources only (no .labbook/, no site/): what a cold build starts from."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(project / "pyproject.toml", target / "pyproject.toml")
    shutil.copytree(project / "posts", target / "posts")
    return target


def first_post(folder: Path) -> Path:
    return min(folder.glob("entry-*.md"))


def edit_prose(path: Path, round_: int) -> None:
    """Change one sentence of prose; the code cells stay byte for byte the same."""
    text = path.read_text(encoding="utf-8")
    sentence = re.search(r"and its numbers are a function of that number alone[^\n]*", text)
    assert sentence, f"{path}: the sentence to edit is gone"
    path.write_text(text.replace(sentence.group(0), f"{PROSE_SENTENCE} (Edit {round_}.)"), encoding="utf-8")


def edit_code(path: Path, round_: int) -> None:
    """Change a constant in the figure cell, to a value never used before: one run, never cached."""
    text = path.read_text(encoding="utf-8")
    new = re.sub(r"MARKER_SIZE = [0-9.]+", f"MARKER_SIZE = {4 + round_ / 100:g}", text, count=1)
    assert new != text, f"{path}: the constant to edit is gone"
    path.write_text(new, encoding="utf-8")


def code_cells(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


# --- running a command ---------------------------------------------------------------------------------


SNAPSHOT: list[Path] = []
"""The frozen copy of labbook's source that every labbook process (and kernel) imports."""


def environment(**extra: str) -> dict[str, str]:
    """One BLAS thread everywhere, as labbook gives its kernels, so every tool does the same work;
    and PYTHONPATH on the labbook snapshot (labbook's kernels inherit it)."""
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
    commit = subprocess.run([*git, "log", "-1", "--format=%h (%ci)"], capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "labbook"], capture_output=True, text=True, check=False).stdout.split()
    changed = [name for name in dirty if "/" in name]
    described = f"commit {commit}"
    return described + (f"; plus uncommitted changes to {', '.join(changed)}" if changed else "; no uncommitted changes")


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent not idle since boot, from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds of this script (its poller thread included)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


WAIT_BUDGET = 20 * 60.0
"""Seconds the whole benchmark may spend waiting for a quiet machine; then it only records the load."""
WAITED = [0.0]


def wait_quiet(limit: float = 90.0, threshold: float = 0.15) -> float:
    """Wait (at most `limit` s) until other processes use < `threshold` cores; return what they used.

    The machine may be shared: someone else's test suite on 2 cores would double our timings.
    """
    waited = 0.0
    while True:
        before = busy_seconds()
        time.sleep(1.0)
        load = busy_seconds() - before
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


def quiet(once: Callable[[], Any], wait_first: bool = True, attempts: int = 3) -> Any:
    """`once()` (a Sample, or a Finished), taken again while other processes disturbed it.

    After `attempts` disturbed runs the last one is kept: its row shows the load it ran under.
    """
    for attempt in range(attempts):
        if wait_first or attempt:
            wait_quiet()
        result = once()
        sample = result if isinstance(result, Sample) else result.sample
        if sample.foreign <= NOISY:
            return result
        print(f"  (a run was disturbed: other processes used {sample.foreign:.2f} cores; taking it again)", flush=True)
    INCIDENTS.append(f"{dt.datetime.now():%H:%M:%S} a run stayed disturbed after {attempts} attempts "
                     f"({sample.foreign:.2f} cores used by other processes); kept")
    return result


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
                    kids = self.process.children(recursive=True)
                    self.children = max(self.children, len(kids))
                    total = rss
                    for kid in kids:
                        try:
                            total += kid.memory_info().rss
                        except psutil.Error:
                            pass
                    self.tree_peak = max(self.tree_peak, total)
            except psutil.Error:
                return
            tick += 1
            self.stop.wait(0.01)


@dataclass(slots=True)
class Finished:
    sample: Sample
    code: int
    output: str


def run(command: Sequence[str | Path], cwd: Path, env: dict[str, str] | None = None) -> Finished:
    """Run, time (wall clock), and measure peak memory; output goes to a file, never a pipe."""
    with tempfile.TemporaryFile(mode="w+b") as log:
        busy, mine = busy_seconds(), own_seconds()
        began = time.perf_counter()
        process = subprocess.Popen([str(c) for c in command], cwd=cwd, env=env or environment(),
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        poller = Poller(process.pid)
        poller.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - began
        busy, mine = busy_seconds() - busy, own_seconds() - mine
        process.returncode = os.waitstatus_to_exitcode(status)
        poller.stop.set()
        poller.join()
        log.seek(0)
        output = log.read().decode(errors="replace")
    maxrss = usage.ru_maxrss * 1024  # kB on Linux; the max over the process and its reaped children
    exact = poller.children == 0
    ours = usage.ru_utime + usage.ru_stime  # the process and the children it reaped (kernels)
    sample = Sample(
        wall=wall,
        rss_self_mb=(maxrss if exact else poller.self_peak) / 2**20,
        rss_tree_mb=max(poller.tree_peak, poller.self_peak, maxrss if exact else 0) / 2**20,
        children=poller.children,
        foreign=max(0.0, busy - ours - mine) / wall,
    )
    return Finished(sample, process.returncode, output)


def checked(finished: Finished, what: str) -> Finished:
    if finished.code != 0:
        raise SystemExit(f"{what} failed with exit code {finished.code}:\n{finished.output[-3000:]}")
    return finished


# --- labbook -------------------------------------------------------------------------------------------


def labbook_build(root: Path, jobs: int, expect_executed: int | None = None) -> Sample:
    """`labbook --root DIR build -j N -q`, checked: exit 0, and the executed count it promises.

    A failed build is recorded in INCIDENTS (with its output) and run once more: on a shared
    machine another session's test suite can kill or starve it. A second failure stops everything.
    """
    command = [BIN / "labbook", "--root", root, "build", "-j", str(jobs), "-q"]
    done = run(command, cwd=root)
    retried = 0
    if done.code != 0:
        tail = "\n".join(done.output.strip().splitlines()[-25:])
        INCIDENTS.append(f"{dt.datetime.now():%H:%M:%S} `labbook build -j{jobs}` in {root.name} exited "
                         f"{done.code} after {done.sample.wall:.2f} s; output:\n\n```\n{tail}\n```")
        print(f"  !! labbook exited {done.code} after {done.sample.wall:.2f} s; running it again\n{tail}", flush=True)
        done, retried = run(command, cwd=root), 1
    checked(done, "labbook build")
    done.sample.retried = retried
    match = SUMMARY.search(done.output)
    if match is None:
        raise SystemExit(f"no summary line in labbook's output:\n{done.output[-2000:]}")
    done.sample.executed = int(match.group(2))
    if expect_executed is not None and done.sample.executed != expect_executed:
        raise SystemExit(f"expected {expect_executed} executed, labbook says: {match.group(0)}")
    return done.sample


def measure_cold(project: Path, work: Path, jobs: int, repeat: int, key: str, scenario: str,
                 attempts: int = 3) -> tuple[Measurement, Path]:
    """Fresh copies (no .labbook/, no site/), one per run; the last one stays built for what follows.

    `attempts` 1 for the long builds (100, 1000 posts): they are not taken again when disturbed.
    """
    posts = len(list((project / "posts").glob("*.md")))
    row = Measurement(key, scenario, "labbook", posts, jobs)
    target = work / f"{key}"
    for _ in range(repeat):
        row.samples.append(quiet(lambda: labbook_build(fresh_copy(project, target), jobs, expect_executed=posts),
                                 attempts=attempts))
        progress(row)
    return row, target


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


def measure_noop(built: Path, posts: int, repeat: int) -> Measurement:
    return measure_repeated(f"noop-{posts}", "no-op rebuild", "labbook", posts, 1, repeat,
                            lambda _: labbook_build(built, 1, expect_executed=0), warmup=True,
                            note="1 uncounted warm-up run")


def measure_prose_edit(built: Path, posts: int, repeat: int) -> Measurement:
    def once(round_: int) -> Sample:
        edit_prose(first_post(built / "posts"), round_)
        return labbook_build(built, 1, expect_executed=0)

    return measure_repeated(f"prose-{posts}", "prose edit of 1 post", "labbook", posts, 1, repeat, once,
                            note="'0 executed' checked")


def measure_code_edit(built: Path, posts: int, repeat: int) -> Measurement:
    def once(round_: int) -> Sample:
        edit_code(first_post(built / "posts"), round_)
        return labbook_build(built, 1, expect_executed=1)

    return measure_repeated(f"code-{posts}", "code edit of 1 post", "labbook", posts, 1, repeat, once,
                            note="'1 executed' checked")


# --- labbook serve: from a save to the open page ------------------------------------------------------

EXAMPLE = HERE.parent
"""The example project (posts/, site/ with its published runs, pyproject.toml): what an author serves."""


def example_copy(target: Path) -> Path:
    """The example project's sources and published site: served with no kernel to start."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(EXAMPLE / "pyproject.toml", target / "pyproject.toml")
    for folder in ("posts", "site"):
        shutil.copytree(EXAMPLE / folder, target / folder)
    return target


class Events(threading.Thread):
    """The server-sent events of `labbook serve`, each with the time it arrived."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.ready = threading.Event()

    def run(self) -> None:
        import urllib.request

        with urllib.request.urlopen(self.url, timeout=600) as stream:
            for raw in stream:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    self.received.append((time.perf_counter(), event))
                    if event.get("builds"):
                        self.ready.set()

    def built_after(self, start: float, page: str, timeout: float = 60.0) -> float:
        """When the first 'built' event naming `page` came after `start`."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for arrived, event in list(self.received):
                if arrived >= start and event["type"] == "built" and (page in event["pages"] or "*" in event["pages"]):
                    return arrived
            time.sleep(0.001)
        raise SystemExit(f"no reload event for {page} within {timeout:.0f} s")


def measure_serve_reload(work: Path, repeat: int, project: Path | None = None, label: str = "example") -> Measurement:
    """`labbook serve` on a built project; a prose edit of one post, timed from the write to
    the reload event the open page receives (server-sent events), and to the page fetched again
    with the edit in it (what the browser does on that event). No kernel starts."""
    import urllib.request

    root = example_copy(work / f"serve-{label}") if project is None else project
    if project is None:
        checked(run([BIN / "labbook", "--root", root, "build", "-q"], cwd=root), "labbook build (example)")
    post = first_post(root / "posts") if project is not None else root / "posts" / "superposition.md"
    port = _free_port()
    server = subprocess.Popen([str(BIN / "labbook"), "--root", str(root), "serve", "--port", str(port)], cwd=root,
                              env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("labbook serve did not start") from None
                time.sleep(0.05)
        events = Events(base + "/_labbook/events")
        events.start()
        if not events.ready.wait(120):
            raise SystemExit("labbook serve never finished its first build")
        url = _page_url(root, post)
        posts = len(list((root / "posts").glob("*.md")))
        row = Measurement(f"serve-reload-{label}", "serve: prose edit → open page reloaded", "labbook", posts, None)
        for round_ in itertools.count():
            if len(row.samples) >= repeat:
                break
            wait_quiet()
            busy, theirs = busy_seconds(), _cpu_seconds(server.pid)
            marker = f"Served edit {round_}."
            text = post.read_text(encoding="utf-8")
            text = re.sub(r"\n\nServed edit \d+\.", "", text)
            first_blank = text.index("\n\n", text.index("\n---", 3) + 4)
            began = time.perf_counter()
            post.write_text(text[:first_blank] + f"\n\n{marker}" + text[first_blank:], encoding="utf-8")
            arrived = events.built_after(began, url)
            page = urllib.request.urlopen(base + url, timeout=10).read().decode()
            fetched = time.perf_counter()
            if marker not in page:
                raise SystemExit(f"the reloaded page lacks the edit ({marker})")
            ours = _cpu_seconds(server.pid) - theirs
            foreign = max(0.0, busy_seconds() - busy - ours) / (fetched - began)  # this script's own share included
            row.samples.append(Sample(wall=fetched - began, rss_self_mb=0.0, rss_tree_mb=0.0, children=0, executed=0,
                                      event=arrived - began, foreign=foreign))
            row.note = (f"save → page fetched with the edit; save → reload event alone: median "
                        f"{statistics.median(s.event or 0.0 for s in row.samples):.3f} s; no kernel")
        progress(row)
        return row
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def _cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its reaped children (the server and the subprocesses it ran)."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _page_url(root: Path, post: Path) -> str:
    """The post's URL: /blog/<year of its date>/<slug>/ (the bench projects have no baseurl)."""
    date = re.search(r"^date:\s*(\d{4})", post.read_text(encoding="utf-8"), re.M)
    if date is None:
        raise SystemExit(f"{post}: no date")
    return f"/blog/{date.group(1)}/{post.stem}/"


# --- the floor: the same code as plain scripts ----------------------------------------------------------


def floor_scripts(project: Path, folder: Path, with_png: bool) -> list[Path]:
    """Each post's cells, concatenated into one script. With `with_png`, plt.show() writes the PNG
    that labbook's inline backend makes (same dpi, bbox); under Agg, plt.show() draws nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    scripts = []
    for post in sorted((project / "posts").glob("*.md")):
        code = "\n".join(code_cells(post.read_text(encoding="utf-8")))
        if with_png:
            code = code.replace("plt.show()", 'plt.savefig("figure.png", dpi=110, bbox_inches="tight"); plt.close()')
        script = folder / f"{post.stem}.py"
        script.write_text(code, encoding="utf-8")
        scripts.append(script)
    return scripts


def script_run(script: Path, folder: Path) -> Finished:
    cwd = Path(tempfile.mkdtemp(prefix="run-", dir=folder))
    return checked(run([sys.executable, script], cwd=cwd, env=environment(MPLBACKEND="Agg")), f"python {script.name}")


def measure_floor(project: Path, work: Path, repeat: int, with_png: bool) -> Measurement:
    """`python post_i.py` for every post, one after the other, MPLBACKEND=Agg, each in a fresh folder."""
    name = "floor-png" if with_png else "floor"
    scripts = floor_scripts(project, work / name / "scripts", with_png)

    def once(round_: int) -> Sample:
        total = Sample(0.0, 0.0, 0.0, 0)
        for script in scripts:
            done = quiet(lambda script=script: script_run(script, work / name), wait_first=False)
            total.wall += done.sample.wall
            total.rss_self_mb = max(total.rss_self_mb, done.sample.rss_self_mb)
            total.foreign = max(total.foreign, done.sample.foreign)
        return total

    scenario = "plain-Python floor" + (" + PNG savefig" if with_png else "")
    return measure_repeated(name, scenario, "python", len(scripts), 1, repeat, once,
                            note="sum of sequential runs" + ("" if with_png else "; Agg: plt.show() draws nothing"))


# --- peers -----------------------------------------------------------------------------------------------

JB_CONFIG = """title: bench
author: bench
only_build_toc_files: true
execute:
  execute_notebooks: cache
  timeout: 600
sphinx:
  config:
    nb_custom_formats:
      .md:
        - jupytext.reads
        - fmt: md
"""


def jb_project(project: Path, target: Path) -> Path:
    """A Jupyter Book 1.x with the same .md posts, read as notebooks by jupytext through MyST-NB."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    posts = sorted((project / "posts").glob("*.md"))
    for post in posts:
        shutil.copy2(post, target / post.name)
    (target / "_config.yml").write_text(JB_CONFIG, encoding="utf-8")
    chapters = "".join(f"- file: {post.stem}\n" for post in posts)
    (target / "_toc.yml").write_text(f"format: jb-book\nroot: intro\nchapters:\n{chapters}", encoding="utf-8")
    # reStructuredText, so that MyST-NB does not take the root page for a notebook and start a kernel
    (target / "intro.rst").write_text("bench\n=====\n\nSynthetic entries.\n", encoding="utf-8")
    return target


def jb_build(book: Path, expect_executed: int | None = None) -> Sample:
    done = checked(run([BIN / "jupyter-book", "build", book], cwd=book), "jupyter-book build")
    executed = len(re.findall(r"Executing notebook", done.output))
    done.sample.executed = executed
    if expect_executed is not None and executed != expect_executed:
        raise SystemExit(f"Jupyter Book executed {executed} notebooks, expected {expect_executed}:\n{done.output[-3000:]}")
    return done.sample


def measure_jupyter_book(project: Path, work: Path, settings: Settings) -> list[Measurement]:
    posts = len(list((project / "posts").glob("*.md")))
    book = work / "jupyter-book"
    cold = Measurement("jb-cold", "cold build", "jupyter-book", posts, 1, note="fresh copy, no _build/")
    for _ in range(settings.peer_cold_repeat):
        cold.samples.append(quiet(lambda: jb_build(jb_project(project, book), expect_executed=posts)))
        progress(cold)
    noop = measure_repeated("jb-noop", "no-op rebuild", "jupyter-book", posts, 1, settings.repeat,
                            lambda _: jb_build(book, expect_executed=0), warmup=True, note="1 uncounted warm-up run")

    def prose(round_: int) -> Sample:
        edit_prose(first_post(book), round_)
        return jb_build(book, expect_executed=0)

    def code(round_: int) -> Sample:
        edit_code(first_post(book), round_)
        return jb_build(book, expect_executed=1)

    prose_row = measure_repeated("jb-prose", "prose edit of 1 post", "jupyter-book", posts, 1, settings.repeat, prose)
    code_row = measure_repeated("jb-code", "code edit of 1 post", "jupyter-book", posts, 1, settings.repeat, code)
    return [cold, noop, prose_row, code_row]


def measure_nbconvert(project: Path, work: Path, settings: Settings) -> list[Measurement]:
    """`jupyter nbconvert --to notebook --execute` on each post, converted to .ipynb by jupytext first
    (not timed). No cache: its no-op rebuild is its cold build. Also all posts in one command."""
    folder = work / "nbconvert"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for post in sorted((project / "posts").glob("*.md")):
        checked(run([BIN / "jupytext", "--to", "ipynb", "-o", folder / f"{post.stem}.ipynb", post], cwd=folder), "jupytext")
    notebooks = sorted(folder.glob("*.ipynb"))
    base = [BIN / "jupyter", "nbconvert", "--to", "notebook", "--execute",
            "--ExecutePreprocessor.kernel_name=python3", "--output-dir", folder / "out"]

    def per_post(_: int) -> Sample:
        total = Sample(0.0, 0.0, 0.0, 0, executed=0)
        for notebook in notebooks:
            done = quiet(lambda notebook=notebook: checked(run([*base, notebook], cwd=folder), f"nbconvert {notebook.name}"),
                         wait_first=False)
            total.wall += done.sample.wall
            total.rss_self_mb = max(total.rss_self_mb, done.sample.rss_self_mb)
            total.foreign = max(total.foreign, done.sample.foreign)
            total.executed = (total.executed or 0) + 1
        return total

    def one_command(_: int) -> Sample:
        done = checked(run([*base, *notebooks], cwd=folder), "nbconvert (all)")
        done.sample.executed = len(notebooks)
        return done.sample

    return [
        measure_repeated("nbconvert-cold", "cold build", "nbconvert (one command per post)", len(notebooks), 1,
                         settings.peer_cold_repeat, per_post, note="no cache: a rebuild costs the same"),
        measure_repeated("nbconvert-all-cold", "cold build", "nbconvert (all posts, one command)", len(notebooks), 1,
                         settings.peer_cold_repeat, one_command, note="no cache: a rebuild costs the same"),
    ]


# --- the whole benchmark ----------------------------------------------------------------------------------


def progress(row: Measurement) -> None:
    walls = ", ".join(f"{s.wall:.2f}" for s in row.samples)
    print(f"  {row.key:<22} {row.tool:<14} n={row.posts:<5} runs: {walls} s  (other load ≤ {row.foreign:.2f} cores)",
          flush=True)


def run_labbook(settings: Settings, results: dict[str, Measurement]) -> None:
    cores = os.cpu_count() or 1
    work = settings.workdir
    projects = {size: make_project(work / f"master-{size}", size) for size in settings.sizes}
    print(f"generated {', '.join(map(str, settings.sizes))} posts under {work}", flush=True)

    small = projects[min(settings.sizes)]
    for row in (measure_floor(small, work, settings.cold_repeat, with_png=False),
                measure_floor(small, work, settings.cold_repeat, with_png=True)):
        results[row.key] = row

    for size, project in sorted(projects.items()):
        jobs = 1 if size <= 100 else cores
        repeat = settings.cold_repeat if size <= 20 else 1
        cold, built = measure_cold(project, work, jobs, repeat, f"cold-{size}-j{jobs}", "cold build",
                                   attempts=3 if size <= 20 else 1)
        if size > 100:
            cold.note = f"built once with -j{cores} to have a site; not a target"
        results[cold.key] = cold
        if size <= 20 and cores > 1:
            row, _ = measure_cold(project, work, cores, settings.cold_repeat, f"cold-{size}-j{cores}", "cold build")
            row.note = "labbook's default -j (one per core)"
            results[row.key] = row
        for row in (measure_noop(built, size, settings.repeat), measure_prose_edit(built, size, settings.repeat),
                    measure_code_edit(built, size, min(settings.repeat, 3))):
            results[row.key] = row

    for row in measure_cpu_bound(settings):
        results[row.key] = row

    run_serve(settings, results, projects)


def run_serve(settings: Settings, results: dict[str, Measurement], projects: dict[int, Path] | None = None) -> None:
    """`labbook serve`: save → reload on the example project, and on the smallest synthetic one."""
    row = measure_serve_reload(settings.workdir, settings.repeat)
    results[row.key] = row
    if projects:
        size = min(projects)
        built = fresh_copy(projects[size], settings.workdir / f"serve-{size}")
        labbook_build(built, os.cpu_count() or 1, expect_executed=size)
        row = measure_serve_reload(settings.workdir, settings.repeat, project=built, label=str(size))
        results[row.key] = row


PARALLEL = """
import subprocess, sys, tempfile
from concurrent.futures import ThreadPoolExecutor
def one(script):
    subprocess.run([sys.executable, script], cwd=tempfile.mkdtemp(dir=sys.argv[2]), check=True, stdout=subprocess.DEVNULL)
with ThreadPoolExecutor(int(sys.argv[1])) as pool:
    list(pool.map(one, sys.argv[3:]))
"""
"""Runs plain-Python scripts N at a time: what the machine itself gives to N processes."""


def measure_cpu_bound(settings: Settings) -> list[Measurement]:
    """-j1 and -j2 on CPU-bound posts, and the same code as plain scripts 1 and 2 at a time.

    The four are taken in turn, round after round, so that a change in the machine's speed
    (a shared host) touches them alike; the plain scripts' ratio is what 2 cores give here.
    """
    work = settings.workdir
    cpu = make_project(work / "master-cpu", settings.cpu_posts, cpu_bound=True)
    scripts = floor_scripts(cpu, work / "floor-cpu" / "scripts", with_png=True)
    note = "~1.5 s of 1-thread numpy per post"
    rows = {f"cpu-j{jobs}": Measurement(f"cpu-j{jobs}", "cold build, CPU-bound posts", "labbook", len(scripts), jobs,
                                        note=note) for jobs in (1, 2)}
    rows.update({f"cpu-floor-j{jobs}": Measurement(
        f"cpu-floor-j{jobs}", "plain-Python floor + PNG savefig, CPU-bound posts", "python", len(scripts), jobs,
        note=f"{jobs} script{'s' if jobs > 1 else ''} at a time") for jobs in (1, 2)})
    for _ in range(settings.repeat):
        for jobs in (1, 2):
            rows[f"cpu-j{jobs}"].samples.append(quiet(
                lambda jobs=jobs: labbook_build(fresh_copy(cpu, work / "cpu"), jobs, expect_executed=len(scripts))))
            command = [sys.executable, "-c", PARALLEL, str(jobs), work / "floor-cpu", *scripts]
            rows[f"cpu-floor-j{jobs}"].samples.append(quiet(lambda command=command: checked(
                run(command, cwd=work, env=environment(MPLBACKEND="Agg")), "plain scripts").sample))
    for row in rows.values():
        progress(row)
    return list(rows.values())


def run_peers(settings: Settings, results: dict[str, Measurement]) -> None:
    size = 20 if 20 in settings.sizes else min(settings.sizes)
    project = settings.workdir / f"master-{size}"
    if shutil.which("jupyter", path=str(BIN)) and shutil.which("jupytext", path=str(BIN)):
        for row in measure_nbconvert(project, settings.workdir, settings):
            results[row.key] = row
    else:
        print("nbconvert not installed: skipped", flush=True)
    if shutil.which("jupyter-book", path=str(BIN)):
        for row in measure_jupyter_book(project, settings.workdir, settings):
            results[row.key] = row
    else:
        print("jupyter-book not installed: skipped (pip install 'labbook[bench]')", flush=True)


# --- targets -------------------------------------------------------------------------------------------------


def targets(results: dict[str, Measurement], settings: Settings) -> list[Target]:
    """DESIGN.md's budget, each checked against the medians; None where the data is missing."""
    got = results.get
    out: list[Target] = []

    def add(name: str, needs: Sequence[str], check: Callable[..., tuple[str, bool]]) -> None:
        rows = [got(k) for k in needs]
        if any(r is None for r in rows):
            out.append(Target(name, "not measured", None))
        else:
            measured, ok = check(*rows)
            out.append(Target(name, measured, ok))

    add("no-op of 1000 posts < 2 s wall", ["noop-1000"],
        lambda r: (f"{r.wall:.2f} s", r.wall < 2.0))
    add("no-op of 1000 posts: labbook peak RSS < 300 MB", ["noop-1000"],
        lambda r: (f"{r.rss_self_mb:.0f} MB", r.rss_self_mb < 300))
    add("prose edit of 1 among 100 within 0.3 s of no-op", ["prose-100", "noop-100"],
        lambda p, n: (f"{p.wall:.2f} s vs {n.wall:.2f} s (+{p.wall - n.wall:.2f} s)", p.wall - n.wall <= 0.3))
    add("cold -j1 of 20 posts ≤ 0.5 s/post above the plain-Python floor", ["cold-20-j1", "floor"],
        lambda c, f: (f"{c.wall:.1f} s vs {f.wall:.1f} s: +{(c.wall - f.wall) / c.posts:.2f} s/post",
                      (c.wall - f.wall) / c.posts <= 0.5))
    add("-j2 ≥ 1.7× faster than -j1 on CPU-bound posts", ["cpu-j1", "cpu-j2", "cpu-floor-j1", "cpu-floor-j2"],
        lambda a, b, f1, f2: (f"{a.wall:.2f} s / {b.wall:.2f} s = {a.wall / b.wall:.2f}× (the same code as plain "
                              f"scripts, 1 vs 2 at a time, same rounds: {f1.wall / f2.wall:.2f}×)", a.wall / b.wall >= 1.7))
    add("vs Jupyter Book, 20 posts: cold (-j1) no slower", ["cold-20-j1", "jb-cold"],
        lambda a, b: (f"{a.wall:.1f} s vs {b.wall:.1f} s ({b.wall / a.wall:.2f}× faster)", a.wall <= b.wall))
    add("vs Jupyter Book, 20 posts: no-op ≥ 5× faster", ["noop-20", "jb-noop"],
        lambda a, b: (f"{a.wall:.2f} s vs {b.wall:.2f} s ({b.wall / a.wall:.1f}×)", b.wall / a.wall >= 5))
    add("serve: a prose edit reaches the open page < 0.2 s (example project)", ["serve-reload-example"],
        lambda r: (f"{r.wall:.3f} s (reload event {statistics.median(s.event or 0.0 for s in r.samples):.3f} s)",
                   r.wall < 0.2))
    add("prose edit of 1 among 20 < 0.2 s", ["prose-20"], lambda r: (f"{r.wall:.2f} s", r.wall < 0.2))
    add("no-op of 20 posts < 0.13 s", ["noop-20"], lambda r: (f"{r.wall:.2f} s", r.wall < 0.13))
    add("vs Jupyter Book, 20 posts: prose edit ≥ 3× faster", ["prose-20", "jb-prose"],
        lambda a, b: (f"{a.wall:.2f} s vs {b.wall:.2f} s ({b.wall / a.wall:.1f}×)", b.wall / a.wall >= 3))
    return out


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


# --- the report ----------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import psutil

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    info = {
        "CPU": cpu,
        "cores": f"{os.cpu_count()} logical, {psutil.cpu_count(logical=False)} physical",
        "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": platform.platform(),
        "Python": platform.python_version(),
    }
    names = ["labbook", "jupyter-book", "myst-nb", "sphinx", "jupytext", "nbclient", "nbconvert", "jupyter_client",
             "ipykernel", "numpy", "matplotlib", "psutil"]
    versions = []
    for name in names:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    info["libraries"] = ", ".join(versions)
    return info


def table(results: dict[str, Measurement]) -> list[str]:
    lines = [
        "| scenario | tool | posts | -j | runs | median (s) | min–max (s) | per post (s) | labbook RSS (MB) | executed | other load | note |",
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


def report(results: dict[str, Measurement], settings: Settings, info: dict[str, str], began: float) -> str:
    checks = targets(results, settings)
    mark = {True: "**PASS**", False: "**FAIL**", None: "not run"}
    lines = [
        "# labbook benchmark",
        "",
        "## How to run",
        "",
        "```sh",
        "python -m venv /root/venv-bench && /root/venv-bench/bin/pip install -e '.[examples,bench]'",
        "/root/venv-bench/bin/python bench/bench.py --quick          # smoke test, a few minutes",
        "/root/venv-bench/bin/python bench/bench.py                  # full run, sizes 20,100,1000, peers",
        "```",
        "",
        "Options: `--sizes 20,100,1000`, `--repeat 5` (sub-second measurements; cold builds use",
        "min(repeat, 3) runs, peers' cold builds min(repeat, 2)), `--peers/--no-peers`, `--quick`",
        "(sizes 20, repeat 2, no peers, 4 CPU-bound posts), `--cpu-posts 8`, `--workdir DIR`.",
        "The script rewrites this file and `bench/results.json` (every sample).",
        "",
        "## Method",
        "",
        "- Synthetic posts (`post_text` in bench.py): front matter with title, date, description, tags,",
        "  status, models, data, phenomena; prose with inline `$…$` and display `$$…$$` math; three python",
        "  cells: eigenvalues of a random 200×200 matrix seeded by the post number (~30 ms), a matplotlib",
        "  figure (`plt.plot`, `plt.show()`), a print, and a CSV written with `np.savetxt`. Every post's code",
        "  differs (the seed), so no two posts share a cache entry. The CPU-bound variant computes 12",
        "  eigen-decompositions of 400×400 (~1.5 s single-threaded) per post. Its four rows (labbook -j1",
        f"  and -j2, the same code as plain scripts 1 and 2 at a time) are taken in turn, {settings.repeat} rounds:",
        "  the plain scripts' ratio is what two cores of this machine give to two processes at that time",
        "  (a shared host makes it less than 2), the ceiling for labbook's own ratio.",
        "- Every tool runs as a subprocess, as typed by a user: `labbook --root DIR build -j N -q`,",
        "  `jupyter-book build DIR`, `jupyter nbconvert --to notebook --execute`, `python post.py`. Wall clock.",
        f"- Each figure is the **median** of the number of runs in the `runs` column ({settings.repeat} for",
        f"  rebuilds, {settings.cold_repeat} for cold builds of ≤ 20 posts, 1 for cold builds of 100 and 1000,",
        f"  {settings.peer_cold_repeat} for the peers' cold builds; no-op series start with one uncounted warm-up run).",
        "- Cold = a fresh copy of the posts, no `.labbook/` and no `site/` (Jupyter Book: no `_build/`).",
        "  The no-op, prose-edit and code-edit rows then run on the last cold-built copy. A prose edit rewrites",
        "  one sentence of one post; a code edit sets a constant of one post's figure cell to a value never",
        "  used before. labbook's own summary line is checked: `0 executed` for no-op and prose, `1 executed`",
        "  for a code edit (Jupyter Book: its `Executing notebook` log lines are counted).",
        "- Every process gets one BLAS thread (`OMP_NUM_THREADS=1` …), which labbook gives its kernels",
        "  anyway, so all tools do the same numpy work. The floor runs with `MPLBACKEND=Agg`, where",
        "  `plt.show()` draws nothing; the `+ PNG savefig` floor writes the PNG that labbook's inline backend",
        "  makes (dpi 110, tight bbox), to separate figure rendering from kernel overhead.",
        "- **labbook RSS** is the peak resident memory of the labbook process itself, not of its kernels (they",
        "  are separate processes): exact (`ru_maxrss` from `wait4`) when labbook started no child process,",
        "  as in no-op and prose-edit builds; polled with psutil every 10 ms otherwise.",
        "- labbook writes a Jekyll source tree (`site/`, turned into HTML by `jekyll build` or served by",
        "  `labbook serve`); Jupyter Book's build ends with HTML. Jupyter Book reads the same `.md` files",
        "  through `nb_custom_formats: {.md: [jupytext.reads, {fmt: md}]}`, with `execute_notebooks: cache`,",
        "  and executes notebooks one after the other; so the like-for-like cold comparison is labbook `-j1`.",
        "- The machine may be shared. Before each run the script waits (≤ 90 s) until other processes use",
        "  < 0.15 cores, and takes a run again (up to 3 times) when others used > 0.25 cores during it.",
        "  **other load** is the most CPU (in cores, averaged over a run) that processes not started by",
        "  this benchmark used during any run of the row, from `/proc/stat` minus our own rusage.",
        "  Rows with other load above ~0.2 cores on this 2-core machine are slower than they should be.",
        "",
        "## Machine",
        "",
        f"- date: {dt.datetime.now().astimezone().isoformat(timespec='minutes')}",
        *[f"- {k}: {v}" for k, v in info.items()],
        f"- total benchmark time: {(time.perf_counter() - began) / 60:.1f} min, of which "
        f"{WAITED[0] / 60:.1f} min waiting for other processes to go quiet"
        + (" (`--quick`)" if settings.quick else ""),
        "",
        "## Results",
        "",
        *table(results),
        "",
    ]
    peer_rows = ratios(results)
    if peer_rows:
        lines += ["## labbook vs peers (same 20 posts)", "",
                  "| scenario | peer | labbook / peer time | labbook is … faster |", "| --- | --- | ---: | ---: |"]
        lines += [f"| {s} | {peer} | {r:.2g} | {f:.1f}× |" for s, peer, r, f in peer_rows]
        lines.append("")
    if INCIDENTS:
        lines += ["## Incidents", "", "Runs disturbed by other processes on this shared machine, or failed and run again:", ""]
        lines += [f"- {line}" for line in INCIDENTS]
        lines.append("")
    lines += ["## Targets", "", "| target | measured | verdict |", "| --- | --- | --- |"]
    lines += [f"| {t.name} | {t.measured} | {mark[t.passed]} |" for t in checks]
    lines.append("")
    return "\n".join(lines)


def save(results: dict[str, Measurement], settings: Settings, info: dict[str, str], began: float) -> None:
    text = report(results, settings, info, began)
    (HERE / "RESULTS.md").write_text(text, encoding="utf-8")
    raw = {"machine": info, "settings": {"sizes": settings.sizes, "repeat": settings.repeat, "peers": settings.peers,
                                         "quick": settings.quick, "cpu_posts": settings.cpu_posts},
           "results": {k: dataclasses.asdict(v) for k, v in results.items()}}
    (HERE / "results.json").write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")
    print("\n" + "\n".join(table(results)))
    print("\n" + "\n".join(f"{'PASS' if t.passed else 'FAIL' if t.passed is False else 'n/a '}  {t.name}: {t.measured}"
                           for t in targets(results, settings)))
    print(f"\nwrote {HERE / 'RESULTS.md'}")


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,100,1000", help="numbers of posts, comma-separated")
    parser.add_argument("--repeat", type=int, default=5, help="runs per sub-second measurement (median)")
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure nbconvert and Jupyter Book 1.x on the same 20 posts")
    parser.add_argument("--quick", action="store_true", help="smoke test: sizes 20, repeat 2, no peers")
    parser.add_argument("--cpu-posts", type=int, default=8, help="CPU-bound posts for the -j1/-j2 ratio")
    parser.add_argument("--workdir", type=Path, default=None, help="where projects are generated (default: a temp dir)")
    parser.add_argument("--only", choices=["serve"], help="only this group of rows (a quick check that it runs)")
    args = parser.parse_args(argv)
    sizes = [20] if args.quick else sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="labbook-bench-"))
    if workdir.exists() and any(workdir.iterdir()):
        raise SystemExit(f"{workdir} is not empty")
    return Settings(sizes=sizes, repeat=2 if args.quick else args.repeat, peers=args.peers and not args.quick,
                    quick=args.quick, cpu_posts=4 if args.quick else args.cpu_posts, workdir=workdir, only=args.only)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    began = time.perf_counter()
    settings.workdir.mkdir(parents=True, exist_ok=True)
    source = snapshot_labbook(settings.workdir)
    info = machine()
    info["labbook source"] = f"a copy of labbook/ taken when the benchmark started: {source}"
    print(f"workdir {settings.workdir}; sizes {settings.sizes}; repeat {settings.repeat}", flush=True)
    results: dict[str, Measurement] = {}
    try:
        if settings.only == "serve":
            sizes = {size: make_project(settings.workdir / f"master-{size}", size) for size in settings.sizes}
            run_serve(settings, results, sizes)
        else:
            run_labbook(settings, results)
        if settings.peers and not settings.only:
            run_peers(settings, results)
    finally:
        if results:
            save(results, settings, info, began)
    return 0


if __name__ == "__main__":
    sys.exit(main())
