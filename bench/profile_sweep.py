"""Where a sweep's per-point time goes: one `labbook build` of the benchmark's sweep post, run in
this process with timers around labbook's functions (wall clock and this process's CPU).

    python bench/profile_sweep.py [--points 16] [--point-seconds 0.5] [-j 1] [--workdir DIR]

Not part of the benchmark's report: a tool for PROFILE.md. It is the only file of bench/ that
imports labbook's modules, all named in `TIMED` (executor.py becoming dispatch.py is one line).
Kernels are other processes: their CPU is read from the run records (each cell's seconds) and
from the children's rusage once the build is over.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

TIMED = {
    "labbook.kernels": ["start_kernel", "stop_kernel", "discard_kernel", "KernelServers.server_for", "KernelServer.fork",
                        "KernelServer.request", "ForkedProcess.poll", "_kernel_manager"],
    "labbook.execute": ["execute", "_notebook", "_run_hidden", "_collect_data", "_notebook_bytes", "_hash_inputs",
                        "_place", "_cell_outputs", "_inline_in_kernel"],
    "labbook.dispatch": ["run_job", "localized", "_start_ahead"],
    "labbook.cache": ["Store.put", "Store.lookup"],
    "labbook.gather": ["SweepPlan.take", "SweepPlan._look_up", "SweepPlan._points_done", "SweepPlan._layout",
                       "SweepPlan._result", "preload_modules"],
    "labbook.render": ["render"],
    "nbclient.client": ["NotebookClient.start_new_kernel_client", "NotebookClient.execute_cell"],
    "jupyter_client.manager": ["AsyncKernelManager.start_kernel", "AsyncKernelManager._async_pre_start_kernel",
                               "AsyncKernelManager._async_launch_kernel", "AsyncKernelManager._async_post_start_kernel"],
}
"""module -> functions (Class.method) to time. The only place bench/ names labbook's modules."""

STATS: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
"""name -> [calls, wall seconds, CPU seconds of the calling thread]."""
_LOCK = threading.Lock()


def _timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    import inspect

    def record(began: float, cpu: float) -> None:
        with _LOCK:
            entry = STATS[name]
            entry[0] += 1
            entry[1] += time.perf_counter() - began
            entry[2] += time.thread_time() - cpu

    if inspect.iscoroutinefunction(function):
        async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
            began, cpu = time.perf_counter(), time.thread_time()
            try:
                return await function(*args, **kwargs)
            finally:
                record(began, cpu)
        return wrapped_async

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        began, cpu = time.perf_counter(), time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            record(began, cpu)
    return wrapped


def install_timers() -> None:
    """Replace each function of TIMED, in its module and wherever a labbook module imported it by name."""
    for module_name, names in TIMED.items():
        module = importlib.import_module(module_name)
        for qualified in names:
            owner: Any = module
            *path, attribute = qualified.split(".")
            for part in path:
                owner = getattr(owner, part)
            original = getattr(owner, attribute)
            wrapped = _timed(f"{module_name.removeprefix('labbook.')}.{qualified}", original)
            setattr(owner, attribute, wrapped)
            if isinstance(owner, type):
                continue
            for other in list(sys.modules.values()):
                if getattr(other, "__name__", "").startswith("labbook") and getattr(other, attribute, None) is original:
                    setattr(other, attribute, wrapped)


KERNEL_CPU: list[float] = []
"""Each kernel's own CPU seconds (user + system), read from /proc just before labbook stops it."""


def time_kernels() -> None:
    """Wrap kernels.stop_kernel: the kernel's CPU, from /proc/<pid>/stat, before it is killed."""
    from labbook import kernels

    original = kernels.stop_kernel
    ticks = os.sysconf("SC_CLK_TCK")

    def stop_kernel(kernel: Any) -> bool:
        process = getattr(getattr(kernel.manager, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            try:
                fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
                KERNEL_CPU.append((int(fields[11]) + int(fields[12])) / ticks)
            except (OSError, IndexError, ValueError):
                pass
        return original(kernel)

    kernels.stop_kernel = stop_kernel
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("labbook") and getattr(module, "stop_kernel", None) is original:
            module.stop_kernel = stop_kernel


def project(work: Path, points: int, seconds: float) -> Path:
    from bench.harness import SNAPSHOT  # noqa: F401 - the bench package on the path
    from bench.scenarios.sweeps import Grid, calibrate, make_sweep_project

    steps = calibrate(work, seconds)
    seeds = min(8, points)
    grid = Grid(tuple(round(0.001 * (i + 1), 6) for i in range(points // seeds)), tuple(range(seeds)), steps)
    print(f"{grid.points} points, {steps} steps a point (~{seconds:g} s)", flush=True)
    return make_sweep_project(work / "project", grid)


def kernel_seconds(root: Path) -> tuple[list[float], list[float]]:
    """Each point's run.json: its cells' seconds, and the run's own seconds (kernel ready → recorded)."""
    cells, runs = [], []
    for record in sorted((root / "site" / "assets" / "posts").glob("*/points/*/run.json")):
        run = json.loads(record.read_text())
        cells.append(sum(c["seconds"] for c in run["cells"]))
        runs.append(run["seconds"])
    return cells, runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=16)
    parser.add_argument("--point-seconds", type=float, default=0.5)
    parser.add_argument("-j", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    work = args.workdir or Path(tempfile.mkdtemp(prefix="labbook-profile-"))
    work.mkdir(parents=True, exist_ok=True)
    root = project(work, args.points, args.point_seconds)
    from labbook.cli import main as labbook

    install_timers()
    time_kernels()
    began, mine = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    code = labbook(["--root", str(root), "-q", "build", "-j", str(args.j)])
    wall = time.perf_counter() - began
    after, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cells, runs = kernel_seconds(root)
    print(f"\nexit {code}; wall {wall:.2f} s for {len(cells)} points: {wall / max(1, len(cells)):.3f} s a point")
    print(f"labbook process CPU {after.ru_utime + after.ru_stime - mine.ru_utime - mine.ru_stime:.2f} s; "
          f"kernels and servers CPU {children.ru_utime + children.ru_stime:.2f} s")
    if KERNEL_CPU:
        import statistics

        print(f"each kernel's own CPU (fork to stop, {len(KERNEL_CPU)} kernels, the gather's included): "
              f"median {statistics.median(KERNEL_CPU):.3f} s, total {sum(KERNEL_CPU):.2f} s")
    print(f"points' cells {sum(cells):.2f} s ({sum(cells) / max(1, len(cells)):.3f} s a point); "
          f"points' runs {sum(runs):.2f} s ({sum(runs) / max(1, len(runs)):.3f} s a point)\n")
    print(f"{'function':<52} {'calls':>5} {'wall s':>8} {'ms/call':>8} {'CPU s':>7}")
    for name, (calls, seconds, cpu) in sorted(STATS.items(), key=lambda item: -item[1][1]):
        print(f"{name:<52} {calls:>5} {seconds:>8.2f} {1000 * seconds / calls:>8.1f} {cpu:>7.2f}")
    return code


if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
    sys.exit(main())
