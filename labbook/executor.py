"""Dispatch: where executions happen, behind one concurrent.futures seam.

Local by default (a pool of N kernels on this machine, nothing to start), or an existing
Dask cluster (`--scheduler tcp://host:8786`) through distributed's own executor. Remote tasks
carry the post and its input files, so workers need no shared file system; they send back
the run and its artifacts. Results come back in any order; the caller sorts them.
"""

from __future__ import annotations

import concurrent.futures as cf
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import ExecutionError, LabbookError
from .model import Post, Run

__all__ = ["Job", "Done", "Dispatcher", "LocalDispatcher", "DaskDispatcher", "open_dispatcher", "run_job", "ship_files", "unpack", "localized"]

Progress = Callable[[str, int, int], None]
"""Called with (slug, cell index, number of cells) as a cell starts, on this machine only."""


@dataclass(frozen=True, slots=True)
class Job:
    """One execution to do: the post, and where its inputs come from."""

    post: Post
    root: str
    """The project root on this machine (local jobs run right there)."""
    folder: str = ""
    """Where a local job writes its artifacts: a folder of the cache, same file system."""
    files: Mapping[str, bytes] = field(default_factory=dict)
    """Remote jobs: the project files the post needs, root-relative path -> content."""


@dataclass(frozen=True, slots=True)
class Done:
    """One finished execution, successful or not."""

    post: Post
    run: Run | None
    folder: str
    """Local: where the artifacts are. Remote: empty; they are in `artifacts`."""
    artifacts: Mapping[str, bytes] = field(default_factory=dict)
    error: LabbookError | None = None
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0


def run_job(job: Job, progress: Progress | None = None, kernel: Any = None) -> Done:
    """Execute one post where its files are; never raises a LabbookError, returns it.

    `kernel` is the post's kernel if it was started ahead (an execute.Kernel), or the
    LabbookError that starting it raised.
    """
    from . import execute

    began = time.perf_counter()
    on_cell = (lambda i, n: progress(job.post.slug, i, n)) if progress else None
    try:
        if isinstance(kernel, LabbookError):
            raise kernel
        run, warnings = execute.execute(job.post, Path(job.root), Path(job.folder), on_cell=on_cell, kernel=kernel)
    except LabbookError as error:
        return Done(job.post, None, job.folder, error=error, seconds=time.perf_counter() - began)
    return Done(job.post, run, job.folder, warnings=tuple(warnings), seconds=time.perf_counter() - began)


def run_remote_job(job: Job) -> Done:
    """On a Dask worker: rebuild the project's needed files in a fresh root, run, send back."""
    root = Path(tempfile.mkdtemp(prefix="labbook-root-"))
    folder = Path(tempfile.mkdtemp(prefix="labbook-out-"))
    try:
        for name, content in job.files.items():
            target = root / PurePosixPath(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        done = run_job(Job(job.post, str(root), str(folder)))
        artifacts = {}
        if done.run is not None:
            artifacts = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return Done(done.post, done.run, "", artifacts, done.error, done.warnings, done.seconds)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


def unpack(artifacts: Mapping[str, bytes], folder: Path) -> Path:
    """Write a remote run's artifacts into `folder`; a name that would leave it is dropped."""
    for name, content in artifacts.items():
        target = folder / PurePosixPath(name)
        if target.resolve().is_relative_to(folder.resolve()):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    return folder


def localized(done: Done, new_folder: Callable[[], Path]) -> Done:
    """The Done with its artifacts in a folder here: a remote run brings them as bytes."""
    if done.run is None or done.folder:
        return done
    return replace(done, folder=str(unpack(done.artifacts, new_folder())), artifacts={})


def ship_files(post: Post, root: Path, known_inputs: Sequence[str]) -> dict[str, bytes]:
    """What a worker needs of the project: the post, its folder's modules, declared and seen inputs."""
    names = {post.path.as_posix(), *post.inputs, *known_inputs}
    folder = root / post.path.parent
    names.update(p.relative_to(root).as_posix() for p in folder.glob("*.py"))
    return {name: (root / name).read_bytes() for name in sorted(names) if (root / name).is_file()}


class Dispatcher:
    """Runs jobs and yields them as they finish; an interrupt kills every kernel under way."""

    def run(self, jobs: Sequence[Job], progress: Progress | None = None) -> Iterator[Done]:
        """Start every job now (the caller can do other work meanwhile); yield each as it finishes."""
        return self._guarded(self._start(jobs, progress))

    def _guarded(self, arriving: Iterator[Done]) -> Iterator[Done]:
        try:
            yield from arriving
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every execution of this dispatcher still under way (an interrupt)."""

    def _start(self, jobs: Sequence[Job], progress: Progress | None) -> Iterator[Done]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalDispatcher(Dispatcher):
    """N worker threads, each driving one kernel process at a time, so N kernels use N cores.

    Kernels are forked from a server that imported ipykernel once (kernels.KernelServers), so
    a kernel costs its post little CPU beyond the post's own. A worker takes its next job
    before running the current one and starts that job's kernel right away: the kernel
    boots while the current post computes. Both kernels belong to the worker's thread, where
    their event loop lives.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._servers: list[Any] = []

    def _start(self, jobs: Sequence[Job], progress: Progress | None) -> Iterator[Done]:
        from .kernels import KernelServers, kernel_environment

        pending: queue.SimpleQueue[Job] = queue.SimpleQueue()
        for job in jobs:
            pending.put(job)
        finished: queue.SimpleQueue[Done] = queue.SimpleQueue()
        servers = KernelServers()
        self._servers.append(servers)
        if jobs:  # the server imports ipykernel while this process imports the client side
            servers.server_for(kernel_environment(jobs[0].post, Path(jobs[0].root)))
        _import_kernel_machinery()
        for number in range(min(self.workers, len(jobs))):
            threading.Thread(target=_work, args=(pending, finished, progress, self.workers, servers),
                             daemon=True, name=f"labbook-kernel-{number}").start()
        return _collect(finished, len(jobs), servers)

    def stop(self) -> None:
        for servers in self._servers:
            servers.kill_all()

    def close(self) -> None:
        """Stop the kernel servers, and any kernel still running (the caller gave up on it)."""
        for servers in self._servers:
            servers.close()


def _collect(finished: queue.SimpleQueue[Done], count: int, servers: Any) -> Iterator[Done]:
    """Every job's Done as it comes; the kernel servers end with the last one."""
    try:
        for _ in range(count):
            yield finished.get()
    finally:
        servers.close()


def _work(pending: queue.SimpleQueue[Job], finished: queue.SimpleQueue[Done], progress: Progress | None,
          workers: int, servers: Any) -> None:
    """Run jobs until none is left; every job taken is reported, whatever goes wrong.

    A job is taken ahead only while the queue holds one for every worker: near the end,
    a job waiting behind a busy worker would keep an idle one idle.
    """
    job = _take(pending)
    kernel = _start_ahead(job, servers) if job is not None else None
    while job is not None:
        following = _take(pending) if pending.qsize() >= workers else None
        following_kernel = _start_ahead(following, servers) if following is not None else None
        finished.put(_run_reporting(job, progress, kernel))
        job, kernel = following, following_kernel
        if job is None:
            job = _take(pending)
            kernel = _start_ahead(job, servers) if job is not None else None


def _run_reporting(job: Job, progress: Progress | None, kernel: Any) -> Done:
    try:
        return run_job(job, progress, kernel)
    except BaseException as exc:  # noqa: BLE001 - a worker must report, never vanish
        return Done(job.post, None, job.folder, error=ExecutionError(
            f"labbook failed running this post: {type(exc).__name__}: {exc}", path=str(job.post.path)))


def _take(pending: queue.SimpleQueue[Job]) -> Job | None:
    try:
        return pending.get_nowait()
    except queue.Empty:
        return None


def _start_ahead(job: Job, servers: Any) -> Any:
    """The job's kernel, started now; or the error that starting it raised, for run_job to report."""
    from .kernels import start_kernel

    try:
        return start_kernel(job.post, Path(job.root), servers)
    except LabbookError as error:
        return error
    except Exception as exc:  # noqa: BLE001 - reported with the job, never lost with the thread
        return ExecutionError(f"the kernel could not start: {type(exc).__name__}: {exc}", path=str(job.post.path))


def _import_kernel_machinery() -> None:
    """Import jupyter_client and nbclient once, here, while the kernel server imports
    ipykernel: two threads importing them at once can meet a partially initialized module
    (an ImportError from jupyter_client.manager)."""
    import jupyter_client.kernelspec  # noqa: F401
    import jupyter_client.manager  # noqa: F401
    import jupyter_client.provisioning.local_provisioner  # noqa: F401
    import nbclient  # noqa: F401
    import nbformat.v4  # noqa: F401


class DaskDispatcher(Dispatcher):
    """Jobs as tasks of an existing Dask cluster, through distributed's own executor."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.executor: cf.Executor = client.get_executor(pure=False)

    def _start(self, jobs: Sequence[Job], progress: Progress | None) -> Iterator[Done]:
        return self._arrivals({self.executor.submit(run_remote_job, job): job for job in jobs})

    @staticmethod
    def _arrivals(futures: dict[cf.Future[Done], Job]) -> Iterator[Done]:
        for future in cf.as_completed(futures):
            job = futures[future]
            try:
                yield future.result()
            except LabbookError as error:
                yield Done(job.post, None, job.folder, error=error)
            except Exception as exc:  # noqa: BLE001 - a lost worker: this post failed, not the build
                yield Done(job.post, None, job.folder, error=ExecutionError(
                    f"the executor lost this run: {type(exc).__name__}: {exc}", path=str(job.post.path),
                    hint="the worker running it died (killed, out of memory); run the build again to retry",
                ))

    def close(self) -> None:
        self.client.close()


def open_dispatcher(jobs: int, scheduler: str | None = None) -> Dispatcher:
    """A local pool of `jobs` kernels, or the Dask cluster at `scheduler`.

    Raises:
        ConfigError: the scheduler cannot be reached, or distributed is not installed.
    """
    if scheduler:
        return _dask_dispatcher(scheduler)
    return LocalDispatcher(jobs)


def _dask_dispatcher(address: str) -> Dispatcher:
    from .errors import ConfigError

    try:
        from distributed import Client
    except ImportError:
        raise ConfigError(
            "--scheduler needs Dask's distributed package", hint="pip install 'labbook[dask]'"
        ) from None
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    return DaskDispatcher(client)
