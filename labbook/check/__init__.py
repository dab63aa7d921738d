"""Check: Post + published Run -> PostCheck, for every post.

Re-executes posts in fresh kernels, ignoring every cache, and compares what comes out with
what site/ publishes: data within the post's tolerances, figures by pixel RMS, text outputs
after sanitizing, and claims; the numeric platform of both runs tells digits that differ on
another CPU (`consistent`) from a changed result (`drifted`). A mismatch is a result, not an
exception. Writes into site/ only when asked to record (`labbook check --record`).

Modules: `rerun` (the check itself), `verdicts` (the rule and the platform comparison),
`seeds` (spreads across LABBOOK_SEED), `sweeps` (a sweep post's points and gather), `record`
(run.json and pages), `reports` (terminal lines, JUnit XML, the HTML report).
"""

from __future__ import annotations

from .record import record_verdicts
from .reports import details, printable, summary, write_html_report, write_junit
from .rerun import check
from .seeds import SeedSpread, seed_spread, with_seed
from .verdicts import PASSING, VERDICTS, CheckReport, ClaimResult, PostCheck, compare_runs, platform_change, verdict

__all__ = ["check", "CheckReport", "PostCheck", "ClaimResult", "SeedSpread", "write_junit", "write_html_report",
           "details", "summary", "VERDICTS", "PASSING", "record_verdicts", "compare_runs", "platform_change",
           "verdict", "seed_spread", "with_seed", "printable"]
