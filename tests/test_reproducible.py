"""Reproducible on someone else's machine, with real kernels: the numeric platform in the run
record, `consistent` versus `drifted`, tolerances an author can reason about, reports that stay
valid XML, a check with no side effects, and a check that races a build."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from labbook.check import check
from labbook.cli import main
from labbook.config import load_config

from .helpers import make_project, wait_for

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

POSTS = {
    # numbers perturbed by an environment variable: a stand-in for another CPU's last digits
    "drift.md": """---
title: Drift
date: 2026-01-01
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
    # a stable prefix, then a chaotic tail: the logistic map at r = 3.9 from a perturbed start
    "chaos.md": """---
title: Chaos
date: 2026-01-02
---

```python
import os, numpy as np
x = 0.2 + float(os.environ.get("SHIFT", "0")) * 1e-12
xs = []
for step in range(600):
    xs.append(x)
    x = 3.9 * x * (1 - x) if step >= 100 else x
np.savetxt("trajectory.csv", np.c_[np.arange(600), xs], delimiter=",", header="step,x", comments="")
```
""",
    # waits for a file while the check runs it, so that a build can overtake the check
    "race.md": """---
title: Race
date: 2026-01-03
---

```python
import os, time
hold = os.environ.get("HOLD")
if hold:
    open(hold + ".waiting", "w").close()
    while not os.path.exists(hold):
        time.sleep(0.05)
value = 1
```

```python
#| claim: the value is one
assert value == 1, f"value is {value}"
```
""",
    # an error whose message holds what XML and terminals must never see raw
    "weird.md": """---
title: Weird
date: 2026-01-04
---

```python
import os
if os.environ.get("WEIRD"):
    raise ValueError("bell\\x07 nul\\x00 osc\\x1b]0;owned\\x07 csi\\x1b[31m red \\ufffe")
```

```python
#| claim: nothing odd
assert not os.environ.get("WEIRD_CLAIM"), "odd\\x01\\x1b]8;;file:///etc\\x07link\\x1b]8;;\\x07"
```
""",
}


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    root = make_project(tmp_path_factory.mktemp("repro") / "p", POSTS)
    assert main(["--root", str(root), "-q", "build"]) == 0
    return root


@pytest.fixture
def project(published, tmp_path) -> Path:
    return Path(shutil.copytree(published, tmp_path / "p"))


def run_json(root: Path, slug: str) -> dict:
    return json.loads((root / "site/assets/posts" / slug / "run.json").read_text())


def set_published_platform(root: Path, slug: str, **changes) -> None:
    """Pretend the published run executed elsewhere: the test's "other platform"."""
    path = root / "site/assets/posts" / slug / "run.json"
    record = json.loads(path.read_text())
    if changes.pop("remove", False):
        del record["platform"]
    else:
        record["platform"].update(changes)
    path.write_text(json.dumps(record, indent=1))


def one(root: Path, slug: str, **kwargs):
    (result,) = check(load_config(root), only=[root / f"posts/{slug}.md"], **kwargs).posts
    return result


def test_the_run_record_holds_the_numeric_platform_collected_in_the_kernel(published):
    platform = run_json(published, "drift")["platform"]
    assert platform["machine"] and platform["system"] and platform["cpu"]
    if sys.platform.startswith("linux") and platform["machine"] == "x86_64":
        assert platform["isa"] in ("AVX-512", "AVX2", "AVX", "SSE4.2") and platform["libc"].startswith("glibc")
    assert platform["numpy_simd"], "the post imported numpy"
    assert any(b["library"] in ("openblas", "mkl", "blis", "flexiblas") and b["threads"] == 1 for b in platform["blas"])
    assert "torch" not in platform or not platform["torch"], "the post never imported torch"
    page = next((published / "site/_posts").glob("*-drift.html")).read_text()
    assert "Platform: " in page and platform["cpu"] in page


def test_digits_that_differ_on_another_platform_with_claims_holding_are_consistent(project, monkeypatch, capsys):
    set_published_platform(project, "drift", isa="AVX2", cpu="AMD EPYC 7B13",
                           blas=[{"library": "openblas", "version": "0.3.27", "kernel": "Zen", "threads": 1}])
    monkeypatch.setenv("SHIFT", "0.001")
    result = one(project, "drift")
    assert result.verdict == "consistent" and result.passed() and not result.passed(strict=True)
    assert result.reason.startswith("claims hold; numbers differ on a different platform: published on AMD EPYC 7B13 "
                                    "(ISA AVX2, BLAS openblas 0.3.27 Zen ×1")
    assert "checked on " in result.reason
    (difference,) = result.differences  # the same per-file differences as a drift
    assert difference.name == "data/values.csv" and "column 'v'" in difference.reason
    post = str(project / "posts/drift.md")
    assert main(["--root", str(project), "check", post]) == 0
    assert main(["--root", str(project), "check", "--strict", post]) == 1
    assert "≈ posts/drift.md consistent" in capsys.readouterr().out


def test_the_same_drift_on_the_same_platform_stays_drifted(project, monkeypatch):
    monkeypatch.setenv("SHIFT", "0.001")
    result = one(project, "drift")
    assert result.verdict == "drifted" and not result.reason and not result.note


def test_a_run_published_before_platform_records_drifts_and_says_why(project, monkeypatch):
    set_published_platform(project, "drift", remove=True)
    monkeypatch.setenv("SHIFT", "0.001")
    result = one(project, "drift")
    assert result.verdict == "drifted" and "records no numeric platform" in result.note


def test_a_window_and_a_summary_pass_what_the_whole_file_fails(project, monkeypatch):
    monkeypatch.setenv("SHIFT", "1")  # 1e-12 at the start: the tail of the chaotic map is another one
    whole = one(project, "chaos")
    assert whole.verdict == "drifted" and "column 'x'" in whole.differences[0].reason
    post = project / "posts/chaos.md"
    post.write_text(post.read_text().replace("date: 2026-01-02\n", """date: 2026-01-02
labbook:
  tolerance:
    files:
      trajectory.csv:
        columns:
          x: {rows: 120, summary: {of: [mean, q10, q50, q90], rtol: 0.5}}
"""))  # a tolerance is not part of the key: the published run still holds
    assert one(project, "chaos").verdict == "reproduced"
    post.write_text(post.read_text().replace("rows: 120", "rows: 300"))  # the tail is not the same row by row
    windowed = one(project, "chaos")
    assert windowed.verdict == "drifted" and "at row" in windowed.differences[0].reason


def test_junit_and_the_terminal_get_no_control_characters(project, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("WEIRD", "1")
    junit = tmp_path / "junit.xml"
    assert main(["--root", str(project), "check", "--junit", str(junit), str(project / "posts/weird.md")]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x07" in out
    case = ET.parse(junit).getroot().find("testsuite/testcase")
    assert "bell\\x07 nul\\x00 osc csi red \\ufffe" in case.find("error").get("message")
    monkeypatch.delenv("WEIRD")
    monkeypatch.setenv("WEIRD_CLAIM", "1")
    assert main(["--root", str(project), "check", "--junit", str(junit), str(project / "posts/weird.md")]) == 1
    failure = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert failure.get("message").startswith("claim broken: nothing odd") and "odd\\x01link" in failure.text


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


def test_check_changes_no_tracked_file_unless_told_to_record(project, monkeypatch):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git(project, "init", "-q")
    git(project, "add", ".")
    git(project, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "published")
    monkeypatch.setenv("SHIFT", "0.001")
    assert main(["--root", str(project), "-q", "check"]) == 1  # drifted: still nothing written
    assert main(["--root", str(project), "-q", "check", "--no-record", str(project / "posts/race.md")]) == 0
    assert git(project, "status", "--porcelain", "--untracked-files=all") == ""
    assert main(["--root", str(project), "-q", "check", "--record", str(project / "posts/race.md")]) == 0
    changed = git(project, "status", "--porcelain").split()
    assert "site/assets/posts/race/run.json" in changed
    assert run_json(project, "race")["check"]["verdict"] == "reproduced"


def test_a_check_never_records_onto_a_run_a_build_published_meanwhile(project, tmp_path):
    hold = tmp_path / "go"
    checking = subprocess.Popen(
        [sys.executable, "-m", "labbook", "--root", str(project), "check", "--record", str(project / "posts/race.md")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**_env(), "HOLD": str(hold)})
    try:
        wait_for(lambda: Path(str(hold) + ".waiting").exists() or checking.poll() is not None, timeout=120)
        post = project / "posts/race.md"
        post.write_text(post.read_text().replace("value = 1", "value = 2"))  # its claim now breaks
        main(["--root", str(project), "-q", "build"])
        rebuilt = run_json(project, "race")
        assert rebuilt["cells"][1]["claim"]["holds"] is False
        hold.touch()
        out, err = checking.communicate(timeout=120)
    finally:
        checking.kill()
    assert "reproduced" in out  # the check judged the run it compared …
    assert run_json(project, "race") == rebuilt  # … and recorded nothing onto the new one
    assert "not recorded: site/ now publishes another run of this post" in err


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("SHIFT", "WEIRD", "WEIRD_CLAIM")}


INPUTS_POST = """---
title: Reads around
date: 2026-01-05
---

```python
import importlib.metadata, os
root = os.environ["LABBOOK_ROOT"]
groups = importlib.metadata.entry_points()   # as torch does at import: reads every *.egg-info on sys.path
for name in ("data.txt", "ignored.txt", "build/lib/copy.txt", "env/lib/thing.txt", "dist/notes.txt"):
    print(name, open(os.path.join(root, name)).read().strip())
```
"""


def test_only_the_projects_sources_are_found_inputs(tmp_path, capsys):
    """A project installed with pip (egg-info in the root, build/ and dist/), holding a
    virtual environment and git-ignored files: its run records data.txt alone, so a fresh clone
    finds nothing stale and executes nothing."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = make_project(tmp_path / "p", {"reads.md": INPUTS_POST}, pyproject=(
        '\n[project]\nname = "readsaround"\nversion = "1.0"\n[tool.setuptools]\npy-modules = []\n'))
    (root / "data.txt").write_text("real input\n")
    (root / "ignored.txt").write_text("a local scratch file\n")
    (root / ".gitignore").write_text("ignored.txt\n")
    (root / "env/lib").mkdir(parents=True)
    (root / "env/pyvenv.cfg").write_text("home = /usr/bin\n")
    (root / "env/lib/thing.txt").write_text("inside a virtual environment\n")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(root / "dist"), str(root)], check=True, capture_output=True)  # build/, dist/, egg-info
    assert list(root.glob("*.egg-info/entry_points.txt")) or list(root.glob("*.egg-info/PKG-INFO"))
    (root / "build/lib").mkdir(parents=True, exist_ok=True)
    (root / "build/lib/copy.txt").write_text("a build output\n")
    (root / "dist/notes.txt").write_text("next to the wheel\n")
    git(root, "init", "-q")
    assert main(["--root", str(root), "-q", "build"]) == 0
    assert run_json(root, "reads")["inputs"] == {"data.txt": run_json(root, "reads")["inputs"]["data.txt"]}
    for generated in [*root.glob("*.egg-info"), root / "build", root / "dist", root / "env", root / ".labbook"]:
        shutil.rmtree(generated)  # a fresh clone has none of them
    capsys.readouterr()
    assert main(["--root", str(root), "status"]) == 0
    assert "stale" not in capsys.readouterr().out
    assert main(["--root", str(root), "build"]) == 0
    assert "0 executed" in capsys.readouterr().err
