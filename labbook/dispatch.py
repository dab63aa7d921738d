"""Dispatch: where executions happen, behind one concurrent.futures seam.

Local by default (a pool of N kernels on this machine, nothing to start), or an existing
Dask cluster (`--scheduler tcp://host:8786`) through distributed's own executor. Remote tasks
carry the post and its input files, so workers need no shared file system; they send back
the run and its artifacts. Results come back in any order; the caller sorts them.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
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

__all__ = ["Job", "Done", "Session", "Dispatcher", "LocalDispatcher", "DaskDispatcher", "open_dispatcher", "run_job",
           "run_remote_jobs", "chunks", "ship_files", "unpack", "localized", "local_folder"]

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
    placed: Mapping[str, bytes | str] = field(default_factory=dict)
    """Files put into the kernel's working directory before the first cell (a sweep's gather:
    the table and the points' files): name -> content, or the path of a file here to copy."""
    preload: tuple[str, ...] = ()
    """Installed modules the kernel's server imports once for many kernels (a sweep's points)."""
    gather_preload: tuple[str, ...] = ()
    """A sweep's points, run here: the modules its gather imports. The server that preloads them
    is started once the first point is forked, so the gather forks warm after the last one."""
    label: str = ""
    """What progress calls this execution (a point: 'slug wd=0.5,seed=0'); the slug when empty."""
    group: str = ""
    """Jobs of one group (a sweep's points: its post's path) may run in one remote task, one
    after the other, each the next one's kernel booting while it computes; empty: a task its own."""


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
    fresh_kernel: str = ""
    """A sweep's point: why it ran in a fresh kernel rather than the previous point's (empty
    when it did not, or when no previous point could pass one on)."""


def run_job(job: Job, progress: Progress | None = None, kernel: Any = None, keep: bool = False) -> Done:
    """Execute one post where its files are; never raises a LabbookError, returns it.

    `kernel` is the post's kernel if it was started ahead (an execute.Kernel), or the
    LabbookError that starting it raised. With `keep`, a kernel given outlives a run that
    succeeds, to be passed on to the next point of its sweep (see `_next_kernel`).
    """
    from . import execute

    began = time.perf_counter()
    label = job.label or job.post.slug
    on_cell = (lambda i, n: progress(label, i, n)) if progress else None
    fresh = getattr(kernel, "refused", "")
    try:
        if isinstance(kernel, LabbookError):
            raise kernel
        run, warnings = execute.execute(job.post, Path(job.root), Path(job.folder), on_cell=on_cell, kernel=kernel,
                                        placed=job.placed, keep=keep)
    except LabbookError as error:
        return Done(job.post, None, job.folder, error=error, seconds=time.perf_counter() - began, fresh_kernel=fresh)
    return Done(job.post, run, job.folder, warnings=tuple(warnings), seconds=time.perf_counter() - began,
                fresh_kernel=fresh)


def run_remote_job(job: Job) -> Done:
    """On a Dask worker: rebuild the project's needed files in a fresh root, run, send back.

    The kernel is forked from this worker process's own kernel servers (started with its
    first job, ended with it), as a local build's are.
    """
    return run_remote_jobs([job])[0]


def run_remote_jobs(jobs: Sequence[Job]) -> list[Done]:
    """On a Dask worker: jobs one after the other (a chunk of a sweep's points), each in its own
    fresh root and working directory, and each reported on its own, failed or not.

    As a local worker thread does, a point passes its kernel on to the next point of its sweep,
    reset (`_next_kernel`); any other job's kernel is forked before the job ahead of it runs,
    so it boots while that one computes: a worker's only thread no longer waits for each kernel.
    """
    servers = _worker_servers()
    staged = [_staged(job) for job in jobs]
    dones: list[Done] = []
    try:
        with _Ahead(servers, _Spares()) as ahead:
            kernel = _start_ahead(staged[0], servers, ahead.spares) if staged else None
            for number, job in enumerate(staged):
                following = staged[number + 1] if number + 1 < len(staged) else None
                if following is not None and not _passes_kernel_on(job, following):
                    ahead.start(following)
                kept, done = _run_keeping(job, None, kernel, ahead)
                dones.append(_shipped(done, job))
                _unstaged(job)
                kernel = _next_kernel(job, following, kept, ahead)
    finally:
        for job in staged:
            _unstaged(job)
    return dones


def _staged(job: Job) -> Job:
    """The job with the project's needed files written into a fresh root, and a fresh output folder."""
    root = Path(tempfile.mkdtemp(prefix="labbook-root-"))
    folder = Path(tempfile.mkdtemp(prefix="labbook-out-"))
    for name, content in job.files.items():
        target = root / PurePosixPath(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return replace(job, root=str(root), folder=str(folder), files={})


def _shipped(done: Done, job: Job) -> Done:
    """The Done to send back: its artifacts as bytes (the worker's folders are removed)."""
    folder = Path(job.folder)
    try:
        artifacts = {p.relative_to(folder).as_posix(): p.read_bytes()
                     for p in sorted(folder.rglob("*")) if p.is_file()} if done.run is not None else {}
    except OSError as exc:
        return Done(done.post, None, "", error=ExecutionError(
            f"the run's files could not be read back: {exc}", path=str(done.post.path)), seconds=done.seconds)
    return replace(done, folder="", artifacts=artifacts)


def _unstaged(job: Job) -> None:
    shutil.rmtree(job.root, ignore_errors=True)
    shutil.rmtree(job.folder, ignore_errors=True)


_WORKER_SERVERS: list[Any] = []
_WORKER_LOCK = threading.Lock()


def _worker_servers() -> Any:
    """The kernel servers of this (Dask worker) process: made on its first job, closed at its exit
    (and if the worker is killed, its servers see their pipe close and end with their kernels)."""
    import atexit

    from .kernels import KernelServers

    with _WORKER_LOCK:
        if not _WORKER_SERVERS:
            _import_kernel_machinery()
            servers = KernelServers()
            _WORKER_SERVERS.append(servers)
            atexit.register(servers.close)
        return _WORKER_SERVERS[0]


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
    return replace(done, folder=str(local_folder(done, new_folder)), artifacts={})


def local_folder(done: Done, new_folder: Callable[[], Path]) -> Path:
    """Where a finished run's artifacts are here: a remote run's bytes unpacked into a new folder."""
    return Path(done.folder) if done.folder else unpack(done.artifacts, new_folder())


def ship_files(post: Post, root: Path, known_inputs: Sequence[str]) -> dict[str, bytes]:
    """What a worker needs of the project: the post, its folder's modules, declared and seen inputs."""
    names = {post.path.as_posix(), *post.inputs, *known_inputs}
    folder = root / post.path.parent
    names.update(p.relative_to(root).as_posix() for p in folder.glob("*.py"))
    return {name: (root / name).read_bytes() for name in sorted(names) if (root / name).is_file()}


class Session:
    """One run of a dispatcher: jobs submitted at any time while it is open (a sweep's gather
    after its last point), each reported once, in the order they finish.

    Iterating yields every job's Done until all the jobs submitted so far have come back; a job
    submitted by the loop's body (between two arrivals) is waited for too. Leaving the `with`
    block early (an interrupt, an error) kills every kernel still running.
    """

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress = progress
        self._finished: queue.SimpleQueue[Done] = queue.SimpleQueue()
        self._submitted = 0
        self._reported = 0

    def submit(self, job: Job) -> None:
        """Start `job` as soon as a worker is free; its Done comes out of the iteration."""
        self._submitted += 1
        self._start(job)

    def __iter__(self) -> Iterator[Done]:
        while self._reported < self._submitted:
            self._flush()
            done = self._finished.get()
            self._reported += 1
            yield done

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet reported."""
        return self._submitted - self._reported

    def expect(self, job: Job) -> None:
        """`job` will be submitted once others have finished (a sweep's gather after its points):
        a worker with nothing else to do may start its kernel meanwhile. Never reported itself."""

    def _start(self, job: Job) -> None:
        raise NotImplementedError

    def _flush(self) -> None:
        """Start what `_start` held back (jobs to run together): the caller now waits for them."""

    def stop(self) -> None:
        """Kill every execution still under way (an interrupt)."""

    def close(self) -> None:
        """Release what the session holds (kernel servers); nothing runs after this."""

    def __enter__(self) -> Session:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None:
            self.stop()
        self.close()


class Dispatcher:
    """Where jobs run: `session()` for jobs that come as others finish, `run(jobs)` for a fixed list."""

    def session(self, progress: Progress | None = None) -> Session:
        """A new session; use it as a context manager."""
        raise NotImplementedError

    def run(self, jobs: Sequence[Job], progress: Progress | None = None) -> Iterator[Done]:
        """Start every job now (the caller can do other work meanwhile); yield each as it finishes."""
        session = self.session(progress)
        for job in jobs:
            session.submit(job)
        return self._drained(session)

    @staticmethod
    def _drained(session: Session) -> Iterator[Done]:
        with session:
            yield from session

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
        self._sessions: list[LocalSession] = []

    def session(self, progress: Progress | None = None) -> LocalSession:
        session = LocalSession(self.workers, progress)
        self._sessions.append(session)
        return session

    def close(self) -> None:
        """Stop the kernel servers, and any kernel still running (the caller gave up on it)."""
        for session in self._sessions:
            session.close()


class LocalSession(Session):
    """Jobs queued for `workers` threads, started on the first submit; the kernel servers and
    the threads end with the session."""

    def __init__(self, workers: int, progress: Progress | None = None) -> None:
        from .kernels import KernelServers

        super().__init__(progress)
        self.workers = workers
        self._pending: queue.SimpleQueue[Job | _Expected | None] = queue.SimpleQueue()
        self._servers = KernelServers()
        self._spares = _Spares()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._ending = threading.Event()
        """Set by `stop` and `close`: the workers' jobs are abandoned."""

    def expect(self, job: Job) -> None:
        """Queued behind every job submitted so far: the worker that takes it starts its kernel."""
        if not self._closed and self._threads:
            self._pending.put(_Expected(job))

    def _start(self, job: Job) -> None:
        if self._closed:
            raise RuntimeError("the dispatch session is closed")
        if not self._threads:
            self._warm_up(job)
        self._pending.put(job)
        if len(self._threads) < self.workers and len(self._threads) < self._submitted:
            number = len(self._threads)
            thread = threading.Thread(target=_work_until_ended, args=(self._ending, self._pending, self._finished,
                                                                      self.progress, self.workers, self._servers,
                                                                      self._spares),
                                      daemon=True, name=f"labbook-kernel-{number}")
            self._threads.append(thread)
            thread.start()

    def _warm_up(self, job: Job) -> None:
        """The first job's kernel server imports ipykernel while this process imports the client side."""
        from .kernels import kernel_environment

        self._servers.server_for(kernel_environment(job.post, Path(job.root)), job.preload, job.gather_preload)
        _import_kernel_machinery()

    def stop(self) -> None:
        """An interrupt: no job waiting is started, and the kernels running are killed."""
        self._ending.set()
        self._drop_pending()
        self._servers.kill_all()

    def close(self) -> None:
        """End the worker threads (each takes one None) and the kernel servers with their kernels.
        A worker busy with a job ends with it; it is not waited for (it may be waiting on a server
        still importing its preloads), and what fails in it from now on is not reported."""
        if self._closed:
            return
        self._closed = True
        self._ending.set()
        self._drop_pending()
        for _ in self._threads:
            self._pending.put(None)
        self._spares.close()
        self._servers.close()

    def _drop_pending(self) -> None:
        """Forget the jobs no worker has taken: after an interrupt, or once the session closes."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._pending.get_nowait()


def _work_until_ended(ending: threading.Event, *args: Any) -> None:
    """`_work`, whose failures once its session is ending are nobody's concern: after an
    interrupt, a worker still finishing its job met the kernels killed under it, or (as the
    interpreter exits) a thread pool that takes no more work, and printed that traceback under
    the build's last line. Before then, a failure escaping `_work` is a bug, and shows."""
    try:
        _work(*args)
    except BaseException:
        if not ending.is_set():
            raise


def _work(pending: queue.SimpleQueue[Job | _Expected | None], finished: queue.SimpleQueue[Done],
          progress: Progress | None, workers: int, servers: Any, spares: _Spares) -> None:
    """Run jobs until the session ends (a None); every job taken is reported, whatever goes wrong.

    A job is taken ahead only while the queue holds one for every worker: near the end,
    a job waiting behind a busy worker would keep an idle one idle. Its kernel is started on a
    helper thread while the current job runs (`_Ahead`), unless it is the next point of the
    same sweep: that one gets the current point's kernel, reset (`_next_kernel`). An expected
    job (`Session.expect`) is not run: its kernel is kept in `spares` for the job when it comes.
    """
    with _Ahead(servers, spares) as ahead:
        job = pending.get()
        kernel = _start_ahead(job, servers, spares) if job is not None else None
        while job is not None:
            following = _take(pending) if pending.qsize() >= workers else None
            if following is not None and not _passes_kernel_on(job, following):
                ahead.start(following)
            kept = None
            if isinstance(job, _Expected):
                spares.keep(job.job, kernel)
            else:
                kept, done = _run_keeping(job, progress, kernel, ahead)
                finished.put(done)
            if following is None:
                following = pending.get()
            kernel = _next_kernel(job, following, kept, ahead)
            job = following


@dataclass(frozen=True, slots=True)
class _Expected:
    """A job announced before it can run (`Session.expect`): only its kernel is started."""

    job: Job


class _Spares:
    """Kernels started for expected jobs, each until a job needing the same kernel comes
    (`_same_kernel`); those never asked for end with the session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kernels: list[tuple[Job, Any]] = []
        self._closed = False

    def keep(self, job: Job, kernel: Any) -> None:
        if isinstance(kernel, LabbookError):  # the job starts its own when it comes, and reports why not
            return
        with self._lock:
            if not self._closed:
                self._kernels.append((job, kernel))
                return
        _discard(kernel)

    def take(self, job: Job) -> Any:
        """A kept kernel that `job` can run in, or None."""
        with self._lock:
            for number, (expected, kernel) in enumerate(self._kernels):
                if _same_kernel(expected, job):
                    del self._kernels[number]
                    return kernel
        return None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            kept, self._kernels = self._kernels, []
        for _, kernel in kept:
            _discard(kernel)


def _same_kernel(one: Job, other: Job) -> bool:
    """Whether `start_kernel` would start the same kernel for both: same environment, command
    line and preloaded modules (a sweep's gather and the post it comes from differ in neither)."""
    from .kernels import kernel_arguments, kernel_environment

    if (one.root, one.preload, one.gather_preload) != (other.root, other.preload, other.gather_preload):
        return False
    root = Path(one.root)
    return (kernel_arguments(one.post) == kernel_arguments(other.post)
            and kernel_environment(one.post, root) == kernel_environment(other.post, root))


def _discard(kernel: Any) -> None:
    from .kernels import discard_kernel

    discard_kernel(kernel)


class _Ahead:
    """The next job's kernel, started and connected on a helper thread while the current job
    runs: the fork server's round trip, the kernel manager's setup and the client's connection
    (~30–70 ms a job, more on a busy machine) leave the worker's path. The manager started here
    keeps nothing that needs this thread's loop; the client is connected on a loop of its own
    (`kernels.connect_ahead`) and then used on the worker's."""

    def __init__(self, servers: Any, spares: _Spares) -> None:
        self.servers, self.spares = servers, spares
        self._pool = cf.ThreadPoolExecutor(1, thread_name_prefix="labbook-ahead")
        self._started: cf.Future[Any] | None = None

    def start(self, job: Job | _Expected) -> None:
        self._started = self._pool.submit(_started_and_connected, job, self.servers, self.spares)

    @property
    def starting(self) -> bool:
        """A kernel was asked for with `start`, and not yet taken with `kernel`."""
        return self._started is not None

    def kernel(self) -> Any:
        """The kernel `start` asked for (or the error starting it raised), once it is started."""
        assert self._started is not None
        started, self._started = self._started, None
        return started.result()

    def __enter__(self) -> _Ahead:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started is not None:  # the worker broke off: the kernel started for nothing goes
            kernel = self._started.result()
            if not isinstance(kernel, LabbookError):
                _discard(kernel)
        self._pool.shutdown(wait=True)


def _run_reporting(job: Job, progress: Progress | None, kernel: Any, keep: bool = False) -> Done:
    try:
        return run_job(job, progress, kernel, keep)
    except BaseException as exc:  # noqa: BLE001 - a worker must report, never vanish
        return Done(job.post, None, job.folder, error=ExecutionError(
            f"labbook failed running this post: {type(exc).__name__}: {exc}", path=str(job.post.path)))


def _run_keeping(job: Job, progress: Progress | None, kernel: Any, ahead: _Ahead) -> tuple[Any, Done]:
    """Run the job; with the kernel it ran in when that may go on to the next point of its sweep.

    A point that fails in a kernel passed on to it runs again in a fresh one before it is
    reported: a failure must never come from sharing a kernel (a project module that registers
    a name with a library, imported again, meets its own earlier registration).
    """
    from .errors import CellError, KernelDied
    from .kernels import Kernel

    keep = isinstance(kernel, Kernel) and _may_pass_on(job)
    done = _run_reporting(job, progress, kernel, keep)
    if isinstance(kernel, Kernel) and kernel.passed_on and isinstance(done.error, CellError | KernelDied):
        shutil.rmtree(job.folder, ignore_errors=True)  # what the failed try wrote
        kernel = _start_ahead(job, ahead.servers, ahead.spares)
        if isinstance(kernel, Kernel):
            kernel.refused = f"it failed in the kernel the point before it passed on ({done.error.message})"
        done = _run_reporting(job, progress, kernel, keep)
    return (kernel if keep and done.error is None and done.run is not None else None), done


def _may_pass_on(job: Job) -> bool:
    """A sweep's point, whose post lets its points share kernels."""
    return bool(job.group) and not job.post.settings.fresh_kernels


_POINT_VARIABLES = ("LABBOOK_SEED", "LABBOOK_PARAMS", "LABBOOK_ROOT", "LABBOOK_POST", "PYTHONPATH")
"""What differs in the environments of two points of one sweep, which a kernel passed on from
one to the other takes (on a Dask worker, each point has a root of its own)."""


def _passes_kernel_on(job: Job | _Expected, following: Job | _Expected) -> bool:
    """Whether `following` may run in the kernel `job` ran in, reset: points of one sweep, with
    the same code, command line and preloaded modules, their environments differing only in
    what a point sets (`_POINT_VARIABLES`)."""
    from .kernels import kernel_arguments, kernel_environment

    if not isinstance(job, Job) or not isinstance(following, Job) or not _may_pass_on(job):
        return False
    if (following.group, following.preload, following.gather_preload) != (job.group, job.preload, job.gather_preload):
        return False
    if [c.source for c in job.post.cells] != [c.source for c in following.post.cells]:
        return False
    if kernel_arguments(job.post) != kernel_arguments(following.post):
        return False
    one, other = ({k: v for k, v in kernel_environment(j.post, Path(j.root)).items() if k not in _POINT_VARIABLES}
                  for j in (job, following))
    return one == other


def _next_kernel(job: Job | _Expected, following: Job | _Expected | None, kept: Any, ahead: _Ahead) -> Any:
    """The kernel for `following`: the one started ahead for it; else `kept` (the one `job` ran
    in) reset for it when it is the next point of the same sweep; else one started now. A
    kept kernel not passed on is discarded."""
    from .kernels import Kernel, pass_on

    if following is not None and ahead.starting:
        kernel = ahead.kernel()
    elif following is not None and kept is not None and _passes_kernel_on(job, following):
        assert isinstance(following, Job)
        kernel, kept = pass_on(kept, following.post, Path(following.root)), None
        if isinstance(kernel, str):  # it could not be reset (and is gone): a fresh one, and why
            refused, kernel = kernel, _start_ahead(following, ahead.servers, ahead.spares)
            if isinstance(kernel, Kernel):
                kernel.refused = refused
    else:
        kernel = _start_ahead(following, ahead.servers, ahead.spares) if following is not None else None
    if kept is not None:
        _discard(kept)
    return kernel


def _take(pending: queue.SimpleQueue[Job | _Expected | None]) -> Job | _Expected | None:
    """The next job if one is waiting; a None (the session's end) is put back for the loop to meet."""
    try:
        job = pending.get_nowait()
    except queue.Empty:
        return None
    if job is None:
        pending.put(None)
    return job


def _start_ahead(item: Job | _Expected, servers: Any, spares: _Spares) -> Any:
    """The job's kernel, started now (or kept for it, when it was expected); or the error that
    starting it raised, for run_job to report."""
    from .kernels import start_kernel

    job = item.job if isinstance(item, _Expected) else item
    if not isinstance(item, _Expected) and (kept := spares.take(job)) is not None:
        return kept
    try:
        return start_kernel(job.post, Path(job.root), servers, preload=job.preload, gather_preload=job.gather_preload)
    except LabbookError as error:
        return error
    except Exception as exc:  # noqa: BLE001 - reported with the job, never lost with the thread
        return ExecutionError(f"the kernel could not start: {type(exc).__name__}: {exc}", path=str(job.post.path))


def _started_and_connected(item: Job | _Expected, servers: Any, spares: _Spares) -> Any:
    """`_start_ahead`, then the kernel's client connected (see `_Ahead`)."""
    from .kernels import Kernel, connect_ahead

    kernel = _start_ahead(item, servers, spares)
    if isinstance(kernel, Kernel) and kernel.client is None:
        return connect_ahead(kernel)
    return kernel


def _import_kernel_machinery() -> None:
    """Import jupyter_client and nbclient once, here, while the kernel server imports
    ipykernel: two threads importing them at once can meet a partially initialized module
    (an ImportError from jupyter_client.manager). And make nbformat's validator: it compiles
    the notebook schema on first use (~70 ms), which each worker thread did at once, before
    its first cell."""
    import jupyter_client.kernelspec  # noqa: F401
    import jupyter_client.manager  # noqa: F401
    import jupyter_client.provisioning.local_provisioner  # noqa: F401
    import nbclient  # noqa: F401
    import nbformat.v4

    nbformat.v4.new_code_cell("")


CHUNK_MOST = 8
"""The most points of a sweep one Dask task runs (one after the other, in one kernel reset between
them): more starts fewer kernels (~0.1 s of CPU each), fewer spreads the points more evenly."""


class DaskDispatcher(Dispatcher):
    """Jobs as tasks of an existing Dask cluster, through distributed's own executor."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.executor: cf.Executor = client.get_executor(pure=False)

    def session(self, progress: Progress | None = None) -> DaskSession:
        return DaskSession(self.executor, progress, threads=self._threads())

    def _threads(self) -> int:
        """The cluster's worker threads now (at least 1): how many tasks run at once."""
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:  # noqa: BLE001 - a scheduler that cannot say: one task per job is always right
            return 1

    def close(self) -> None:
        self.client.close()


class DaskSession(Session):
    """Each job a task of the cluster, submitted at once; a lost worker fails its jobs, not the build.

    A sweep's points (jobs with a `group`) are held until the caller waits for them, then sent in
    chunks (`chunks`): a task runs its points one after the other in one kernel, reset between
    them, as a local worker does. Each point still comes back as its own Done, failed or
    not, so each is its own cached run; they come back when their chunk ends.
    """

    def __init__(self, executor: cf.Executor, progress: Progress | None = None, threads: int = 1) -> None:
        super().__init__(progress)
        self.executor = executor
        self.threads = threads
        self._futures: list[cf.Future[list[Done]]] = []
        self._held: dict[str, list[Job]] = {}

    def _start(self, job: Job) -> None:
        if job.group:
            self._held.setdefault(job.group, []).append(job)
        else:
            self._submit([job])

    def _flush(self) -> None:
        held, self._held = self._held, {}
        for jobs in held.values():
            for chunk in chunks(jobs, self.threads):
                self._submit(chunk)

    def _submit(self, jobs: list[Job]) -> None:
        future = self.executor.submit(run_remote_jobs, jobs)
        self._futures.append(future)
        future.add_done_callback(lambda f: self._arrived(_remote_dones(f, jobs)))

    def _arrived(self, dones: list[Done]) -> None:
        for done in dones:
            self._finished.put(done)

    def stop(self) -> None:
        self._held = {}
        for future in self._futures:
            future.cancel()


def chunks(jobs: Sequence[Job], threads: int) -> list[list[Job]]:
    """A group's jobs in chunks of equal size (the last may be shorter), at most CHUNK_MOST, and
    at least one chunk for every thread of the cluster while there are jobs enough."""
    size = max(1, min(CHUNK_MOST, len(jobs) // max(1, threads)))
    return [list(jobs[start:start + size]) for start in range(0, len(jobs), size)]


def _remote_dones(future: cf.Future[list[Done]], jobs: Sequence[Job]) -> list[Done]:
    """Each job's Done; when the task itself failed (a lost worker), each job's error."""
    try:
        dones = future.result()
        if len(dones) == len(jobs):
            return dones
        raise RuntimeError(f"{len(dones)} runs came back for {len(jobs)} jobs")
    except BaseException as exc:  # noqa: BLE001 - a lost worker or a cancelled task: these jobs failed, not the build
        return [_lost(job, exc) for job in jobs]


def _lost(job: Job, exc: BaseException) -> Done:
    if isinstance(exc, LabbookError):
        return Done(job.post, None, job.folder, error=exc)
    return Done(job.post, None, job.folder, error=ExecutionError(
        f"the executor lost this run: {type(exc).__name__}: {exc}", path=str(job.post.path),
        hint="the worker running it died (killed, out of memory); run the build again to retry",
    ))


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
