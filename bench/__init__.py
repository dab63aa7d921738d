"""labbook's benchmark: `python bench/bench.py` (or `python -m bench`); see bench/RESULTS.md.

harness.py measures one command (wall clock, memory, the machine's other load) and keeps the
medians; posts.py makes the synthetic posts; scenarios/ holds what labbook is asked to do
(builds, serve, sweeps); peers.py runs the same work as plain Python, nbconvert and Jupyter
Book; report.py checks the targets and writes RESULTS.md and results.json; cli.py ties them.
The benchmark imports nothing of labbook: every labbook run is a subprocess, as a user types it.
"""
