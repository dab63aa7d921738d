"""The kernel side of an execution: limits and input tracing, then ipykernel.

Runs inside the kernel process (`python -m labbook._kernel -f CONNECTION_FILE`), so it
imports nothing heavy: it must not slow down a kernel's start.
"""

from __future__ import annotations

import os
import sys
from typing import Any

_reads: set[str] = set()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Remember every file opened for reading; cheap, and never raises."""
    if event != "open":
        return
    path, mode = args[0], args[1]
    if isinstance(path, int) or path is None:
        return
    if mode is not None and any(flag in str(mode) for flag in "wax+"):
        return
    try:
        _reads.add(os.path.abspath(os.fsdecode(path)))
    except Exception:  # noqa: BLE001 - an audit hook must not break the post's own open()
        pass


def _limit_memory() -> None:
    megabytes = int(os.environ.get("LABBOOK_MEMORY_MB") or 0)
    if megabytes > 0:
        import resource

        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _outside_environment(path: str) -> bool:
    """True for project files: not the interpreter's, not a virtualenv's, not labbook's own."""
    excluded = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.abspath(__file__))}
    if any(path.startswith(prefix + os.sep) for prefix in excluded):
        return False
    return "site-packages" not in path and "dist-packages" not in path


def report() -> dict[str, Any]:
    """Project files this kernel read or imported, and library versions: for run.json."""
    root = os.path.realpath(os.environ.get("LABBOOK_ROOT", os.getcwd()))
    cwd = os.path.realpath(os.getcwd())
    seen = set(_reads)
    seen.update(getattr(m, "__file__", None) or "" for m in list(sys.modules.values()))
    files = []
    for path in seen:
        real = os.path.realpath(path) if path else ""
        if not real.startswith(root + os.sep) or real.startswith(cwd + os.sep):
            continue
        if not os.path.isfile(real) or real.endswith(".pyc") or not _outside_environment(real):
            continue
        files.append(os.path.relpath(real, root).replace(os.sep, "/"))
    return {"inputs": sorted(set(files)), "versions": _versions()}


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
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    from labbook import _kernel

    _kernel.main()
