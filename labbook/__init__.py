"""labbook: a lab notebook of executable posts, published as a Jekyll site.

The public names are imported lazily, so `labbook` (and the kernel-side `labbook.kernel_side`)
start fast. A post's own code calls `labbook.param(name)` and `labbook.seed()` (labbook/api.py)
for its parameters and seed.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "build": "labbook.build",
    "BuildReport": "labbook.build",
    "check": "labbook.check",
    "load_config": "labbook.config",
    "Config": "labbook.config",
    "Post": "labbook.model",
    "Run": "labbook.model",
    "Page": "labbook.model",
    "Artifact": "labbook.model",
    "LabbookError": "labbook.errors",
    "param": "labbook.api",
    "params": "labbook.api",
    "seed": "labbook.api",
    # in a post's kernel: a sweep point reports scalars, the gather part reads the table
    "observe": "labbook.observations",
    "sweep_table": "labbook.observations",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'labbook' has no attribute {name!r} (a post's code may call labbook.param, "
                         "params, seed, observe and sweep_table)")
