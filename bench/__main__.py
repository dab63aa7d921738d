"""`python -m bench` from the repository's root: the same as `python bench/bench.py`."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
