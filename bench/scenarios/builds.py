"""The build scenarios: cold builds, no-op, prose and code edits at several sizes, and -j1
against -j2 on CPU-bound posts.

in → out: the settings → `Measurement` rows, every build a `labbook --root DIR build -j N -q`
subprocess whose summary line is checked (`N executed`). `run_build` is the one place that
runs `labbook build`, for every scenario.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from .. import harness
from ..harness import (
    BIN,
    Finished,
    Measurement,
    Sample,
    Settings,
    checked,
    environment,
    measure_repeated,
    progress,
    quiet,
    run,
)
from ..peers import floor_scripts, measure_floor
from ..posts import edit_code, edit_prose, first_post, fresh_copy, make_project

SUMMARY = re.compile(r"built (\d+) posts? \((\d+) executed, (\d+) cached")


def run_build(root: Path, jobs: int, *options: str | Path, ours: Callable[[], float] | None = None) -> Finished:
    """`labbook --root DIR build -j N -q [options]`, checked: exit 0 and a summary line.

    A failed build is recorded in the incidents (with its output) and run once more: on a shared
    machine another session's test suite can kill or starve it. A second failure stops everything.
    """
    command = [BIN / "labbook", "--root", root, "build", "-j", str(jobs), "-q", *options]
    done = run(command, cwd=root, ours=ours)
    retried = 0
    if done.code != 0:
        tail = "\n".join(done.output.strip().splitlines()[-25:])
        harness.INCIDENTS.append(f"{dt.datetime.now():%H:%M:%S} `labbook build -j{jobs}` in {root.name} exited "
                                 f"{done.code} after {done.sample.wall:.2f} s; output:\n\n```\n{tail}\n```")
        print(f"  !! labbook exited {done.code} after {done.sample.wall:.2f} s; running it again\n{tail}", flush=True)
        done, retried = run(command, cwd=root, ours=ours), 1
    checked(done, "labbook build")
    done.sample.retried = retried
    match = SUMMARY.search(done.output)
    if match is None:
        raise SystemExit(f"no summary line in labbook's output:\n{done.output[-2000:]}")
    done.sample.executed = int(match.group(2))
    return done


def labbook_build(root: Path, jobs: int, expect_executed: int | None = None) -> Sample:
    """`labbook --root DIR build -j N -q`, checked: exit 0, and the executed count it promises."""
    done = run_build(root, jobs)
    if expect_executed is not None and done.sample.executed != expect_executed:
        raise SystemExit(f"expected {expect_executed} executed, labbook says: {SUMMARY.search(done.output).group(0)}")
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


def run_labbook(settings: Settings, results: dict[str, Measurement]) -> dict[int, Path]:
    """Every build row; returns the synthetic projects made (for `labbook serve`)."""
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

    return projects


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
