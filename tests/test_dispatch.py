"""Dispatch: every job comes back, in any order, whatever fails inside a worker."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from labbook import dispatch, kernels, source

POST = "---\ntitle: T{n}\ndate: 2026-01-01\n---\n\n```python\nprint({n})\n```\n"


def jobs(tmp_path: Path, count: int) -> list[dispatch.Job]:
    posts = [source.parse(POST.format(n=n), f"posts/p{n}.md")[0] for n in range(count)]
    return [dispatch.Job(p, str(tmp_path), str(tmp_path / p.slug)) for p in posts]


def test_a_worker_reports_every_job_even_when_starting_kernels_breaks(tmp_path, monkeypatch):
    def broken_start(post, root, servers=None, preload=(), gather_preload=()):
        raise RuntimeError("simulated: cannot import a partially initialized module")

    monkeypatch.setattr(kernels, "start_kernel", broken_start)
    results: list[dispatch.Done] = []
    finished = threading.Event()

    def consume() -> None:
        results.extend(dispatch.LocalDispatcher(2).run(jobs(tmp_path, 5)))
        finished.set()

    threading.Thread(target=consume, daemon=True).start()
    assert finished.wait(timeout=30), "a job was lost: the dispatcher never finished"
    assert sorted(d.post.slug for d in results) == [f"p{n}" for n in range(5)]
    assert all(d.run is None and "simulated" in str(d.error) for d in results)


@pytest.mark.kernel
def test_local_jobs_run_in_parallel_and_all_come_back(tmp_path):
    done = list(dispatch.LocalDispatcher(2).run(jobs(tmp_path, 3)))
    assert sorted(d.post.slug for d in done) == ["p0", "p1", "p2"]
    assert all(d.run is not None and d.error is None for d in done)


@pytest.mark.kernel
def test_two_posts_on_two_workers_run_at_the_same_time(tmp_path):
    text = "---\ntitle: S{n}\ndate: 2026-01-01\n---\n\n```python\nimport time\ntime.sleep(3)\n```\n"
    posts = [source.parse(text.format(n=n), f"posts/s{n}.md")[0] for n in range(2)]
    import time

    began = time.perf_counter()
    done = list(dispatch.LocalDispatcher(2).run([dispatch.Job(p, str(tmp_path), str(tmp_path / p.slug)) for p in posts]))
    assert all(d.run is not None for d in done)
    assert time.perf_counter() - began < 5.5, "the two posts ran one after the other"


# --- sessions: jobs submitted while others run (a sweep's gather after its points) ----------------------


@pytest.fixture
def instant_jobs(monkeypatch):
    """Jobs that 'run' in a blink (no kernel): the session's contract, not the kernels, is under test."""
    import time

    started: list[str] = []

    def fake_run(job, progress=None, kernel=None):
        started.append(job.post.slug)
        time.sleep(0.05)
        return dispatch.Done(job.post, None, job.folder, seconds=0.05)

    monkeypatch.setenv("LABBOOK_KERNELS", "exec")  # no fork server to start either
    monkeypatch.setattr(kernels, "start_kernel", lambda post, root, servers=None, preload=(), gather_preload=(): None)
    monkeypatch.setattr(dispatch, "run_job", fake_run)
    return started


def test_a_job_submitted_while_others_run_is_waited_for(tmp_path, instant_jobs):
    first, second, late = jobs(tmp_path, 3)
    seen = []
    with dispatch.LocalDispatcher(2).session() as session:
        session.submit(first)
        session.submit(second)
        for done in session:
            seen.append(done.post.slug)
            if len(seen) == 2:  # the last of the first two: now the one that depends on them
                session.submit(late)
    assert sorted(seen[:2]) == ["p0", "p1"] and seen[2] == "p2"
    assert session.pending == 0


def test_a_session_with_nothing_submitted_yields_nothing(instant_jobs):
    with dispatch.LocalDispatcher(2).session() as session:
        assert list(session) == []


def test_run_is_a_session_of_a_fixed_list(tmp_path, instant_jobs):
    done = list(dispatch.LocalDispatcher(3).run(jobs(tmp_path, 5)))
    assert sorted(d.post.slug for d in done) == [f"p{n}" for n in range(5)]


def test_a_closed_session_takes_no_more_jobs(tmp_path, instant_jobs):
    session = dispatch.LocalDispatcher(1).session()
    with session:
        session.submit(jobs(tmp_path, 1)[0])
        list(session)
    with pytest.raises(RuntimeError, match="closed"):
        session.submit(jobs(tmp_path, 1)[0])


def test_leaving_a_session_early_stops_its_workers(tmp_path, instant_jobs):
    session = dispatch.LocalDispatcher(2).session()
    with pytest.raises(KeyboardInterrupt), session:
        for job in jobs(tmp_path, 4):
            session.submit(job)
        for _ in session:
            raise KeyboardInterrupt
    for thread in session._threads:
        thread.join(timeout=10)
        assert not thread.is_alive(), "a worker outlived its session"


AGED = """---
title: {slug}
date: 2026-01-01
labbook:
  seed: {seed}
---

```python
import os, time
ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])  # the process's start, since boot
age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
{sleep}print(round(age, 2), os.environ["LABBOOK_SEED"])
```
"""


def aged_job(tmp_path: Path, slug: str, seed: int = 0, sleep: float = 0) -> dispatch.Job:
    text = AGED.format(slug=slug, seed=seed, sleep=f"time.sleep({sleep})\n" if sleep else "")
    post = source.parse(text, f"posts/{slug}.md")[0]
    return dispatch.Job(post, str(tmp_path), str(tmp_path / f"{slug}-{seed}"))


def printed(done: dispatch.Done) -> list[str]:
    assert done.run is not None, done.error
    return "".join(o.get("text", "") for o in done.run.cells[0].outputs).split()


@pytest.mark.kernel
@pytest.mark.parametrize("workers", [1, 2])
def test_an_expected_jobs_kernel_boots_while_the_jobs_before_it_run(tmp_path, workers):
    expected = aged_job(tmp_path, "gather", seed=3)
    with dispatch.LocalDispatcher(workers).session() as session:
        for number in range(workers):  # the last to end is on its own while the others' worker is free
            session.submit(aged_job(tmp_path, f"point{number}", sleep=3 if number == workers - 1 else 0.5))
        session.expect(expected)
        arrived = [d.post.slug for d in session]
        session.submit(aged_job(tmp_path, "gather", seed=3))  # as a sweep's gather: made anew, once its points are in
        (done,) = list(session)
    assert sorted(arrived) == [f"point{n}" for n in range(workers)]
    age, seed = printed(done)
    assert seed == "3"
    assert float(age) > 1.2, "its kernel was started after the jobs before it had run, not while they ran"


@pytest.mark.kernel
def test_a_job_never_runs_in_a_kernel_started_for_another_environment(tmp_path):
    with dispatch.LocalDispatcher(1).session() as session:
        session.submit(aged_job(tmp_path, "point", sleep=1))
        session.expect(aged_job(tmp_path, "gather", seed=3))
        list(session)
        session.submit(aged_job(tmp_path, "gather", seed=4))  # its settings changed meanwhile: not that kernel
        (done,) = list(session)
    assert printed(done)[1] == "4"


@pytest.mark.kernel
def test_a_kernel_started_for_a_job_that_never_comes_ends_with_the_session(tmp_path):
    import tempfile

    slug = "expected-and-never-submitted"
    with dispatch.LocalDispatcher(1).session() as session:
        session.submit(aged_job(tmp_path, "point", sleep=1))
        session.expect(aged_job(tmp_path, slug))
        assert [d.post.slug for d in session] == ["point"]
        folders = list(Path(tempfile.gettempdir()).glob(f"labbook-run-{slug}-*"))
        assert len(folders) == 1, "the expected job's kernel was not started while the point ran"
    assert not folders[0].exists(), "its kernel outlived the session"


def test_a_sweeps_points_go_to_dask_in_chunks_that_keep_every_worker_busy(tmp_path):
    def sizes(count: int, threads: int) -> list[int]:
        return [len(chunk) for chunk in dispatch.chunks(jobs(tmp_path / f"{count}-{threads}", count), threads)]

    assert sizes(64, 2) == [dispatch.CHUNK_MOST] * (64 // dispatch.CHUNK_MOST)
    assert sizes(4, 2) == [2, 2]
    assert sizes(5, 2) == [2, 2, 1]
    assert sizes(3, 4) == [1, 1, 1]
    assert sizes(1, 1) == [1]
    assert dispatch.chunks([], 2) == []


CHUNKED = """---
title: Chunked
date: 2026-01-10
labbook: {{params: {{x: 1.0}}, sweep: {{x: [0.5, -1.0, 2.0]}}, fresh_kernels: {fresh}}}
---

```python
import labbook
x = labbook.param("x")
if x < 0:
    raise ValueError(f"x must be positive, got {{x}}")
labbook.observe(square=x ** 2)
open("mine.txt", "w").write(str(x))
```
"""


@pytest.mark.kernel
@pytest.mark.parametrize("fresh", [False, True], ids=["shared kernels", "fresh kernels"])
def test_a_chunk_of_points_runs_each_in_its_own_root_and_reports_each(tmp_path, monkeypatch, fresh):
    """What a Dask worker does with a chunk: every point its own fresh root and Done; a point
    that raises fails alone. A point passes its kernel on to the next one, reset, unless it
    failed (the next one gets a fresh kernel) or the post asks for fresh kernels (each one's
    kernel is then forked before the point ahead of it ends)."""
    from labbook import source, sweep
    from labbook.errors import CellError

    text = CHUNKED.format(fresh=str(fresh).lower())
    (tmp_path / "posts").mkdir()
    (tmp_path / "posts" / "chunked.md").write_text(text)
    post, _ = source.parse(text, "posts/chunked.md")
    split = sweep.split_cells(post.cells, swept=True, path="posts/chunked.md")
    points = [sweep.point_post(post, split, point, post.settings.params) for point in post.sweep.points]
    chunk = [dispatch.Job(p, str(tmp_path), files=dispatch.ship_files(p, tmp_path, []), group="posts/chunked.md")
             for p in points]
    events: list[str] = []
    start_kernel, run_job = kernels.start_kernel, dispatch.run_job

    def forking(post, root, servers=None, preload=(), gather_preload=()):
        events.append(f"fork {post.settings.params['x']}")
        return start_kernel(post, root, servers, preload, gather_preload)

    def running(job, progress=None, kernel=None, keep=False):
        events.append(f"run {job.post.settings.params['x']}")
        try:
            return run_job(job, progress, kernel, keep)
        finally:
            events.append(f"ran {job.post.settings.params['x']}")

    monkeypatch.setattr(kernels, "start_kernel", forking)
    monkeypatch.setattr(dispatch, "run_job", running)
    monkeypatch.setattr(dispatch, "_WORKER_SERVERS", [])
    try:
        dones = dispatch.run_remote_jobs(chunk)
    finally:
        for servers in dispatch._WORKER_SERVERS:
            servers.close()
    runs = [e for e in events if not e.startswith("fork")]
    assert events.index("fork 0.5") < events.index("run 0.5")
    if fresh:
        assert runs == ["run 0.5", "ran 0.5", "run -1.0", "ran -1.0", "run 2.0", "ran 2.0"]
        assert events.index("fork -1.0") < events.index("ran 0.5"), "the next kernel starts while a point runs"
        assert events.index("fork 2.0") < events.index("ran -1.0")
    else:  # -1.0 gets 0.5's kernel, fails there, and runs again in a fresh one before it is reported
        assert runs == ["run 0.5", "ran 0.5", "run -1.0", "ran -1.0", "run -1.0", "ran -1.0", "run 2.0", "ran 2.0"]
        assert events.index("ran 0.5") < events.index("run -1.0") < events.index("fork -1.0"), \
            "the second point did not get the first one's kernel"
        last_failure = max(i for i, e in enumerate(events) if e == "ran -1.0")
        assert events.index("fork 2.0") > last_failure, "a point got the kernel of a point that failed"
    assert [d.post.key for d in dones] == [p.key for p in points]
    first, failed, last = dones
    assert isinstance(failed.error, CellError) and "x must be positive" in str(failed.error) and failed.run is None
    for done, x in ((first, 0.5), (last, 2.0)):
        assert done.run is not None and done.run.params == {"x": x} and done.folder == ""
        assert done.artifacts["data/mine.txt"] == str(x).encode()
        assert b"square" in done.artifacts["data/observations.jsonl"]
