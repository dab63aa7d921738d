"""Dispatch: every job comes back, in any order, whatever fails inside a worker."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from labbook import executor, kernels, source

POST = "---\ntitle: T{n}\ndate: 2026-01-01\n---\n\n```python\nprint({n})\n```\n"


def jobs(tmp_path: Path, count: int) -> list[executor.Job]:
    posts = [source.parse(POST.format(n=n), f"posts/p{n}.md")[0] for n in range(count)]
    return [executor.Job(p, str(tmp_path), str(tmp_path / p.slug)) for p in posts]


def test_a_worker_reports_every_job_even_when_starting_kernels_breaks(tmp_path, monkeypatch):
    def broken_start(post, root, servers=None, preload=()):
        raise RuntimeError("simulated: cannot import a partially initialized module")

    monkeypatch.setattr(kernels, "start_kernel", broken_start)
    results: list[executor.Done] = []
    finished = threading.Event()

    def consume() -> None:
        results.extend(executor.LocalDispatcher(2).run(jobs(tmp_path, 5)))
        finished.set()

    threading.Thread(target=consume, daemon=True).start()
    assert finished.wait(timeout=30), "a job was lost: the dispatcher never finished"
    assert sorted(d.post.slug for d in results) == [f"p{n}" for n in range(5)]
    assert all(d.run is None and "simulated" in str(d.error) for d in results)


@pytest.mark.kernel
def test_local_jobs_run_in_parallel_and_all_come_back(tmp_path):
    done = list(executor.LocalDispatcher(2).run(jobs(tmp_path, 3)))
    assert sorted(d.post.slug for d in done) == ["p0", "p1", "p2"]
    assert all(d.run is not None and d.error is None for d in done)


@pytest.mark.kernel
def test_two_posts_on_two_workers_run_at_the_same_time(tmp_path):
    text = "---\ntitle: S{n}\ndate: 2026-01-01\n---\n\n```python\nimport time\ntime.sleep(3)\n```\n"
    posts = [source.parse(text.format(n=n), f"posts/s{n}.md")[0] for n in range(2)]
    import time

    began = time.perf_counter()
    done = list(executor.LocalDispatcher(2).run([executor.Job(p, str(tmp_path), str(tmp_path / p.slug)) for p in posts]))
    assert all(d.run is not None for d in done)
    assert time.perf_counter() - began < 5.5, "the two posts ran one after the other"
