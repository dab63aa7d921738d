"""The kernel side of an execution: limits and input tracing, then ipykernel.

Runs inside the kernel process (`python -m labbook.kernel_side -f CONNECTION_FILE`), so it
imports nothing heavy: it must not slow down a kernel's start. `python -m labbook.kernel_side
--serve` is the fork server: it imports ipykernel once and forks a kernel per post, each a
fresh process that never ran anything but those imports.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import signal
import sys
from typing import Any

from labbook import kernel_reset

_reads: set[str] = set()
_REAL_PATHS: dict[str, str] = {}
"""The real path of every module file the fork server imported, found once there: a kernel's
run record asks for them all (~700 files, ~35 ms of `os.path.realpath` a kernel otherwise)."""
_THREADPOOLCTL: Any = None
"""threadpoolctl as the fork server imported it, out of sys.modules (see `_warm_blas`)."""
_PARSED: dict[tuple[str, ...], Any] = {}
"""Kernel command lines the fork server parsed, by their arguments with the connection file's
name taken out (the points of a sweep differ only in that name): traitlets builds an argparse
parser of every option of every class for each parse (~10 ms), a fork only copies the result."""
_CONNECTION_FILE = "\x00labbook: the connection file\x00"
"""Where the connection file's name stands in a command line the server parsed."""
_COMMAND_LINE: Any = None
"""In a forked kernel: its command line, parsed (a traitlets Config), or None to parse it."""


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Remember every file opened for reading; cheap, and never raises."""
    if event != "open":
        return
    path, mode = args[0], args[1]
    if isinstance(path, int) or path is None:
        return
    if mode is not None and any(flag in str(mode) for flag in "wax+"):
        return
    try:  # noqa: SIM105 - runs on every open(): a bare try costs less than contextlib.suppress
        _reads.add(os.path.abspath(os.fsdecode(path)))
    except Exception:  # an audit hook must not break the post's own open()
        pass


def _limit_memory() -> None:
    megabytes = int(os.environ.get("LABBOOK_MEMORY_MB") or 0)
    if megabytes > 0:
        import resource

        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


GENERATED = ("__pycache__", ".ipynb_checkpoints", ".git", ".hg", ".svn", ".tox", ".nox", ".venv", "node_modules")
"""Folders, at any depth, that hold what tools made, never the project's sources."""
GENERATED_AT_ROOT = ("build", "dist", "site", "_site", "_html", ".labbook")
"""Folders at the project root that hold outputs: setuptools' and pip's, labbook's and Jekyll's."""
METADATA = (".egg-info", ".dist-info")


def project_source(relative: str, root: str, venvs: dict[str, bool] | None = None) -> bool:
    """True when a file, relative to the project root, can be one of the project's sources.

    Never build outputs, package metadata (pip writes `<name>.egg-info` into the root, and
    importlib.metadata reads it for any library that looks up entry points), virtual
    environments (any folder holding pyvenv.cfg), caches, or labbook's own output. git-ignored
    files are ruled out on labbook's side (one `git check-ignore` per run). `venvs` memoizes
    which folders are environments, across the files of one run.
    """
    parts = relative.replace(os.sep, "/").split("/")
    folders = parts[:-1]
    if folders and folders[0] in GENERATED_AT_ROOT:
        return False
    if any(f in GENERATED or f.endswith(METADATA) for f in folders):
        return False
    venvs = {} if venvs is None else venvs
    for depth in range(1, len(folders) + 1):
        folder = os.path.join(root, *folders[:depth])
        if folder not in venvs:
            venvs[folder] = os.path.isfile(os.path.join(folder, "pyvenv.cfg"))
        if venvs[folder]:
            return False
    return True


def outside_environment(path: str) -> bool:
    """True for files that are not the interpreter's, a virtualenv's, or labbook's own."""
    excluded = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.abspath(__file__))}
    if any(path.startswith(prefix + os.sep) for prefix in excluded):
        return False
    return "site-packages" not in path and "dist-packages" not in path


def next_point(environ: dict[str, str], cwd: str) -> str:
    """This kernel made the next point of its sweep's (`kernel_reset.next_point`), with its reads
    so far forgotten: they were the last point's. Called by labbook as a user expression
    (`kernels.pass_on`); empty when done, else why the kernel cannot be reused."""
    refused = kernel_reset.next_point(environ, cwd, project_file=outside_environment)
    if not refused:
        _reads.clear()
    return refused


def report() -> dict[str, Any]:
    """For run.json, after the post's cells ran: the project files this kernel read or imported,
    library versions, and the numeric platform (what the post's libraries chose on this CPU)."""
    root = os.path.realpath(os.environ.get("LABBOOK_ROOT", os.getcwd()))
    cwd = os.path.realpath(os.getcwd())
    seen = set(_reads)
    seen.update(kernel_reset.module_file(m) for m in list(sys.modules.values()))
    files = set()
    venvs: dict[str, bool] = {}
    for path in seen:
        real = (_REAL_PATHS.get(path) or os.path.realpath(path)) if path else ""
        if not real.startswith(root + os.sep) or real.startswith(cwd + os.sep):
            continue
        if not os.path.isfile(real) or real.endswith(".pyc") or not outside_environment(real):
            continue
        relative = os.path.relpath(real, root).replace(os.sep, "/")
        if project_source(relative, root, venvs):
            files.add(relative)
    return {"inputs": sorted(files), "versions": _versions(), "platform": _platform()}


def _versions() -> dict[str, str]:
    """Versions of the libraries that matter, as loaded in this kernel (installed ones otherwise)."""
    import platform

    versions = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for name in ("numpy", "torch", "matplotlib", "ipykernel"):
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None) if module is not None else _installed(name)
        if version:
            versions[name] = str(version)
    return versions


# --- the numeric platform --------------------------------------------------------------------------

_ISA_FLAGS = (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse4_2", "SSE4.2"), ("sve", "SVE"),
              ("asimd", "NEON"))
"""/proc/cpuinfo flags (x86) and features (Arm), widest first."""


def _platform() -> dict[str, Any]:
    """CPU, ISA level, OS and libc, the BLAS libraries loaded and the kernels they chose, and
    what numpy and torch dispatched to: only for the libraries the post imported."""
    import platform

    cpu, flags = _cpu()
    info: dict[str, Any] = {
        "cpu": cpu or platform.processor(),
        "isa": next((name for flag, name in _ISA_FLAGS if flag in flags), ""),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}".strip(),
        "libc": _libc(),
        "blas": _blas(),
    }
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        info["numpy_simd"] = _numpy_simd()
    torch = sys.modules.get("torch")
    if torch is not None:
        info.update(_torch(torch))
    info["variables"] = {name: os.environ[name] for name in NUMERIC_VARIABLES if os.environ.get(name)}
    return info


NUMERIC_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE",
                     "OPENBLAS_CORETYPE", "OPENBLAS_VERBOSE", "NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES",
                     "DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA")
"""Variables that make the libraries choose other numeric code paths than this CPU's best."""


def _torch(torch: Any) -> dict[str, Any]:
    """torch's CPU capability, its threads, and the BLAS it was built with (from its build
    configuration: torch links MKL statically, out of threadpoolctl's sight)."""
    import re

    found: dict[str, Any] = {}
    try:
        found["torch"] = str(torch.backends.cpu.get_cpu_capability())
        found["torch_threads"] = int(torch.get_num_threads())
        config = torch.__config__.show()
    except Exception:  # noqa: BLE001 - an old or partial torch: what it cannot say stays unknown
        return found
    mkl = re.search(r"Math Kernel Library Version ([\d.]+)", config)
    blas = re.search(r"BLAS_INFO=(\w+)", config)
    found["torch_blas"] = f"mkl {mkl[1]}" if mkl else (blas[1] if blas else "")
    return found


@functools.cache
def _cpu() -> tuple[str, frozenset[str]]:
    """The CPU's model name and feature flags: /proc/cpuinfo on Linux, sysctl on macOS."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
                text = cpuinfo.read(1 << 20)
        except OSError:
            return "", frozenset()
        fields: dict[str, str] = {}
        for line in text.split("\n\n", 1)[0].splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip().lower(), value.strip())
        name = fields.get("model name") or fields.get("hardware") or fields.get("cpu model") or ""
        return name, frozenset((fields.get("flags") or fields.get("features") or "").split())
    if sys.platform == "darwin":
        return _sysctl("machdep.cpu.brand_string"), frozenset({
            flag.lower().replace(".", "_") for flag in
            (_sysctl("machdep.cpu.features") + " " + _sysctl("machdep.cpu.leaf7_features")).split()
        } | ({"asimd"} if _sysctl("hw.optional.neon") == "1" else set()))
    return "", frozenset()


def _sysctl(name: str) -> str:
    import subprocess

    try:
        return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


@functools.cache
def _libc() -> str:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):  # not glibc, or not POSIX
        import platform

        name, version = platform.libc_ver()
        return f"{name} {version}".strip()


def _blas() -> list[dict[str, Any]]:
    """Every BLAS loaded in this process, with the kernel it chose and its threads (threadpoolctl
    inspects the loaded libraries; imported here, after the post, never at the kernel's start)."""
    threadpoolctl = _THREADPOOLCTL
    if threadpoolctl is None:
        try:
            threadpoolctl = importlib.import_module("threadpoolctl")
        except ImportError:
            return []
    found = []
    for library in threadpoolctl.threadpool_info():
        if library.get("user_api") != "blas":
            continue
        found.append({"library": str(library.get("internal_api", "")), "version": str(library.get("version") or ""),
                      "kernel": str(library.get("architecture") or ""), "threads": int(library.get("num_threads") or 0),
                      "file": os.path.basename(str(library.get("filepath", "")))})
    return sorted(found, key=lambda b: (b["library"], b["file"]))


def _numpy_simd() -> str:
    """The widest SIMD target numpy's own loops dispatch to on this CPU."""
    try:
        from numpy._core import _multiarray_umath as umath  # type: ignore[attr-defined]
    except ImportError:
        try:
            from numpy.core import _multiarray_umath as umath  # numpy < 2
        except ImportError:
            return ""
    features = getattr(umath, "__cpu_features__", {})
    enabled = [t for t in getattr(umath, "__cpu_dispatch__", []) if features.get(t)]
    baseline = list(getattr(umath, "__cpu_baseline__", []))
    return (enabled or baseline or [""])[-1]


@functools.cache
def _installed(name: str) -> str | None:
    """The installed version, read from the package's metadata folder only (a full scan is slow)."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin:
        return None
    package = os.path.dirname(os.path.dirname(spec.origin))
    prefix = name.replace("-", "_") + "-"
    for entry in os.listdir(package):
        if entry.startswith(prefix) and entry.endswith((".dist-info", ".egg-info")):
            return entry[len(prefix):].rsplit(".", 1)[0]
    return None


def main() -> None:
    _limit_memory()
    sys.addaudithook(_audit)
    with _without_debugpy():
        from ipykernel import debugger, kernelapp  # noqa: F401 - the debugger module, before it can find debugpy

    app = kernelapp.IPKernelApp.instance()
    if _COMMAND_LINE is not None:  # a forked kernel: its command line was parsed in the server
        app.parse_command_line = functools.partial(_parsed_command_line, app, _COMMAND_LINE)  # type: ignore[method-assign]
    app.initialize()
    _ready_to_format(app.kernel.shell)
    kernel_reset.remember_fresh_state(app.kernel.shell)
    app.start()


@contextlib.contextmanager
def _without_debugpy() -> Any:
    """ipykernel imports debugpy (~70-90 ms, pydevd's whole bundle) to offer a debugger, which
    labbook's kernelspec declares it has not: nothing attaches one to a build's kernel. While
    ipykernel's debugger module loads, debugpy cannot be imported, so it sets itself up without
    one; a post that imports debugpy itself still can."""
    blocked = "debugpy" not in sys.modules
    if blocked:
        sys.modules["debugpy"] = None  # type: ignore[assignment]  # the import system's "cannot import"
    try:
        yield
    finally:
        if blocked and "debugpy" in sys.modules and sys.modules["debugpy"] is None:
            del sys.modules["debugpy"]


def _ready_to_format(shell: Any) -> None:
    """Format a string now, before the kernel answers anyone: traitlets makes the display
    formatters (~15 configurables, and their lazy defaults) on the first value shown, which in
    every run is the run record labbook asks for after the last cell (~5 ms of each point's time).
    A kernel is started while the point before it runs, so here they cost no point anything. They
    are the formatters the first display would make; nothing is displayed."""
    with contextlib.suppress(Exception):  # an odd IPython: the first display makes them, as before
        shell.display_formatter.format("")


def _parsed_command_line(app: Any, config: Any, argv: list[str] | None = None) -> None:
    """What traitlets' `Application.parse_command_line` leaves on the application, from a
    command line the fork server parsed: its options, with this kernel's connection file."""
    app.argv = list(sys.argv[1:] if argv is None else argv)
    app.cli_config = config
    app.update_config(config)
    app.extra_args = []


# --- the fork server ------------------------------------------------------------------------------

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
PER_KERNEL = ("LABBOOK_ROOT", "LABBOOK_POST", "LABBOOK_SEED", "LABBOOK_PARAMS", "LABBOOK_MEMORY_MB",
              "LABBOOK_KERNEL_ID", "PYTHONPATH", *THREAD_VARIABLES, "JPY_PARENT_PID")
"""Environment variables that differ between a build's kernels: each forked kernel sets its own
before any other import. Of the modules the server preloads, only ipykernel reads one at import
time (JPY_PARENT_PID, as a class default); a forked kernel gets that one on its command line.
LABBOOK_ROOT differs between the jobs of a Dask worker (each gets a fresh root), so it is one of them."""


def _preload_modules(names: list[str]) -> None:
    """A sweep's server: the modules its points import, once (numpy, torch, pandas). A module
    that fails to import is left for the post's own cell to report; one that starts a thread
    makes the server refuse to fork, and labbook falls back to the plain server."""
    import importlib

    if "numpy" in names:  # numpy 2 imports its random module on first use: ~17 ms in every point
        names = [*names, "numpy.random"]
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException as exc:  # noqa: BLE001 - any failure: the kernel imports it itself
            print(f"labbook: not preloaded: {name}: {type(exc).__name__}: {exc}", file=sys.stderr)


def _warm_libraries() -> None:
    """Do once, here, what the preloaded numerical libraries do the first time a process uses them,
    so no forked point pays it: torch imports `torch._dynamo` (and sympy, ~800 modules: ~2 s)
    the first time an optimizer is made (preloaded when the points use one), and numpy's first matrix
    products and ufunc calls fault in BLAS buffers and fill its dispatch caches (~20-30 ms).

    The global random states are not drawn from (numpy's warm-up has a generator of its own,
    torch's runs under a saved state), and each fork reseeds both anyway. Nothing here starts a
    thread at one thread per kernel; a server that has one anyway refuses to fork, and labbook
    uses the server below it.
    """
    if "torch" in sys.modules:
        with contextlib.suppress(Exception):  # an odd torch: each point pays its first use itself
            _warm_torch(sys.modules["torch"])
    if "numpy" in sys.modules:
        with contextlib.suppress(Exception):
            _warm_numpy(sys.modules["numpy"])


def _warm_torch(torch: Any) -> None:
    """A small model's forward and backward pass; and an optimizer's step when labbook preloaded
    `torch._dynamo` (the points use optimizers: see gather.TORCH_OPTIMIZERS). Without it, the
    first optimizer would import it here, ~2 s that points which never make one need not wait for."""
    with torch.random.fork_rng(devices=[]):
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        loss = torch.nn.functional.mse_loss(model(torch.randn(16, 4)), torch.zeros(16, 1))
        loss.backward()
        if "torch._dynamo" in sys.modules:
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
            optimizer.step()
            optimizer.zero_grad()


def _warm_numpy(numpy: Any) -> None:
    generator = numpy.random.default_rng(0)  # its own generator: the global state is not drawn from
    a, b = generator.standard_normal((64, 16)), generator.standard_normal((16, 8))
    h = numpy.tanh(a @ b)
    (h.T @ h).sum()
    numpy.sqrt(numpy.mean((1 - h**2) * 2.0 / 3))


def _preload() -> None:
    """What every kernel imports before it can answer (~0.25 s of CPU): once, here.

    Nothing that reads per-kernel settings at import time (numpy reads its thread count,
    matplotlib its backend) is preloaded: posts import those themselves, after the fork.
    """
    import faulthandler  # noqa: F401
    import pdb  # noqa: F401
    import sqlite3  # noqa: F401

    import IPython.core.completer  # noqa: F401
    import IPython.core.completerlib  # noqa: F401
    import IPython.core.debugger  # noqa: F401
    import IPython.core.oinspect  # noqa: F401
    import IPython.extensions.storemagic  # noqa: F401
    import tornado.platform.asyncio  # noqa: F401

    with _without_debugpy():
        from ipykernel import debugger, ipkernel, kernelapp, zmqshell  # noqa: F401

    import labbook.api  # noqa: F401 - a post's labbook.param and a point's labbook.observe: ~7 ms each kernel
    import labbook.observations  # noqa: F401

    _warm_run_record()
    _warm_patterns()


def _warm_patterns() -> None:
    """Compile, here, the regular expressions every kernel compiles on its way to its first cell
    (5-8 ms of CPU a kernel): the shell globs its startup folder for `*.py` and `*.ipy`, its completer
    makes its splitters, and IPython tokenizes each cell. Each is made by the code that makes it
    in the kernel, so the caches it fills (re's, tokenize's, pathlib's) are the ones the kernel reads."""
    import io
    import pathlib
    import tokenize

    from IPython.core.completer import IPCompleter
    from IPython.core.inputtransformer2 import TransformerManager

    with contextlib.suppress(Exception):  # a warm-up only: each kernel compiles what is missing
        for pattern in ("*.py", "*.ipy"):
            list(pathlib.Path(os.devnull).parent.glob(pattern))
        list(tokenize.generate_tokens(io.StringIO('x = f"{1}" + """a"""\n').readline))
        TransformerManager().transform_cell("x = 1\n")
        IPCompleter(shell=None, namespace={}, global_namespace={})


def _parse_in_server(template: tuple[str, ...]) -> Any:
    """The command line parsed by an application that is then thrown away; None when it leaves
    arguments unparsed, or holds the connection file anywhere but in one option (the kernel
    then parses its own)."""
    if template not in _PARSED:
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp()
        app.parse_command_line(list(template))
        usable = not app.extra_args and len(_connection_file_options(app.cli_config)) == 1
        _PARSED[template] = app.cli_config if usable else None
    return _PARSED[template]


def _connection_file_options(config: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Where the connection file's name stands in a parsed command line: (its section, option)."""
    return [(section, name) for section in config.values() if isinstance(section, dict)
            for name, value in section.items() if value == _CONNECTION_FILE]


def _parsed_ahead(argv: list[str]) -> Any:
    """A fork's command line, parsed here once for all the kernels that share its arguments;
    None (the kernel parses its own) when it has no `-f FILE` or traitlets would not take it."""
    template = _command_line_template(argv)
    if template is None:
        return None
    try:
        return _parse_in_server(template)
    except (Exception, SystemExit):  # noqa: BLE001 - the kernel parses it again and reports what is wrong
        _PARSED[template] = None
        return None


def _command_line_template(argv: list[str]) -> tuple[str, ...] | None:
    """A kernel's arguments with its connection file's name taken out; None without `-f FILE`."""
    at = _connection_file_at(argv)
    if at is None:
        return None
    return (*argv[:at], _CONNECTION_FILE, *argv[at + 1:], f"--IPKernelApp.parent_handle={os.getpid()}")


def _connection_file_at(argv: list[str]) -> int | None:
    """Where the connection file's name is in a kernel's arguments (after `-f`), if it is."""
    return argv.index("-f") + 1 if "-f" in argv[:-1] else None


def _warm_run_record() -> None:
    """The parts of the run record that are the same in every kernel of this machine, found once
    here so each fork starts with them: `platform` runs `uname -p` in a subprocess on first use,
    and /proc/cpuinfo and the packages' metadata are read once (~40 ms a kernel otherwise)."""
    import platform

    platform.platform(terse=True)
    platform.processor()
    _cpu()
    _libc()
    for name in ("numpy", "torch", "matplotlib"):
        _installed(name)


def _warm_real_paths() -> None:
    """The real paths of the module files imported so far, for every kernel's run record."""
    for module in list(sys.modules.values()):
        if path := kernel_reset.module_file(module):
            _REAL_PATHS[path] = os.path.realpath(path)


def _warm_blas() -> None:
    """A server that preloaded a BLAS (numpy) asks threadpoolctl about it once: each kernel's run
    record then finds the library's version and kernel cached (~15 ms a kernel otherwise; its
    thread count is asked again in each kernel). The module is then taken out of sys.modules, and
    the variable its import sets is put back: a post that imports threadpoolctl itself gets a
    fresh module, as in a fresh process."""
    global _THREADPOOLCTL
    if "numpy" not in sys.modules:
        return
    before = os.environ.get("KMP_DUPLICATE_LIB_OK")
    try:
        import threadpoolctl

        threadpoolctl.threadpool_info()
    except Exception:  # noqa: BLE001 - absent or broken: each kernel asks (and reports) itself
        return
    finally:
        sys.modules.pop("threadpoolctl", None)
        if before is None:
            os.environ.pop("KMP_DUPLICATE_LIB_OK", None)
        else:
            os.environ["KMP_DUPLICATE_LIB_OK"] = before
    _THREADPOOLCTL = threadpoolctl


def _share_heap() -> None:
    """Move every object the server made so far out of the garbage collector's sight, for good.

    A fork shares the server's memory until it writes to a page. A full collection in a kernel
    would write into every object it traverses (~25-35 ms of CPU and ~1500 copied pages a
    kernel, measured with the preload of a sweep of numpy points); the collector starts one
    once enough of a kernel's own objects outlive two younger collections, which the start of
    ipykernel alone does. Frozen, the preloaded modules stay shared: what the Python docs advise
    for a process that forks without exec. They were imported, not run: nothing of theirs is
    garbage a kernel would need collected."""
    import gc

    gc.freeze()


def _single_threaded() -> bool:
    """fork() copies only the calling thread: with another one running, a lock could be held."""
    import threading

    return threading.active_count() == 1 and len(os.listdir("/proc/self/task")) == 1


def _run_kernel(request: dict[str, Any], parsed: Any = None) -> None:
    """The forked child's whole life: become the post's kernel, run it, exit as Python would.
    `parsed`: its command line as the server parsed it, with the connection file left out."""
    global _COMMAND_LINE
    code = 1
    try:
        _become_kernel(request)
        at = _connection_file_at(request["argv"])
        if parsed is not None and at is not None:  # this process's own copy: put the connection file in
            for section, name in _connection_file_options(parsed):
                section[name] = request["argv"][at]
            _COMMAND_LINE = parsed
        main()
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    except BaseException:  # noqa: BLE001 - shown in the kernel's log, which labbook reports
        import traceback

        traceback.print_exc()
    finally:
        import atexit

        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # exiting anyway
                stream.flush()
        os._exit(code)  # never back into the server's loop


def _become_kernel(request: dict[str, Any]) -> None:
    """The post's process state, as a fresh `python -m labbook.kernel_side -f FILE` would have it."""
    os.setsid()  # its own process group, as Popen(start_new_session=True) gives: killpg stops it all
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    _close_inherited(keep=3)
    # typeshed makes sys.__stdin__ Final; a forked kernel must still not read the server's stdin
    sys.stdin = sys.__stdin__ = open(os.devnull)  # type: ignore[misc]  # noqa: SIM115 - kept open for the kernel's life
    os.chdir(request["cwd"])
    server_path = os.environ.get("PYTHONPATH", "")
    os.environ.clear()
    os.environ.update(request["env"], JPY_PARENT_PID=str(os.getppid()))  # exit if the server dies
    sys.path[:] = _kernel_path(sys.path, server_path, os.environ.get("PYTHONPATH", ""), request["cwd"])
    sys.argv[1:] = [*request["argv"], f"--IPKernelApp.parent_handle={os.getppid()}"]
    import importlib

    importlib.invalidate_caches()
    kernel_reset.fresh_random_state()


def _close_inherited(keep: int) -> None:
    """Close every descriptor from `keep` up: the server's pipes are not the kernel's (Linux only,
    as the server is)."""
    for name in os.listdir("/proc/self/fd"):
        if int(name) >= keep:
            with contextlib.suppress(OSError):
                os.close(int(name))


def _kernel_path(server: list[str], server_pythonpath: str, pythonpath: str, cwd: str) -> list[str]:
    """sys.path as `python -m` would build it in the kernel's folder, from the server's own."""
    def entries(value: str) -> list[str]:
        return [p for p in value.split(os.pathsep) if p]

    first = [] if sys.flags.safe_path else [cwd]
    inherited = set(entries(server_pythonpath))
    rest = server[0 if sys.flags.safe_path else 1:]
    return first + entries(pythonpath) + [p for p in rest if p not in inherited]


def _status(pid: int) -> int | None:
    """The kernel's exit code (negative: the signal that killed it), or None while it runs."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return -1
    return os.waitstatus_to_exitcode(status) if done else None


def serve(folder: str, preload: list[str] | None = None) -> None:
    """Answer one JSON line per request line on stdin, until EOF; then kill every kernel forked,
    and remove their folders and its own `folder` (labbook made them all for this build).

    {"fork": {"argv", "env", "cwd", "log"}} -> {"pid": n} or {"error": why};
    {"wait": pid} -> {"status": exit code or null}. A kernel is reaped only when labbook has
    seen it end, so its pid stays its own while labbook may still signal it.
    """
    requests, replies = os.dup(0), os.dup(1)
    os.dup2(2, 1)  # a stray print from an import goes to the server's log, not into a reply
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    _preload()
    _preload_modules(preload or [])
    _warm_libraries()
    _warm_blas()
    _warm_real_paths()
    _share_heap()
    kernels: dict[int, tuple[str, ...]] = {}  # live kernels: their folders (the log's, the working one), marker
    try:
        with os.fdopen(requests, "rb", buffering=0) as incoming, os.fdopen(replies, "wb", buffering=0) as outgoing:
            for line in _lines(incoming):
                reply = _answer(json.loads(line), kernels)
                outgoing.write(json.dumps(reply).encode() + b"\n")
    except OSError:  # labbook died mid-request (EPIPE on the reply): clean up all the same
        pass
    finally:
        _end(kernels, folder)
    _leave()


def _leave() -> None:
    """Exit now, without Python's finalization: the server ran no code of a post, and tearing
    down the modules it preloaded took 0.1-0.25 s (numpy, matplotlib), which labbook waits for
    at the end of every build that ran a kernel."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # exiting anyway
            stream.flush()
    os._exit(0)


def _answer(request: dict[str, Any], kernels: dict[int, tuple[str, ...]]) -> dict[str, Any]:
    """One request's reply; a fork registers the new kernel and its folders in `kernels`."""
    if "wait" in request:
        status = _status(request["wait"])
        if status is not None:
            kernels.pop(request["wait"], None)
        return {"status": status}
    if not _single_threaded():
        return {"error": "the fork server is no longer single-threaded"}
    parsed = _parsed_ahead(request["fork"]["argv"])
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _run_kernel(request["fork"], parsed)
    fork = request["fork"]
    kernels[pid] = (os.path.dirname(fork["log"]), fork["cwd"], fork["env"].get("LABBOOK_KERNEL_ID", ""))
    return {"pid": pid}


def kill_marked(name: str, value: str) -> int:
    """SIGKILL every process whose environment holds `name=value` (but this one); the number.

    A kernel's daemons that left its process group (start_new_session=True) still carry the
    kernel's marker variable: this is how they are found. Linux (/proc) only; elsewhere, 0.
    """
    needle = f"{name}={value}".encode() + b"\0"
    killed = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as stream:
                if needle not in stream.read() + b"\0":
                    continue
            os.kill(int(entry), signal.SIGKILL)
            killed += 1
        except OSError:
            continue
    return killed


def _end(kernels: dict[int, tuple[str, ...]], own: str) -> None:
    """Labbook is done or dead: no kernel of its may outlive it, nor their folders, nor ours."""
    import shutil

    for pid, (*_folders, marker) in kernels.items():
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        if marker:
            kill_marked("LABBOOK_KERNEL_ID", marker)
    for folder in [own, *(f for *folders, _ in kernels.values() for f in folders)]:
        if os.path.basename(folder).startswith("labbook-"):  # only ever the temporary folders labbook made
            shutil.rmtree(folder, ignore_errors=True)


def _lines(stream: Any) -> Any:
    """Lines read with os.read underneath: nothing buffered that a forked child would inherit."""
    pending = b""
    while True:
        chunk = stream.read(65536)
        if not chunk:
            return
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from (line for line in complete if line.strip())


if __name__ == "__main__":
    from labbook import kernel_side

    if sys.argv[1:2] == ["--serve"]:
        kernel_side.serve(sys.argv[2], sys.argv[4].split(",") if sys.argv[3:4] == ["--preload"] else [])
    else:
        kernel_side.main()
