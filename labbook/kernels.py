"""Kernel processes: one fresh ipykernel per post, started, found ready, and stopped.

Part of the execute stage: execute.py runs cells, this module owns the processes. A kernel
talks over IPC sockets in an owner-only folder. It is either exec'd (`python -m
labbook.kernel_side`) or, in a local build, forked from a `KernelServer` that imported ipykernel
once: the ~0.25 s of CPU every kernel otherwise spends on imports is paid once per build,
which is what lets -j N use N cores for the posts' own work. Never runs a post's code.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .compare.text import strip_ansi
from .errors import KernelDied
from .model import Post

__all__ = ["Kernel", "KernelServers", "start_kernel", "stop_kernel", "discard_kernel", "pass_on", "kernel_environment",
           "kernel_arguments", "log_tail", "MARKER"]

MARKER = "LABBOOK_KERNEL_ID"
"""An environment variable unique to each kernel: a process that left the kernel's process
group (a daemon started with start_new_session=True) still carries it, and is found by it."""

_KERNEL_MODULE = ["-m", "labbook.kernel_side"]


def kernel_environment(post: Post, root: Path) -> dict[str, str]:
    """The post's environment: a contract with authors (see DESIGN.md); keep the names."""
    post_file = root / post.path
    threads = str(post.settings.threads)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "LABBOOK_"))}
    python_path = [str(post_file.parent), str(root), env.get("PYTHONPATH", "")]
    env.update(
        LABBOOK_ROOT=str(root),
        LABBOOK_POST=str(post_file),
        LABBOOK_SEED=str(post.settings.seed),
        LABBOOK_PARAMS=json.dumps(dict(post.settings.params), sort_keys=True),  # read by labbook.param()
        LABBOOK_MEMORY_MB=str(post.settings.memory_mb),
        PYTHONHASHSEED="0",
        PYTHONPATH=os.pathsep.join(p for p in python_path if p),
        PYTHONDONTWRITEBYTECODE="1",
        OMP_NUM_THREADS=threads,
        OPENBLAS_NUM_THREADS=threads,
        MKL_NUM_THREADS=threads,
        NUMEXPR_NUM_THREADS=threads,
        CUDA_VISIBLE_DEVICES="",
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    return env


def kernel_arguments(post: Post) -> list[str]:
    """The kernel's own settings, on its command line rather than in a first hidden cell.

    Figures without dates or versions, so reruns are byte-identical; and no IPython history:
    a build writes nothing into the author's ~/.ipython, whatever the number of kernels.
    """
    fmt = post.settings.figure_format
    metadata = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
    figure = {"bbox_inches": "tight", "dpi": 110, "metadata": metadata}
    return [f"--InlineBackend.figure_formats={[fmt]!r}", f"--InlineBackend.print_figure_kwargs={figure!r}",
            "--HistoryManager.enabled=False"]


@dataclass(slots=True)
class Kernel:
    """A kernel process started for one post, possibly before its turn (it boots meanwhile)."""

    manager: Any
    private: Path
    """Owner-only folder: IPC sockets, connection file, the kernel's own log."""
    workdir: Path
    """The post's fresh, empty working directory."""
    marker: str = ""
    """The value of MARKER in its environment (and in that of everything it starts)."""
    owner: KernelServers | None = None
    """The build's kernels it is tracked in, to be killed with them on an interrupt."""
    client: Any = None
    """A client connected ahead (`connect_ahead`): the kernel answered it; or the exception
    connecting raised, for the execution to report; None: the execution connects."""
    gone: bool = False
    """Stopped, and no process carried its marker then: nothing of it is left to kill."""
    passed_on: bool = False
    """It ran a point of a sweep before the one it is for now (`pass_on`)."""
    refused: str = ""
    """Why it is a fresh kernel although the point before it on this worker could have passed
    its own on (`pass_on` refused: a thread left running, …): what `build -v` says."""

    @property
    def log(self) -> Path:
        """The kernel's own output: why it would not start, or how it died."""
        return _log_of(self.private)

    @property
    def forked(self) -> bool:
        """Forked from a KernelServer, rather than exec'd."""
        return isinstance(getattr(self.manager.provisioner, "process", None), ForkedProcess)


def start_kernel(post: Post, root: Path, servers: KernelServers | None = None,
                 preload: tuple[str, ...] = (), gather_preload: tuple[str, ...] = ()) -> Kernel:
    """Start the post's kernel process and return at once; executing it later finds it booted.

    Forked from one of `servers` when it can; exec'd otherwise (no servers, or the server
    cannot fork). With `preload` (a sweep's points: the installed modules their cells import
    at top level), forked from a server that imported those modules too; `gather_preload`:
    what their gather imports (see `KernelServers.server_for`). Call it from the
    thread that will execute the post: the kernel's client lives on that thread's event loop.

    Raises:
        KernelDied: the kernel process could not be started.
    """
    from jupyter_core.utils import run_sync

    env = kernel_environment(post, root)
    env[MARKER] = marker = uuid.uuid4().hex
    server = servers.server_for(env, preload, gather_preload) if servers is not None else None
    private = Path(tempfile.mkdtemp(prefix="labbook-kernel-"))  # mode 0700, near the top: IPC paths are short
    workdir = Path(tempfile.mkdtemp(prefix=f"labbook-run-{post.slug}-"))
    manager = _kernel_manager(private, server)
    kernel = Kernel(manager, private, workdir, marker, servers)
    if servers is not None:
        servers.track(kernel)
    try:
        with kernel.log.open("wb") as output:
            run_sync(manager.start_kernel)(env=env, cwd=str(workdir), stdout=output, stderr=output,
                                           stdin=subprocess.DEVNULL, extra_arguments=kernel_arguments(post))
    except Exception as exc:  # noqa: BLE001 - any launch failure is the same fault for the author
        discard_kernel(kernel)
        raise KernelDied(f"the kernel could not start: {exc}", path=str(post.path)) from exc
    return kernel


STARTUP_TIMEOUT = 120
"""Seconds a kernel may take to answer its client's first kernel_info."""


def connect_ahead(kernel: Kernel) -> Kernel:
    """Connect the kernel's client now, on this thread, while another kernel computes: the
    channels and the first kernel_info (~20 ms a point at -j1) leave the executing thread's path.

    The client is made on an event loop of its own, closed once the kernel has answered: its
    sockets then move to the executing thread's loop on first use (pyzmq re-registers a socket
    with a new loop, and a closed loop keeps no reader that could take its messages).
    Whatever goes wrong is kept in `kernel.client` for the execution to report.
    """
    import asyncio

    loop = asyncio.new_event_loop()
    client = kernel.manager.client()
    try:
        client.start_channels()
        loop.run_until_complete(client.wait_for_ready(timeout=STARTUP_TIMEOUT))
        client.allow_stdin = False
        kernel.client = client
    except Exception as exc:  # noqa: BLE001 - reported by the execution, as its own connect would be
        with contextlib.suppress(Exception):
            client.stop_channels()
        kernel.client = exc
    finally:
        loop.close()
    return kernel


PASS_ON_TIMEOUT = 60.0
"""Seconds a kernel may take to reset itself for the next point (a collection of a big heap)."""


def pass_on(kernel: Kernel, post: Post, root: Path) -> Kernel | str:
    """The kernel a point of a sweep ran in, made the next point's: its working directory emptied
    (the last point's files are in the cache by now), the point's environment, and the state a
    fresh kernel would have (kernel_side.next_point). Why not, when it cannot be (a thread the
    last point left running, a kernel that does not answer): it is then discarded, and the
    caller starts a fresh one.

    The folder stays the one the kernel was started in: its server removes it if labbook dies
    (an interrupt), as it removes every folder of the kernels it forked.
    Call it from the thread that executed the last point: the kernel's client lives there.
    """
    from jupyter_core.utils import run_sync

    env = kernel_environment(post, root)
    env[MARKER] = kernel.marker
    call = f"__import__('labbook.kernel_side', fromlist=['_']).next_point({env!r}, {str(kernel.workdir)!r})"
    try:
        _empty(kernel.workdir)
        refused = run_sync(_evaluated)(kernel.client, call, PASS_ON_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - any failure: the next point gets a fresh kernel
        refused = f"{type(exc).__name__}: {exc}"
    if refused:
        discard_kernel(kernel)
        return f"the last point's kernel could not be reset: {refused}"
    kernel.passed_on = True
    return kernel


def _empty(folder: Path) -> None:
    """Remove what a folder holds, never following a link out of it."""
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


async def _evaluated(client: Any, expression: str, timeout: float) -> str:
    """What a string-valued expression gives in the kernel, as a user expression of an empty
    request: no cell runs, nothing is counted or shown. An error's name when it raised."""
    import ast

    msg_id = client.execute("", silent=True, store_history=False, user_expressions={"value": expression})
    deadline = time.monotonic() + timeout
    while True:
        reply = await client.shell_channel.get_msg(timeout=max(0.0, deadline - time.monotonic()))
        if reply.get("parent_header", {}).get("msg_id") == msg_id:
            break
    found = reply["content"].get("user_expressions", {}).get("value", {})
    if found.get("status") != "ok":
        return f"{found.get('ename', 'no answer')}: {found.get('evalue', '')}"
    value = ast.literal_eval(found.get("data", {}).get("text/plain", "'no value'"))
    return value if isinstance(value, str) else repr(value)


def discard_kernel(kernel: Kernel, *, driver: bool = True) -> bool:
    """Kill a kernel and remove its folders: the end of every kernel, used or not; True if it
    was still running. Its client's channels are closed only by its `driver`, the thread that
    uses them: zmq sockets are not thread-safe, and closing one under the thread that reads it
    aborts the process (an interrupt kills the kernels from another thread)."""
    if driver and kernel.client is not None and not isinstance(kernel.client, BaseException):
        with contextlib.suppress(Exception):  # stopped already by the execution that used it
            kernel.client.stop_channels()
    alive = stop_kernel(kernel)
    if kernel.owner is not None:
        kernel.owner.untrack(kernel)
    shutil.rmtree(kernel.private, ignore_errors=True)
    shutil.rmtree(kernel.workdir, ignore_errors=True)
    return alive


def stop_kernel(kernel: Kernel) -> bool:
    """Kill a kernel, its process group (workers it started) and every process that carries its
    marker (daemons that left the group); True if the kernel was alive."""
    from .kernel_side import kill_marked

    process = getattr(getattr(kernel.manager, "provisioner", None), "process", None)
    alive = process is not None and process.poll() is None
    if process is not None and alive:
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            process.wait(timeout=10)
    if kernel.marker and not kernel.gone:  # one look through every process is enough once none was found
        found = kill_marked(MARKER, kernel.marker)
        kernel.gone = found == 0 and process is not None and process.poll() is not None
    return alive


def log_tail(log: Path, lines: int = 12) -> str:
    """The end of a kernel's own output: why it would not start, or how it died."""
    with contextlib.suppress(OSError):
        text = strip_ansi(log.read_text(errors="replace"))
        return "\n".join(text.strip().splitlines()[-lines:])
    return ""


def _log_of(private: Path) -> Path:
    return private / "kernel.log"


def _kernel_manager(private: Path, server: KernelServer | None) -> Any:
    """A kernel on IPC sockets in an owner-only folder: no other local user can connect."""
    import uuid

    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    class LabbookSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(
                argv=[sys.executable, *_KERNEL_MODULE, "-f", "{connection_file}"],
                display_name="labbook", language="python", interrupt_mode="signal", metadata={},
            )

    manager = AsyncKernelManager(
        kernel_name="labbook", kernel_spec_manager=LabbookSpecs(), transport="ipc", ip=str(private / "k")
    )
    manager.client_factory = _ready_client_class()
    manager.connection_file = str(private / "kernel.json")
    if server is not None:
        manager.kernel_id = str(uuid.uuid4())
        provisioner = _fork_provisioner_class()(
            kernel_id=manager.kernel_id, kernel_spec=manager.kernel_spec, parent=manager)
        provisioner.server, provisioner.kernel_log = server, _log_of(private)
        manager.provisioner = provisioner
    return manager


@functools.cache
def _fork_provisioner_class() -> type:
    """jupyter_client's local provisioner, launching by a fork of the server instead of exec.

    Everything else (connection file, signals to the process group, kill, wait) is the stock
    provisioner's, working on a ForkedProcess as it would on a Popen.
    """
    from jupyter_client.provisioning.local_provisioner import LocalProvisioner

    class ForkProvisioner(LocalProvisioner):
        server: KernelServer
        kernel_log: Path

        async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
            process = self.server.fork(cmd, kwargs["env"], kwargs["cwd"], self.kernel_log)
            if process is None:  # the server cannot fork: exec, as without one
                return await super().launch_kernel(cmd, **kwargs)
            # a ForkedProcess stands in for the Popen: the same pid, poll, wait, kill and send_signal
            self.process = process  # type: ignore[assignment]
            self.pid, self.pgid, self.cwd = process.pid, process.pid, kwargs["cwd"]
            return self.connection_info

    return ForkProvisioner


@functools.cache
def _ready_client_class() -> type:
    """jupyter_client's async client, ready as soon as the kernel answers kernel_info, and
    connected without a heartbeat channel.

    The stock client then drains IOPub until it has been silent for 0.2 s: a fixed 0.2 s per
    post. nbclient matches every message to its request by parent id, so the drain buys
    nothing here.
    """
    from queue import Empty

    from jupyter_client.asynchronous import AsyncKernelClient

    class ReadyClient(AsyncKernelClient):
        def start_channels(self, shell: bool = True, iopub: bool = True, stdin: bool = True, hb: bool = False,
                           control: bool = True) -> None:
            """Without the heartbeat: a client its manager made asks the manager whether the
            kernel lives (a poll of the process), so the heartbeat's thread, socket and event loop,
            made for every kernel, told nobody anything."""
            super().start_channels(shell, iopub, stdin, hb, control)

        async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
            deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
            while True:
                self.kernel_info()
                try:
                    message = await self.shell_channel.get_msg(timeout=1)
                except Empty:
                    message = None
                if message is not None and message["msg_type"] == "kernel_info_reply":
                    try:
                        await self.iopub_channel.get_msg(timeout=0.2)  # IOPub connected too
                    except Empty:
                        pass
                    else:
                        self._handle_kernel_info_reply(message)
                        return
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

        wait_for_ready = _async_wait_for_ready

    return ReadyClient


# --- the fork server ------------------------------------------------------------------------------


def _server_environment(kernel_env: dict[str, str], preload: tuple[str, ...] = ()) -> dict[str, str]:
    """A kernel's environment without what differs between posts: what the server starts with.

    PYTHONPATH keeps only labbook's own (the server must import the same labbook); each kernel
    puts its post's folder and the project root in front after the fork. A server that
    preloads modules keeps the thread counts: numpy's BLAS reads them as it loads.
    """
    from .kernel_side import PER_KERNEL, THREAD_VARIABLES

    dropped = [k for k in PER_KERNEL if not (preload and k in THREAD_VARIABLES)]
    env = {k: v for k, v in kernel_env.items() if k not in dropped}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    if preload:
        env.setdefault(*ARROW_WITHOUT_THREAD)
    return env


ARROW_WITHOUT_THREAD = ("JE_ARROW_MALLOC_CONF", "background_thread:false")
"""pyarrow's jemalloc starts a purging thread as the library loads, and a server with a thread
cannot fork: a sweep whose points import pandas (which imports pyarrow) preloaded nothing. Its
kernels purge as they allocate instead; the same numbers come out."""


SERVERS_CLOSED = "the build's kernel servers are closed"
"""Why a worker finishing a job after its build's interrupt gets no kernel: no server is started
for it, and none forks for it (or lets it be exec'd)."""


class KernelServer:
    """One `python -m labbook.kernel_side --serve FOLDER` process: imports ipykernel once, forks kernels.

    Requests go one at a time (a lock), one JSON line each way. Closing its stdin ends it and
    every kernel it forked, and removes their folders and its own; so does labbook's own death,
    even by SIGKILL (the pipe closes).
    """

    PATIENCE = 60.0
    """Seconds to wait for an answer (the first one waits for the imports); then exec instead."""

    def __init__(self, env: dict[str, str], preload: tuple[str, ...] = (),
                 fallback: KernelServer | None = None, *, deferred: bool = False, ahead: bool = True) -> None:
        self.private = Path(tempfile.mkdtemp(prefix="labbook-server-"))
        self._lock = threading.Lock()
        self._broken = False
        self._ended = False
        """`hang_up` was called: its build is over, and no kernel is to start for it, forked or exec'd."""
        self._serving = False
        """It has answered a request: its imports are done, and it may have kernels."""
        self.env = env
        self.preload = preload
        self.fallback = fallback
        """The server for when this one cannot fork (a preloaded module started a thread): the
        plain one, or the sweep's gather's (see `KernelServers.server_for`)."""
        self.ahead = ahead
        """Start the fallback once this server has forked a kernel (it is the gather's server);
        otherwise only when this server cannot fork."""
        self._process: subprocess.Popen[bytes] | None = None
        if not deferred:
            self.start()

    def start(self) -> None:
        """Start the server process, if it is not started yet.

        A preloading server's fallback (the server of the sweep's gather) is started only once
        the first point's kernel is forked: three processes importing ipykernel, numpy and
        jupyter_client at once on two cores held the first point back by ~0.3 s.
        """
        if self._process is None and not self._broken:  # asked on every kernel's start: the lock only until then
            with self._lock:
                if not self._broken:  # never after `hang_up`: nobody would end it
                    self._started()

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            command = [sys.executable, *_KERNEL_MODULE, "--serve", str(self.private)]
            if self.preload:
                command += ["--preload", ",".join(self.preload)]
            with (self.private / "server.log").open("wb") as log:
                self._process = subprocess.Popen(
                    command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=self.env,
                    cwd=self.private, start_new_session=True,
                )
        return self._process

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The server process (started now if it was deferred)."""
        with self._lock:
            return self._started()

    def fork(self, cmd: list[str], env: dict[str, str], cwd: str, log: Path) -> ForkedProcess | None:
        """A kernel for `cmd` (exec'd it would be `python -m labbook.kernel_side -f FILE`), or None.

        A preloading server that cannot fork hands the request to its plain fallback.
        """
        if cmd[1:3] != _KERNEL_MODULE:
            return None
        self._refuse_once_ended()
        reply = self.request({"fork": {"argv": cmd[3:], "env": env, "cwd": cwd, "log": str(log)}})
        if reply and "pid" in reply:
            if self.fallback is not None and self.ahead:
                self.fallback.start()
            return ForkedProcess(self, reply["pid"])
        self._refuse_once_ended()  # hung up while asked: not a server that cannot fork
        return self.fallback.fork(cmd, env, cwd, log) if self.fallback is not None else None

    def _refuse_once_ended(self) -> None:
        """None from `fork` means "exec the kernel instead"; a worker still finishing an
        interrupted build's job would then start a kernel after its build ended."""
        if self._ended:
            raise RuntimeError(SERVERS_CLOSED)

    def request(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """The server's answer, or None once it is gone or stuck (then it is killed)."""
        with self._lock:
            if self._broken:
                return None
            process = self._started()
            if process.stdin is None or process.stdout is None:
                return None
            try:
                process.stdin.write(json.dumps(message).encode() + b"\n")
                process.stdin.flush()
                answered = select.select([process.stdout], [], [], self.PATIENCE)[0]
                line = process.stdout.readline() if answered else b""
            except (OSError, ValueError):  # ValueError: its pipe is closed already
                line = b""
            if not line:
                self._broken = True
                with contextlib.suppress(OSError):
                    process.kill()
                return None
            self._serving = True
            return json.loads(line)

    def hang_up(self) -> None:
        """Tell the server to end (its stdin closes): it kills its kernels and removes their folders.

        A server that has answered nothing yet is still importing (torch: seconds) and reads
        no pipe until it is done, while a worker waits for its first answer with the lock held:
        it has no kernel either, so it is killed at once. An interrupt in the first seconds of a
        sweep's build waited 10-13 s for it here.
        """
        self._broken = self._ended = True  # from now on nothing starts it or asks it anything
        process = self._process
        if process is not None and not self._serving:
            with contextlib.suppress(OSError):
                process.kill()  # the worker waiting on it reads the end of its pipe
        with self._lock:
            process = self._process
            if process is not None and process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()

    def wait_ended(self) -> None:
        """Wait for the server told to end, briefly; then remove its own folder."""
        process = self._process
        if process is not None:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        shutil.rmtree(self.private, ignore_errors=True)


class KernelServers:
    """The fork servers of one build, one per distinct server environment (normally one).

    Usable from many threads; `close` ends them all.
    """

    def __init__(self) -> None:
        self._servers: dict[tuple[tuple[tuple[str, str], ...], tuple[str, ...]], KernelServer] = {}
        self._lock = threading.Lock()
        self._live: dict[int, Kernel] = {}
        """Kernels started for this build and not yet discarded."""
        self._closed = False

    def track(self, kernel: Kernel) -> None:
        with self._lock:
            self._live[id(kernel)] = kernel

    def untrack(self, kernel: Kernel) -> None:
        with self._lock:
            self._live.pop(id(kernel), None)

    def kill_all(self) -> int:
        """Kill every kernel of this build still running and remove its folders (an interrupt:
        the worker thread that drove it may never get to); the number that were running."""
        with self._lock:
            live = list(self._live.values())
        return sum(discard_kernel(kernel, driver=False) for kernel in live)

    def server_for(self, kernel_env: dict[str, str], preload: tuple[str, ...] = (),
                   gather_preload: tuple[str, ...] = ()) -> KernelServer | None:
        """The server for a kernel with this environment, started now if needed; None (exec
        each kernel) off Linux, where fork without exec is not safe for every library, or
        with LABBOOK_KERNELS=exec.

        With `preload`, a server that also imported those modules (a sweep's points import
        them in every kernel: numpy costs 0.13 s, torch 2 s); it never runs a post's code, and
        forks only for kernels that would import the same modules. LABBOOK_PRELOAD=0 turns it off.

        Its fallback is the server of the sweep's gather: one that preloads `gather_preload`
        (the gather's own imports), whose fallback is the plain server; or the plain server
        itself. It is started once the first point is forked, unless the gather forks from
        this server (`gather_preload == preload`, as the gather's own job says). A server that
        cannot fork (a preloaded module started a thread) hands its kernels down that line.
        """
        if not sys.platform.startswith("linux") or os.environ.get("LABBOOK_KERNELS") == "exec":
            return None
        if os.environ.get("LABBOOK_PRELOAD") == "0":
            preload = gather_preload = ()
        plain = self._server(kernel_env, (), deferred=True) if preload else None
        fallback = plain
        if preload and gather_preload and gather_preload != preload:
            fallback = self._server(kernel_env, gather_preload, plain, deferred=True, ahead=False)
        return self._server(kernel_env, preload, fallback, ahead=gather_preload != preload)

    def _server(self, kernel_env: dict[str, str], preload: tuple[str, ...], fallback: KernelServer | None = None,
                *, deferred: bool = False, ahead: bool = True) -> KernelServer:
        env = _server_environment(kernel_env, preload)
        key = (tuple(sorted(env.items())), preload)
        with self._lock:
            if self._closed:  # a worker still finishing an interrupted build: no server nobody would end
                raise RuntimeError(SERVERS_CLOSED)
            if key not in self._servers:
                self._servers[key] = KernelServer(env, preload, fallback, deferred=deferred, ahead=ahead)
            server = self._servers[key]
        if not deferred:
            server.start()  # asked for itself: a fallback made earlier starts now
        return server

    def close(self) -> None:
        """Kill the kernels still running, then end the servers."""
        self.kill_all()
        with self._lock:
            servers, self._servers, self._closed = list(self._servers.values()), {}, True
        for server in servers:  # all told first: they end side by side
            server.hang_up()
        for server in servers:
            server.wait_ended()

    def __enter__(self) -> KernelServers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ForkedProcess:
    """A forked kernel, seen as a Popen: the server is its parent, so the server reaps it.

    Its pid cannot be reused while labbook holds it: the server reaps a kernel only when
    asked by `poll`, and labbook signals it no more once `poll` has seen it end.
    """

    stdin = stdout = stderr = None

    def __init__(self, server: KernelServer, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            reply = self.server.request({"wait": self.pid})
            if reply is not None:
                self.returncode = reply["status"]
            elif not _exists(self.pid):  # the server is gone; its kernels go too
                self.returncode = -signal.SIGKILL
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.returncode is None:
            _until_ended(self.pid, timeout)
        pause = 0.002
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired([str(self.pid)], timeout or 0)
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        return code

    def send_signal(self, number: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, number)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def _until_ended(pid: int, timeout: float | None) -> None:
    """Sleep until the process `pid` (not our child: the server's) has ended, or `timeout`.

    Linux's pidfd says so the moment it happens: a killed kernel is then reaped on the first
    ask, where polling the server slept 2 + 4 + 8 ms on every point of a sweep. Where pidfd
    is missing, nothing: `wait`'s polling does it all.
    """
    import select

    try:
        descriptor = os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux ≥ 5.3, or already reaped
        return
    try:
        select.select([descriptor], [], [], timeout)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
