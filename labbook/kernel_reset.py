"""In a kernel, between two points of one sweep: put back what a fresh kernel would have.

A fresh ipykernel a point costs ~0.1 s of CPU (its start and IPython's first cell), as much as
a small model's point: at -j2 both cores pay it. So the points of one sweep that run one after
the other on one worker share a kernel, as joblib's and Dask's workers share their processes
between tasks, and the next point starts only from the state a fresh kernel would have:

- the user namespace, IPython's counters and its `Out` cache are reset (`shell.reset`), and
  event callbacks and extensions a point registered or loaded are dropped;
- the modules a point imported from the project (not installed libraries) are forgotten, so
  the next point imports them afresh;
- the working directory (emptied by labbook), environment (and time zone), sys.path, warning
  filters and how warnings are shown, the loggers (a handler a point added to its own logger
  would print every line once more in each later point), recursion limit, standard streams,
  signal handlers (no alarm pending), trace and profile hooks and decimal's context are the
  fresh kernel's, with the next point's parameters and seed;
- matplotlib's figures are closed and its rcParams put back; numpy's error and print options,
  torch's default dtype, thread count, grad mode, determinism, matmul precision and print
  options, and pandas' options are put back (a fresh import's, when a point imported the
  library itself); numpy's, torch's and the stdlib's global generators are reseeded from the
  OS, as in a fresh process;
- what cannot be put back refuses the reuse: a thread or a child process a point left running
  once its namespace is gone (labbook then starts a fresh kernel for the next point); tqdm's
  monitor thread is ended first, as a fresh kernel has none. A point that failed never passes
  its kernel on.

Installed libraries stay imported (their import is the cost saved) with any other state of
their own; a post whose points must not share a process says `labbook: {fresh_kernels: true}`.
Runs in the kernel: imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import random
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["remember_fresh_state", "next_point", "fresh_random_state", "module_file"]

_FRESH: dict[str, Any] = {}
"""The kernel's state just before its first request ran anything: what `next_point` puts back."""


def remember_fresh_state(shell: Any) -> None:
    """Snapshot the kernel's state when its first request starts (its threads then all run),
    before any code of the post; once."""
    def snapshot(*_: Any) -> None:
        shell.events.unregister("pre_execute", snapshot)
        try:
            _FRESH.update(_state(shell))
        except Exception:  # noqa: BLE001 - an odd library: never in the post's output; the kernel is then not reused
            _FRESH.clear()

    shell.events.register("pre_execute", snapshot)


def _state(shell: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "modules": set(sys.modules),
        "path": list(sys.path),
        "environ": dict(os.environ),
        "cwd": os.getcwd(),
        "threads": {t.ident for t in threading.enumerate()},
        "filters": list(warnings.filters),
        "recursion": sys.getrecursionlimit(),
        "streams": (sys.stdout, sys.stderr),
        "loggers": {name: _logger_state(logger) for name, logger in _loggers()},
        "logging_disabled": logging.root.manager.disable,
        "showwarning": (warnings.showwarning, warnings.formatwarning),
        "events": {name: list(callbacks) for name, callbacks in shell.events.callbacks.items()},
        "extensions": set(getattr(shell.extension_manager, "loaded", ())),
        "umask": _umask(),
        "tracing": (sys.gettrace(), sys.getprofile()),
        "signals": {number: signal.getsignal(number) for number in _SIGNALS},
    }
    if "matplotlib" in sys.modules:
        state["rc"] = dict(sys.modules["matplotlib"].rcParams.copy())
    if "numpy" in sys.modules:
        numpy = sys.modules["numpy"]
        state["numpy"] = {"errors": numpy.geterr(), "printing": numpy.get_printoptions()}
    if "torch" in sys.modules:
        state["torch"] = _torch_state(sys.modules["torch"])
    return state


def _torch_state(torch: Any) -> dict[str, Any]:
    return {
        "dtype": torch.get_default_dtype(),
        "threads": torch.get_num_threads(),
        "grad": torch.is_grad_enabled(),
        "deterministic": (torch.are_deterministic_algorithms_enabled(),
                          torch.is_deterministic_algorithms_warn_only_enabled()),
        "matmul": torch.get_float32_matmul_precision(),
        "printing": {name: getattr(torch._tensor_str.PRINT_OPTS, name) for name in TORCH_PRINTING},
    }


NUMPY_DEFAULTS: dict[str, dict[str, Any]] = {
    "errors": {"divide": "warn", "over": "warn", "under": "ignore", "invalid": "warn"},
    "printing": {"edgeitems": 3, "threshold": 1000, "floatmode": "maxprec", "precision": 8, "suppress": False,
                 "linewidth": 75, "nanstr": "nan", "infstr": "inf", "sign": "-", "formatter": None, "legacy": False},
}
"""numpy's settings as a fresh import has them (documented), for a kernel whose points imported
numpy themselves (nothing preloaded it, so the fresh state has none of numpy's)."""

TORCH_PRINTING = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}
"""torch's print options as a fresh import has them (`set_printoptions(profile="default")`)."""


_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGALRM, signal.SIGUSR1, signal.SIGUSR2)
"""Handlers a point may set (SIGINT matters most: it is how a cell's time-out interrupts it)."""


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def next_point(environ: dict[str, str], cwd: str, project_file: Callable[[str], bool]) -> str:
    """Make this kernel the next point's: empty string when done, else why it cannot be reused
    (then labbook discards it). `project_file`: whether a module's file is the project's own
    rather than an installed library's.

    What runs is asked only once the point's namespace is gone: an object it held may end its
    own threads or processes as it goes (a thread pool never shut down, a DataLoader's workers)."""
    if not _FRESH:
        return "its fresh state was not recorded"
    from IPython import get_ipython

    shell = get_ipython()
    _close_figures()
    shell.reset(new_session=True)
    gc.collect()
    _end_tqdm_monitors()
    if reason := _left_running():
        return reason
    for name, callbacks in _FRESH["events"].items():
        shell.events.callbacks[name][:] = callbacks
    _forget_extensions(shell)
    _forget_project_modules(project_file)
    os.chdir(cwd)
    launcher = {k: v for k, v in os.environ.items() if k.startswith("JPY_")}  # the kernel's own (its parent's pid)
    os.environ.clear()
    os.environ.update(environ, **launcher)
    sys.path[:] = _path(cwd, environ)
    import importlib

    importlib.invalidate_caches()
    _restore_interpreter()
    _restore_libraries()
    random.seed()
    fresh_random_state()
    gc.collect()
    return ""


def _end_tqdm_monitors() -> None:
    """tqdm's monitor thread: its first bar starts one for the process's life, and a fresh
    kernel has none until a bar starts it again, as tqdm does when it finds none. Ended here,
    it lets a sweep whose points show progress bars share kernels."""
    for thread in threading.enumerate():
        if type(thread).__name__ == "TMonitor" and type(thread).__module__.startswith("tqdm"):
            with contextlib.suppress(Exception):  # another tqdm: then it is a thread left running
                thread.exit()  # type: ignore[attr-defined]
                thread.tqdm_cls.monitor = None  # type: ignore[attr-defined]


THREADS_ENDING = 0.1
"""Seconds the threads a point started may take to end once its namespace is gone (a thread
pool's workers end when the pool is collected, a few milliseconds later)."""


def _left_running() -> str:
    """Why the point's process is not as it found it: a thread or a child process still there."""
    deadline = time.monotonic() + THREADS_ENDING
    started = [t for t in threading.enumerate() if t.ident not in _FRESH["threads"]]
    for thread in started:
        with contextlib.suppress(RuntimeError, AssertionError):  # a thread C code started cannot be joined
            thread.join(max(0.0, deadline - time.monotonic()))
    running = [t.name for t in started if t.is_alive()]
    if running:
        return f"the point left a thread running ({running[0]})"
    children = _children()
    if children:
        return f"the point left a child process (pid {children[0]})"
    return ""


def _children() -> list[int]:
    """This process's children, alive or not yet reaped (Linux: /proc; elsewhere: none known)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/children") as listing:
                found += [int(pid) for pid in listing.read().split()]
    return found


def _close_figures() -> None:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        with contextlib.suppress(Exception):
            pyplot.close("all")


def _forget_extensions(shell: Any) -> None:
    """IPython extensions a point loaded (`%load_ext autoreload`) count as not loaded: the next
    point's `%load_ext` loads them as a fresh kernel would, rather than printing that they
    already are (their event callbacks went with the point's)."""
    loaded = getattr(shell.extension_manager, "loaded", None)
    if isinstance(loaded, set):
        loaded.clear()
        loaded.update(_FRESH["extensions"])


def _forget_project_modules(project_file: Callable[[str], bool]) -> None:
    """Take out of sys.modules what a point imported that is not an installed library: the
    project's own modules (found on the root or the post's folder), so the next point runs them
    again, as a fresh kernel would."""
    for name in set(sys.modules) - _FRESH["modules"]:
        if any(project_file(os.path.abspath(place)) for place in _places(sys.modules.get(name))):
            del sys.modules[name]


def _places(module: Any) -> list[str]:
    """A module's file and, for a package, its folders: only the real strings among them. A
    module may answer every attribute (torch.classes gives a namespace object for `__path__`,
    which is not iterable: with torch imported by a point, no kernel was ever shared)."""
    places: list[Any] = [module_file(module)]
    with contextlib.suppress(Exception):
        places.extend(getattr(module, "__path__", None) or [])
    return [place for place in places if isinstance(place, str) and place]


def module_file(module: Any) -> str:
    """A module's `__file__`, or '' when it has none that is a string (a module that answers
    every attribute gives an object)."""
    try:
        path = getattr(module, "__file__", None)
    except Exception:  # noqa: BLE001 - a module's own __getattr__ may raise anything
        return ""
    return path if isinstance(path, str) else ""


def _path(cwd: str, environ: dict[str, str]) -> list[str]:
    """sys.path as the fresh kernel had it, with the next point's folder and PYTHONPATH in front."""
    before = _FRESH["environ"].get("PYTHONPATH", "")
    dropped = {p for p in before.split(os.pathsep) if p} | {_FRESH["cwd"]}
    first = [] if sys.flags.safe_path else [cwd]
    pythonpath = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return first + pythonpath + [p for p in _FRESH["path"] if p not in dropped]


def _restore_interpreter() -> None:
    warnings.filters[:] = _FRESH["filters"]  # type: ignore[index]  # a list at run time
    with contextlib.suppress(AttributeError):  # CPython's: makes every module's "shown once" registry stale
        warnings._filters_mutated()  # type: ignore[attr-defined]
    getattr(warnings, "onceregistry", {}).clear()
    sys.setrecursionlimit(_FRESH["recursion"])
    sys.stdout, sys.stderr = _FRESH["streams"]
    _restore_logging()
    warnings.showwarning, warnings.formatwarning = _FRESH["showwarning"]  # logging.captureWarnings replaces it
    os.umask(_FRESH["umask"])
    sys.settrace(_FRESH["tracing"][0])
    sys.setprofile(_FRESH["tracing"][1])
    signal.alarm(0)  # a fresh process has no alarm pending
    for number, handler in _FRESH["signals"].items():
        with contextlib.suppress(OSError, ValueError, TypeError):  # None: a handler not set from Python
            signal.signal(number, handler)
    time.tzset()  # the environment's TZ again
    if "decimal" in sys.modules:
        decimal = sys.modules["decimal"]
        decimal.setcontext(decimal.Context())  # a fresh thread's context: DefaultContext's values


def _restore_libraries() -> None:
    """Each imported library's global settings put back; one that fails is left as it is."""
    for name, restore in _LIBRARY_RESTORERS:
        library = sys.modules.get(name)
        if library is not None:
            with contextlib.suppress(Exception):
                restore(library)


def _restore_numpy(numpy: Any) -> None:
    fresh = _FRESH.get("numpy", NUMPY_DEFAULTS)
    numpy.seterr(**fresh["errors"])
    known = numpy.get_printoptions()  # only the options this numpy has
    numpy.set_printoptions(**{k: v for k, v in fresh["printing"].items() if k in known})


def _restore_pandas(pandas: Any) -> None:
    """A fresh import's options: pandas reads no settings file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # resetting an option pandas deprecated warns, as setting it does
        pandas.reset_option("all")


def _restore_torch(torch: Any) -> None:
    """torch's global settings as the fresh kernel had them; a fresh import's when a point imported torch."""
    fresh = _FRESH.get("torch") or {
        "dtype": torch.float32, "threads": _threads_from_environment(), "grad": True,
        "deterministic": (False, False), "matmul": "highest", "printing": TORCH_PRINTING,
    }
    torch.set_default_dtype(fresh["dtype"])
    if fresh["threads"]:
        torch.set_num_threads(fresh["threads"])
    torch.set_grad_enabled(fresh["grad"])
    deterministic, warn_only = fresh["deterministic"]
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    torch.set_float32_matmul_precision(fresh["matmul"])
    torch.set_printoptions(**fresh["printing"])


def _threads_from_environment() -> int:
    """The thread count torch takes from the kernel's environment as it loads (0: its own choice)."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() else 0


def _loggers() -> list[tuple[str, logging.Logger]]:
    """Every logger made so far, the root one named ''."""
    made = [(name, logger) for name, logger in logging.Logger.manager.loggerDict.items()
            if isinstance(logger, logging.Logger)]  # the others are placeholders for a dotted name's parents
    return [("", logging.getLogger()), *made]


def _logger_state(logger: logging.Logger) -> tuple[Any, ...]:
    return logger.level, list(logger.handlers), logger.propagate, logger.disabled, list(logger.filters)


_PRISTINE_LOGGER: tuple[Any, ...] = (logging.NOTSET, [], True, False, [])


def _restore_logging() -> None:
    """Every logger as the fresh kernel had it. A logger made since then is reset to a new one's
    state, unless it is named after an installed library still imported (the library set it
    up as it loaded, as it would in a fresh kernel): a point that adds a handler to its own
    logger would otherwise print each line once more in every point after it."""
    fresh = _FRESH["loggers"]
    for name, logger in _loggers():
        state = fresh.get(name) or (None if _library_logger(name) else _PRISTINE_LOGGER)
        if state is not None and _logger_state(logger) != state:
            level, handlers, propagate, disabled, filters = state
            logger.level = level  # not setLevel, which empties every logger's cache each time
            logger.handlers[:] = handlers
            logger.propagate, logger.disabled = propagate, disabled
            logger.filters[:] = filters
    logging.disable(_FRESH["logging_disabled"])  # and empties the loggers' level caches, once


def _library_logger(name: str) -> bool:
    """Named after a module still imported, or a package of one (`logging.getLogger(__name__)`
    in an installed library); the project's own modules are forgotten by now."""
    parts = name.split(".")
    return parts[0] != "__main__" and any(".".join(parts[:end]) in sys.modules for end in range(len(parts), 0, -1))


def _restore_rc(matplotlib: Any) -> None:
    """rcParams as the fresh kernel had them; as a fresh import sets them when a point imported
    matplotlib first (its file's values, the backend kept), as matplotlib's rc_context does."""
    rc = matplotlib.rcParams
    fresh = dict(_FRESH["rc"]) if "rc" in _FRESH else dict(matplotlib.rcParamsOrig.copy())
    fresh.pop("backend", None)
    update = getattr(rc, "_update_raw", None) or (lambda values: dict.update(rc, values))
    update(fresh)


_LIBRARY_RESTORERS: tuple[tuple[str, Callable[[Any], None]], ...] = (
    ("matplotlib", _restore_rc),
    ("numpy", _restore_numpy),
    ("torch", _restore_torch),
    ("pandas", _restore_pandas),
)
"""The libraries whose global settings a point may change, and what puts each back."""


def fresh_random_state() -> None:
    """What a fresh process would have: numpy's and torch's global generators seeded from the OS.
    The stdlib's `random` reseeds itself after a fork; numpy's and torch's do not, and every
    kernel forked from a server that imported them would otherwise draw the same unseeded numbers."""
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        with contextlib.suppress(Exception):  # an odd numpy: the post seeds its own generators anyway
            numpy_random.seed()
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            torch.seed()  # as torch seeds itself when it loads: from the OS
