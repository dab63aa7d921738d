"""labbook check, for real: each verdict, figures by RMS, claims, seeds, JUnit."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from labbook.check import check
from labbook.cli import main
from labbook.config import load_config

from .helpers import make_project

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

POSTS = {
    "steady.md": """---
title: Steady
date: 2026-01-01
---

```python
import time, numpy as np
np.savetxt("values.csv", np.arange(5.0), delimiter=",", header="v", comments="")
print(f"object at {hex(id(object()))} took {time.perf_counter() % 1:.3f} s")
```
""",
    "shifty.md": """---
title: Depends on the environment
date: 2026-01-02
labbook:
  tolerance: {rtol: 1.0e-6, atol: 0}
---

```python
import os, numpy as np
shift = float(os.environ.get("SHIFT", "0"))
np.savetxt("values.csv", np.arange(1.0, 6.0) * (1 + shift), delimiter=",", header="v", comments="")
```

```python
#| claim: the values stay below 10
assert (np.arange(1.0, 6.0) * (1 + shift)).max() < 10, "too large"
```
""",
    "drawing.md": """---
title: A figure
date: 2026-01-03
labbook:
  tolerance: {figure_rms: 2.0}
---

```python
#| label: fig-line
import os, matplotlib.pyplot as plt
offset = float(os.environ.get("OFFSET", "0"))
width = float(os.environ.get("WIDTH", "1.5"))
plt.figure(figsize=(3, 2))
plt.plot([0 + offset, 1 + offset], [0, 1], linewidth=width)
plt.xlim(0, 2)
plt.show()
```
""",
    "seeded.md": """---
title: Seeded
date: 2026-01-04
---

```python
import os, numpy as np
rng = np.random.default_rng(int(os.environ["LABBOOK_SEED"]))
np.savetxt("noise.csv", rng.normal(size=(4, 2)), delimiter=",", header="a,b", comments="")
np.savetxt("fixed.csv", np.ones(3), delimiter=",", header="one", comments="")
```

```python
#| claim: the first noise value is positive
assert rng.normal() > -100 and np.loadtxt("noise.csv", delimiter=",", skiprows=1)[0, 0] > 0
```
""",
}


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    root = make_project(tmp_path_factory.mktemp("check") / "p", POSTS)
    assert main(["--root", str(root), "-q", "build"]) == 0
    return root


@pytest.fixture
def project(published, tmp_path) -> Path:
    return Path(shutil.copytree(published, tmp_path / "p"))


def verdicts(root: Path, **kwargs) -> dict[str, object]:
    report = check(load_config(root), record=False, **kwargs)
    return {p.slug: p for p in report.posts}


def test_deterministic_posts_reproduce_with_sanitized_text(project):
    results = verdicts(project, only=[project / "posts/steady.md", project / "posts/drawing.md"])
    assert {slug: r.verdict for slug, r in results.items()} == {"steady": "reproduced", "drawing": "reproduced"}


def test_an_environment_change_drifts_naming_the_artifact_and_the_magnitude(project, monkeypatch):
    monkeypatch.setenv("SHIFT", "0.001")
    result = verdicts(project, only=[project / "posts/shifty.md"])["shifty"]
    assert result.verdict == "drifted"
    (difference,) = result.differences
    assert difference.name == "data/values.csv" and difference.kind == "data"
    assert difference.magnitude == pytest.approx(0.005, rel=1e-6)
    assert "column 'v'" in difference.reason and "rtol=1e-06" in difference.tolerance


def test_a_claim_made_false_is_reported_as_broken(project, monkeypatch):
    monkeypatch.setenv("SHIFT", "1.5")
    result = verdicts(project, only=[project / "posts/shifty.md"])["shifty"]
    assert result.verdict == "claim broken"
    assert [(c.claim, c.published, c.now, c.message) for c in result.claims] == [
        ("the values stay below 10", True, False, "too large")]


def test_a_moved_figure_fails_with_a_diff_image_and_a_tiny_change_passes(project, monkeypatch, tmp_path):
    monkeypatch.setenv("OFFSET", "0.3")
    result = verdicts(project, only=[project / "posts/drawing.md"], diff_dir=tmp_path / "diffs")["drawing"]
    assert result.verdict == "drifted"
    (difference,) = result.differences
    assert difference.kind == "figure" and difference.magnitude > 2.0
    assert difference.diff_image and Path(difference.diff_image).stat().st_size > 0
    monkeypatch.setenv("OFFSET", "0")
    monkeypatch.setenv("WIDTH", "1.52")
    assert verdicts(project, only=[project / "posts/drawing.md"])["drawing"].verdict == "reproduced"


def test_seeds_report_spread_only_where_the_seed_matters(project):
    result = verdicts(project, only=[project / "posts/seeded.md"], seeds=3)["seeded"]
    spread = {s["name"]: s for s in result.seeds.series}
    assert result.seeds.seeds == 3
    assert spread["noise.csv:a"]["std"] > 0.1
    assert spread["fixed.csv:one"]["std"] == 0
    ((claim, (held, total)),) = result.seeds.claims.items()
    assert total == 3 and 0 <= held <= 3


def test_new_failed_stale_and_unparseable(project, monkeypatch):
    posts = project / "posts"
    (posts / "fresh.md").write_text("---\ntitle: Fresh\ndate: 2026-02-01\n---\n\n```python\nprint(1)\n```\n")
    text = (posts / "steady.md").read_text()
    (posts / "steady.md").write_text(text.replace("print(", "raise RuntimeError('now broken')\nprint("))
    csv = (posts / "shifty.md").read_text().replace(
        'np.savetxt("values.csv"', 'open("values.csv", "wb").write(b"\\x00\\x01 not,a\\ncsv"); np.savetxt("other.csv"')
    (posts / "shifty.md").write_text(csv)
    results = verdicts(project)
    assert results["fresh"].verdict == "new"
    assert results["steady"].verdict == "stale" and "code cell 1 changed" in results["steady"].reason
    assert results["shifty"].verdict == "stale"


def test_a_post_that_now_raises_is_failed_with_its_cell(project, monkeypatch):
    monkeypatch.setenv("SHIFT", "not a number")
    result = verdicts(project, only=[project / "posts/shifty.md"])["shifty"]
    assert result.verdict == "failed"
    assert "CellError in cell 1: ValueError" in str(result.error) and "float(" in result.error.traceback


def test_a_data_file_that_no_longer_parses_drifts_with_a_reason(project):
    folder = project / "site/assets/posts/steady"
    (folder / "data" / "values.csv").write_bytes(b"v\n0\n1\n2\n3\n4\n")  # the published one is fine …
    result = verdicts(project, only=[project / "posts/steady.md"])["steady"]
    assert result.verdict == "reproduced"
    (folder / "data" / "values.csv").write_bytes(b"\x00\x01garbage\n")  # … until it is not
    result = verdicts(project, only=[project / "posts/steady.md"])["steady"]
    assert result.verdict == "drifted" and "parse" in result.differences[0].reason


def test_cli_writes_junit_and_an_html_report_and_records_the_check(project, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OFFSET", "0.3")
    junit, report = tmp_path / "junit.xml", tmp_path / "report"
    code = main(["--root", str(project), "check", "--record", "--junit", str(junit), "--report", str(report)])
    assert code == 1
    out = capsys.readouterr().out
    assert "posts/drawing.md drifted" in out and "posts/steady.md reproduced" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == "4" and suite.get("failures") == "1"
    names = {case.get("name"): case for case in suite.iter("testcase")}
    assert names["posts/drawing.md"].find("failure") is not None
    html = (report / "index.html").read_text()
    assert "drawing/published-fig-line.png" in html and "drawing/diff-fig-line.png" in html
    assert (report / "drawing" / "diff-fig-line.png").is_file()
    page = next((project / "site/_posts").glob("*-steady.html")).read_text()
    assert "reproduced on" in page


def test_a_check_without_seeds_keeps_the_last_seed_spread_on_the_page(project, capsys):
    post = str(project / "posts" / "seeded.md")
    main(["--root", str(project), "check", "--record", "--seeds", "2", post])
    main(["--root", str(project), "check", "--record", post])
    capsys.readouterr()
    record = json.loads((project / "site/assets/posts/seeded/run.json").read_text())["check"]
    assert record["seeds"]["n"] == 2 and record["seeds"]["date"] == record["date"]
    page = next((project / "site/_posts").glob("*-seeded.html")).read_text()
    assert "across 2 seeds" in page and "held on" in page


def test_seeds_refused_on_a_sweep_over_the_seed_say_why_and_record_nothing():
    from labbook.check.seeds import SeedSpread, seed_lines

    refused = SeedSpread(0, {}, (), refused="this sweep varies the seed already")
    assert seed_lines(refused) == ["seeds: none run: this sweep varies the seed already"]
    spread = SeedSpread(3, {"c": (2, 3)}, ({"name": "x", "mean": 1.0, "std": 0.1, "min": 0.9, "max": 1.1, "size": 1},))
    assert seed_lines(spread) == ["seeds: 3", "  claim held on 2/3 seeds: c",
                                  "  x: mean 1, std across seeds 0.1, min 0.9, max 1.1"]
