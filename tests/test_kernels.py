"""Kernel processes: a kernel forked from the server is the kernel an exec would have started.

The probe post prints what a post could observe about its process; a forked kernel and an
exec'd one must print the same. Then the server's life: its kernels end with it, and a build
falls back to exec when it is gone.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from labbook import execute, kernel_side, kernels, source
from labbook.config import load_config
from labbook.errors import KernelDied

from .helpers import make_project, parent_pid, proc_stat, wait_for

pytestmark = pytest.mark.kernel

PROBE = '''---
title: Probe
date: 2026-01-01
labbook:
  seed: 7
  threads: 3
  memory_mb: 3000
---

```python
import json, os, resource, signal, sys, threading
here = os.getcwd()
def shown(path):
    return path.replace(here, "<cwd>")
print(json.dumps({
    "cwd_is_fresh": os.listdir(here) == [],
    "path": [shown(p) for p in sys.path],
    "marked": len(os.environ.get("LABBOOK_KERNEL_ID", "")) == 32,
    "env": {k: os.environ.get(k) for k in sorted(os.environ) if k.startswith("LABBOOK_") and k != "LABBOOK_KERNEL_ID"
            or k in ("PYTHONHASHSEED", "PYTHONPATH", "OMP_NUM_THREADS", "MPLBACKEND", "PYTHONDONTWRITEBYTECODE")},
    "parent_is_alive": os.path.exists(f"/proc/{os.environ['JPY_PARENT_PID']}"),
    "parent_is_my_parent": int(os.environ["JPY_PARENT_PID"]) == os.getppid(),
    "polls_that_parent": get_ipython().kernel.parent.parent_handle == int(os.environ["JPY_PARENT_PID"]),
    "group_leader": os.getpgid(0) == os.getpid(),
    "hash": hash("labbook"),
    "bytecode": sys.dont_write_bytecode,
    "memory_limit": resource.getrlimit(resource.RLIMIT_AS)[0],
    "handlers": [str(signal.getsignal(s)) for s in (signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE)],
    "numpy_loaded": "numpy" in sys.modules,
    "history_kept": get_ipython().history_manager.enabled,
    "connection_file": os.path.basename(get_ipython().kernel.parent.connection_file),
    "its_folder_is_the_kernels": os.path.dirname(get_ipython().kernel.parent.connection_file) != here,
    "unparsed": get_ipython().kernel.parent.extra_args,
    "figure_dpi": __import__("matplotlib_inline.config").config.InlineBackend.instance().print_figure_kwargs["dpi"],
    "stdin_empty": sys.stdin.read() == "" if hasattr(sys.stdin, "read") else None,
    "debugger": hasattr(get_ipython().kernel, "debugger"),
    "debugpy_loaded": "debugpy" in sys.modules,
    "debugpy_importable": __import__("importlib.util").util.find_spec("debugpy") is not None,
}))
```
'''


def probe(root: Path, servers: kernels.KernelServers | None) -> tuple[dict, bool]:
    post, _ = source.read(root / "posts" / "probe.md", load_config(root))
    kernel = kernels.start_kernel(post, root, servers)
    forked = kernel.forked
    run, _ = execute.execute(post, root, root / f"out-{forked}", kernel=kernel)
    text = "".join(o.get("text", "") for o in run.cells[0].outputs if o["output_type"] == "stream")
    return json.loads(text), forked


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj", {"probe.md": PROBE})


def test_a_forked_kernel_sees_what_an_execd_kernel_sees(root):
    exec_view, forked = probe(root, None)
    assert not forked
    with kernels.KernelServers() as servers:
        fork_view, forked = probe(root, servers)
        again, _ = probe(root, servers)  # its command line parsed by the server the first time
    assert forked
    assert fork_view == exec_view == again
    assert fork_view["connection_file"] == "kernel.json" and not fork_view["unparsed"]
    assert fork_view["cwd_is_fresh"] and fork_view["group_leader"]
    assert fork_view["parent_is_my_parent"] and fork_view["polls_that_parent"]
    assert fork_view["path"][:3] == ["<cwd>", str(root / "posts"), str(root)]
    assert fork_view["env"]["LABBOOK_SEED"] == "7" and fork_view["env"]["OMP_NUM_THREADS"] == "3"
    assert fork_view["memory_limit"] == 3000 * 1024 * 1024
    assert not fork_view["numpy_loaded"], "the server preloads nothing that reads per-post settings"
    assert not fork_view["history_kept"], "a build writes nothing into the author's IPython history"
    assert fork_view["figure_dpi"] == 110
    assert not fork_view["debugger"] and not fork_view["debugpy_loaded"], "labbook's kernelspec offers no debugger"
    assert fork_view["debugpy_importable"], "a post may still import debugpy itself"


def test_the_server_parses_a_command_line_once_and_each_fork_gets_its_own_connection_file():
    first = kernel_side._command_line_template(["-f", "/a/kernel.json", "--HistoryManager.enabled=False"])
    second = kernel_side._command_line_template(["-f", "/b/kernel.json", "--HistoryManager.enabled=False"])
    assert first == second and first is not None
    parsed = kernel_side._parse_in_server(first)
    assert str(parsed.HistoryManager.enabled) == "False"
    assert kernel_side._connection_file_options(parsed) == [(parsed.IPKernelApp, "connection_file")]
    assert kernel_side._command_line_template(["--HistoryManager.enabled=False"]) is None
    unparsed = kernel_side._command_line_template(["-f", "/a/kernel.json", "a-script.py"])
    assert unparsed is not None and kernel_side._parse_in_server(unparsed) is None  # the kernel parses its own


GC_PROBE = """---
title: Collector
date: 2026-01-01
---

```python
import gc
print(gc.isenabled(), gc.get_freeze_count() > 1000, "debugpy" in __import__("sys").modules)
```
"""


def test_a_forked_kernel_collects_its_own_garbage_and_leaves_the_servers_objects_shared(tmp_path):
    root = make_project(tmp_path / "proj", {"gc.md": GC_PROBE})
    post, _ = source.read(root / "posts" / "gc.md", load_config(root))
    with kernels.KernelServers() as servers:
        kernel = kernels.start_kernel(post, root, servers)
        assert kernel.forked
        run, _ = execute.execute(post, root, tmp_path / "out", kernel=kernel)
    printed = "".join(o.get("text", "") for o in run.cells[0].outputs if o["output_type"] == "stream")
    assert printed.split() == ["True", "True", "False"]


def test_each_forked_kernel_starts_from_the_pristine_server(root):
    post, _ = source.read(root / "posts" / "probe.md", load_config(root))
    with kernels.KernelServers() as servers:
        first = kernels.start_kernel(post, root, servers)
        second = kernels.start_kernel(post, root, servers)
        try:
            assert first.forked and second.forked
            pids = [k.manager.provisioner.process.pid for k in (first, second)]
            assert pids[0] != pids[1]
            server = servers.server_for(kernels.kernel_environment(post, root))
            assert all(parent_pid(pid) == server.process.pid for pid in pids)
        finally:
            kernels.discard_kernel(first)
            kernels.discard_kernel(second)
        assert all(not _alive(pid) for pid in pids)


def test_closing_the_servers_ends_their_kernels(root):
    post, _ = source.read(root / "posts" / "probe.md", load_config(root))
    servers = kernels.KernelServers()
    kernel = kernels.start_kernel(post, root, servers)
    pid = kernel.manager.provisioner.process.pid
    try:
        servers.close()
        wait_for(lambda: not _alive(pid), timeout=15)
    finally:
        kernels.discard_kernel(kernel)


@pytest.mark.parametrize("found", [0, 1])
def test_a_kernels_processes_are_looked_for_again_only_if_the_last_look_found_some(root, monkeypatch, found):
    """Every process's environment is read to find a kernel's daemons (5 ms on a desktop's 500
    processes); stopping a kernel twice (the run, then its discard) reads them twice only when
    the first look found something, which may have started more before it died."""
    looks = []
    monkeypatch.setattr(kernel_side, "kill_marked", lambda name, value: looks.append(value) or found)
    post, _ = source.read(root / "posts" / "probe.md", load_config(root))
    with kernels.KernelServers() as servers:
        kernel = kernels.start_kernel(post, root, servers)
        assert kernels.stop_kernel(kernel) is True
        kernels.discard_kernel(kernel)
    assert looks == [kernel.marker] * (1 + found) and kernel.marker


def test_when_labbook_dies_the_server_ends_its_kernels_and_removes_their_folders(root):
    post, _ = source.read(root / "posts" / "probe.md", load_config(root))
    with kernels.KernelServers() as servers:
        kernel = kernels.start_kernel(post, root, servers)
        server = servers.server_for(kernels.kernel_environment(post, root))
        pid = kernel.manager.provisioner.process.pid
        server.process.stdin.close()  # what labbook's death does to the pipe, even by SIGKILL
        server.process.wait(timeout=15)
        wait_for(lambda: not _alive(pid), timeout=15)
        assert not server.private.exists() and not kernel.private.exists() and not kernel.workdir.exists()
        kernels.discard_kernel(kernel)


def test_a_killed_server_takes_its_kernels_along_and_the_next_kernel_is_execd(root):
    post, _ = source.read(root / "posts" / "probe.md", load_config(root))
    with kernels.KernelServers() as servers:
        kernel = kernels.start_kernel(post, root, servers)
        pid = kernel.manager.provisioner.process.pid
        server = servers.server_for(kernels.kernel_environment(post, root))
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
        try:
            wait_for(lambda: kernel.manager.provisioner.process.poll() is not None, timeout=15)  # ipykernel's parent poller
            assert not _alive(pid)
        finally:
            kernels.discard_kernel(kernel)
        view, forked = probe(root, servers)
    assert not forked and view["cwd_is_fresh"]


def _alive(pid: int) -> bool:
    try:
        state = proc_stat(pid)[0]
    except OSError:
        return False
    return state != "Z"


def test_labbook_kernels_exec_turns_the_server_off(root, monkeypatch):
    post, _ = source.read(root / "posts" / "probe.md", load_config(root))
    monkeypatch.setenv("LABBOOK_KERNELS", "exec")
    with kernels.KernelServers() as servers:
        assert servers.server_for(kernels.kernel_environment(post, root)) is None


CHATTY = '''---
title: Chatty
date: 2026-01-01
---

```python
print("first")
```

```python
print("second")
```
'''


def _connected_on_a_helper_thread(post, root: Path, servers: kernels.KernelServers, kill: bool = False):
    """What a worker's start-ahead does: start and connect on another thread, with its own loop."""
    import concurrent.futures

    def ahead():
        kernel = kernels.start_kernel(post, root, servers)
        if kill:
            os.killpg(kernel.manager.provisioner.process.pid, signal.SIGKILL)
        return kernels.connect_ahead(kernel)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(ahead).result()


def test_a_kernel_connected_ahead_on_another_thread_runs_here_and_loses_no_output(tmp_path):
    root = make_project(tmp_path / "proj", {"chatty.md": CHATTY})
    post, _ = source.read(root / "posts" / "chatty.md", load_config(root))
    with kernels.KernelServers() as servers:
        kernel = _connected_on_a_helper_thread(post, root, servers)
        assert kernel.client is not None and not isinstance(kernel.client, BaseException)
        run, _ = execute.execute(post, root, root / "out", kernel=kernel)
    assert [o["text"] for cell in run.cells for o in cell.outputs] == ["first\n", "second\n"]
    assert not os.path.exists(kernel.private)


def test_a_kernel_that_dies_before_it_answers_the_client_ahead_is_reported_by_its_run(tmp_path):
    root = make_project(tmp_path / "proj", {"chatty.md": CHATTY})
    post, _ = source.read(root / "posts" / "chatty.md", load_config(root))
    with kernels.KernelServers() as servers:
        kernel = _connected_on_a_helper_thread(post, root, servers, kill=True)
        assert isinstance(kernel.client, RuntimeError)
        with pytest.raises(KernelDied, match="could not start") as caught:
            execute.execute(post, root, root / "out", kernel=kernel)
    assert caught.value.path == "posts/chatty.md" and "Kernel died" in str(caught.value)


def test_a_server_still_importing_its_preloads_ends_at_once_when_hung_up(tmp_path):
    """It reads no request until its imports are done (torch: seconds), while a worker waits for its
    first answer with the server's lock held: an interrupt then waited 10-13 s for it."""
    import time

    (tmp_path / "slow_import_for_test.py").write_text("import time\ntime.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)}
    server = kernels.KernelServer(env, preload=("slow_import_for_test",))
    answers: list[object] = []
    asking = threading.Thread(target=lambda: answers.append(server.request({"wait": 1})), daemon=True)
    asking.start()
    wait_for(server._lock.locked, timeout=10)
    time.sleep(0.3)
    began = time.monotonic()
    server.hang_up()
    server.wait_ended()
    asking.join(timeout=10)
    assert time.monotonic() - began < 5
    assert answers == [None] and server._process is not None and server._process.poll() is not None
    assert not server.private.exists()


def test_a_server_hung_up_before_it_started_is_never_started(tmp_path):
    server = kernels.KernelServer(dict(os.environ), deferred=True)
    server.hang_up()
    server.start()  # what a worker finishing an interrupted job would ask
    assert server._process is None and server.request({"wait": 1}) is None
    server.wait_ended()
    assert not server.private.exists()


def test_no_kernel_starts_for_a_build_whose_servers_are_closed(root):
    """A server's fork that gives None means "exec the kernel instead": once the build's servers
    are closed (an interrupt), a worker finishing its job must get an error, not a fresh kernel."""
    post, _ = source.read(root / "posts" / "probe.md", load_config(root))
    servers = kernels.KernelServers()
    server = servers.server_for(kernels.kernel_environment(post, root))
    servers.close()
    assert server is not None
    with pytest.raises(RuntimeError, match="closed"):
        server.fork([sys.executable, "-m", "labbook.kernel_side", "-f", "k.json"], dict(os.environ), str(root),
                    root / "k.log")


def test_closed_servers_start_no_server(tmp_path):
    servers = kernels.KernelServers()
    servers.close()
    if sys.platform.startswith("linux"):
        with pytest.raises(RuntimeError, match="closed"):
            servers.server_for(dict(os.environ))
