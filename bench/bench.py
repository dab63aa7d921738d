"""Benchmark labbook against its own targets, a plain-Python floor, nbconvert and Jupyter Book 1.x,
and a sweep against a plain loop over its grid (at -j1, -j2 and on a Dask cluster).

    python bench/bench.py [--sizes 20,100,1000] [--repeat 5] [--peers/--no-peers] [--quick]
                          [--sweep-points 64] [--point-seconds 0.5] [--only serve|sweep]

The code is the package beside this file (bench/cli.py and its neighbours); this script only
puts the repository's root on the path, so that `bench` is that package, and runs it.
Writes bench/RESULTS.md and bench/results.json.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    root = str(Path(__file__).resolve().parent.parent)
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path[0] = root  # else `import bench` would find this very file
    elif root not in sys.path:
        sys.path.insert(0, root)
    from bench.cli import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
