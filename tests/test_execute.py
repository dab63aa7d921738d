"""Execute stage, with a real ipykernel: capture, environment, errors with post-file lines."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from labbook import execute, source
from labbook.config import load_config
from labbook.errors import BugError, CellError, CellTimeout, KernelDied, PathEscapeError

from .helpers import make_project

pytestmark = pytest.mark.kernel

HEADER = "---\ntitle: T\ndate: 2026-01-01\n{extra}---\n\n"


def post_text(*cells: str, extra: str = "") -> str:
    body = "\n\nSome prose.\n\n".join(f"```python\n{textwrap.dedent(c).strip()}\n```" for c in cells)
    return HEADER.format(extra=extra) + body + "\n"


def run_post(tmp_path: Path, text: str, files: dict[str, str] | None = None, name: str = "p.md"):
    root = make_project(tmp_path / "proj", {name: text})
    for relative, content in (files or {}).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(content)
    post, _ = source.read(root / "posts" / name, load_config(root))
    folder = tmp_path / "out"
    run, warnings = execute.execute(post, root, folder)
    return post, run, folder, warnings


def stdout(run, index: int) -> str:
    return "".join(o.get("text", "") for o in run.cells[index].outputs if o["output_type"] == "stream")


def test_figures_data_and_text_are_captured(tmp_path):
    text = post_text(
        """
        #| label: fig-line
        import matplotlib.pyplot as plt, numpy as np
        np.savetxt("values.csv", np.arange(4), delimiter=",")
        with open("notes.txt", "w") as f:
            f.write("hello")
        print("printed")
        plt.plot([1, 2, 3]); plt.show()
        plt.plot([3, 2, 1]); plt.show()
        """,
        """
        plt.scatter([1], [1]); plt.show()
        42
        """,
    )
    post, run, folder, _ = run_post(tmp_path, text)
    names = {a.name: a for a in run.artifacts}
    assert set(names) == {"figures/fig-line.png", "figures/fig-line-2.png", "figures/fig-3.png",
                          "data/values.csv", "data/notes.txt", "outputs.ipynb"}
    assert (folder / "data" / "notes.txt").read_text() == "hello"
    assert (folder / "figures" / "fig-line.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert names["figures/fig-line.png"].cell == 0 and names["figures/fig-3.png"].cell == 1
    assert stdout(run, 0) == "printed\n"
    assert run.cells[1].outputs[-1]["data"]["text/plain"] == "42"
    notebook = json.loads((folder / "outputs.ipynb").read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert any("image/png" in o.get("data", {}) for o in code[0]["outputs"])
    assert {"python", "numpy", "matplotlib", "labbook", "platform"} <= set(run.environment)
    assert run.key == post.key and run.basis == post.basis


def test_figures_are_byte_identical_across_runs(tmp_path):
    text = post_text("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2]); plt.title('t'); plt.show()")
    _, first, _, _ = run_post(tmp_path / "a", text)
    _, second, _, _ = run_post(tmp_path / "b", text)
    assert first.artifacts == second.artifacts


def test_svg_figures_when_the_post_asks(tmp_path):
    text = post_text("import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()",
                     extra="labbook:\n  figure_format: svg\n")
    _, run, folder, _ = run_post(tmp_path, text)
    assert [a.name for a in run.artifacts if a.kind == "figure"] == ["figures/fig-1.svg"]
    assert "<svg" in (folder / "figures" / "fig-1.svg").read_text()


def test_the_post_environment_contract(tmp_path):
    text = post_text(
        """
        import os, sys, json
        print(json.dumps({
            "cwd_empty": os.listdir(".") == [],
            "root": os.environ["LABBOOK_ROOT"], "post": os.environ["LABBOOK_POST"],
            "seed": os.environ["LABBOOK_SEED"], "hashseed": os.environ["PYTHONHASHSEED"],
            "cuda": os.environ["CUDA_VISIBLE_DEVICES"], "threads": os.environ["OMP_NUM_THREADS"],
            "backend": os.environ["MPLBACKEND"], "path": sys.path,
        }))
        import helper
        print(helper.VALUE)
        """,
        extra="labbook:\n  seed: 7\n",
    )
    _, run, _, _ = run_post(tmp_path, text, files={"posts/helper.py": "VALUE = 'from helper'\n"})
    seen, helper_line = stdout(run, 0).strip().splitlines()
    seen = json.loads(seen)
    root = str((tmp_path / "proj").resolve())
    assert seen["cwd_empty"] is True
    assert seen["root"] == root and seen["post"] == root + "/posts/p.md"
    assert (seen["seed"], seen["hashseed"], seen["cuda"], seen["threads"]) == ("7", "0", "", "1")
    assert "matplotlib_inline" in seen["backend"]
    assert root in seen["path"] and root + "/posts" in seen["path"]
    assert helper_line == "from helper"


def test_each_run_gets_a_fresh_working_directory(tmp_path):
    text = post_text("import os\nprint(os.getcwd(), os.listdir('.'))\nopen('x.txt', 'w').write('1')")
    _, first, _, _ = run_post(tmp_path / "a", text)
    _, second, _, _ = run_post(tmp_path / "b", text)
    assert stdout(first, 0) != stdout(second, 0)
    assert stdout(first, 0).strip().endswith("[]") and stdout(second, 0).strip().endswith("[]")


def test_inputs_read_and_modules_imported_are_recorded(tmp_path):
    text = post_text(
        """
        import os
        from pathlib import Path
        import helper
        table = Path(os.environ["LABBOOK_ROOT"], "data", "table.csv").read_text()
        """
    )
    _, run, _, _ = run_post(tmp_path, text, files={"posts/helper.py": "X = 1\n", "data/table.csv": "a\n1\n"})
    assert set(run.inputs) == {"posts/helper.py", "data/table.csv"}


def _hidden_traces(monkeypatch) -> list[str]:
    """The run records asked for by a hidden cell of their own (rather than with the last request)."""
    asked: list[str] = []
    run_hidden = execute._run_hidden

    def spy(client, code, post):
        if code == execute._TRACE_CODE:
            asked.append(code)
        return run_hidden(client, code, post)

    monkeypatch.setattr(execute, "_run_hidden", spy)
    return asked


def test_the_run_record_comes_back_with_the_last_cell(tmp_path, monkeypatch):
    hidden = _hidden_traces(monkeypatch)
    text = post_text("import helper", "print(helper.X)")
    _, run, _, _ = run_post(tmp_path, text, files={"posts/helper.py": "X = 1\n"})
    assert hidden == [], "no request of its own: the record came in the last cell's reply"
    assert set(run.inputs) == {"posts/helper.py"} and run.platform is not None and "python" in run.environment
    assert stdout(run, 1) == "1\n"


def test_labbooks_own_code_failing_in_the_kernel_is_a_bug_with_the_kernels_traceback(tmp_path, monkeypatch):
    """Not nbclient's one-line preamble ("An error occurred while executing the following cell:")."""
    monkeypatch.setattr(execute, "_TRACE_CODE", "raise LookupError('the record broke')")
    text = post_text("print(1)", "#| claim: never\nassert False, 'broken'")  # the record then has a request of its own
    with pytest.raises(BugError) as caught:
        run_post(tmp_path, text)
    assert str(caught.value).startswith("posts/p.md: bug in labbook: its own code failed in the post's kernel: "
                                        "LookupError: the record broke")
    assert "LookupError" in caught.value.details["traceback"]


def test_the_run_record_still_comes_when_the_last_cell_is_a_broken_claim(tmp_path, monkeypatch):
    hidden = _hidden_traces(monkeypatch)
    text = post_text("import helper", "#| claim: never\nassert helper.X == 2, 'X is 1'")
    _, run, _, _ = run_post(tmp_path, text, files={"posts/helper.py": "X = 1\n"})
    assert run.cells[1].claim is not None and not run.cells[1].claim.holds
    assert len(hidden) == 1, "the kernel evaluates no user expression after a failing cell: a request of its own"
    assert set(run.inputs) == {"posts/helper.py"} and run.platform is not None


def test_the_run_record_comes_with_the_inline_expressions_when_the_post_has_some(tmp_path, monkeypatch):
    hidden = _hidden_traces(monkeypatch)
    text = post_text("import helper\nvalue = helper.X * 2") + "\nThe value is `{python} value`.\n"
    _, run, _, _ = run_post(tmp_path, text, files={"posts/helper.py": "X = 1\n"})
    assert hidden == []
    assert set(run.inputs) == {"posts/helper.py"} and run.inline


def test_a_raising_cell_names_the_post_line(tmp_path):
    text = post_text("x = 1", "y = 2\nz = [1][5]\nprint('never')")
    with pytest.raises(CellError) as caught:
        run_post(tmp_path, text)
    error = caught.value
    lines = text.splitlines()
    assert lines[error.line - 1] == "z = [1][5]"
    assert str(error).startswith(f"posts/p.md:{error.line}: CellError in cell 2: IndexError: list index out of range")
    assert error.cell == 1 and error.ename == "IndexError"
    assert "z = [1][5]" in error.traceback and "\x1b[" not in error.traceback


def test_a_cell_past_its_timeout_is_stopped(tmp_path):
    text = post_text("x = 1", "#| timeout: 2\nwhile True:\n    pass")
    with pytest.raises(CellTimeout) as caught:
        run_post(tmp_path, text)
    assert "timed out after 2 s" in str(caught.value)
    assert text.splitlines()[caught.value.line - 1] == "#| timeout: 2"


def test_a_dying_kernel_is_reported(tmp_path):
    text = post_text("import os\nos._exit(3)")
    with pytest.raises(KernelDied) as caught:
        run_post(tmp_path, text)
    assert "kernel died in cell 1" in str(caught.value)


def test_a_broken_claim_is_a_verdict_not_a_failure(tmp_path):
    text = post_text("x = 3", "#| claim: x is small\nassert x < 2, f'x is {x}'", "#| claim: x is positive\nassert x > 0",
                     "print('after')")
    _, run, _, _ = run_post(tmp_path, text)
    broken, holds = run.cells[1].claim, run.cells[2].claim
    assert (broken.claim, broken.holds, broken.message) == ("x is small", False, "x is 3")
    assert (holds.claim, holds.holds) == ("x is positive", True)
    assert stdout(run, 3) == "after\n"


def test_a_claim_that_raises_something_else_is_an_error(tmp_path):
    with pytest.raises(CellError, match="NameError"):
        run_post(tmp_path, post_text("#| claim: undefined\nassert nothing_here"))


def test_a_claim_whose_error_the_kernel_cannot_send_does_not_hold(tmp_path):
    # A lone surrogate in the message: ipykernel cannot encode the error output, only its reply says "error".
    with pytest.raises(CellError, match="UnicodeEncodeError"):
        run_post(tmp_path, post_text("#| claim: never holds\nassert False, 'bad \\ud800'"))


def test_files_whose_published_names_agree_are_all_published_and_named_in_a_warning(tmp_path):
    text = post_text("""
        for name, text in [("a b.csv", "space"), ("a_b.csv", "underscore"), ("a?b.csv", "question"),
                           (".x.csv", "dot"), ("x.csv", "plain"), ("A_B.csv", "upper")]:
            open(name, "w").write(text)
        """)
    _, run, folder, warnings = run_post(tmp_path, text)
    published = {a.name: (folder / a.name).read_text() for a in run.artifacts if a.kind == "data"}
    assert sorted(published.values()) == ["dot", "plain", "question", "space", "underscore", "upper"]
    assert published["data/a_b.csv"] == "underscore" and published["data/x.csv"] == "plain"  # safe names kept
    assert any("a?b.csv is published as data/a_b-" in w for w in warnings)
    assert not any(w.startswith("a_b.csv") or " x.csv is" in w for w in warnings)


def test_a_flood_of_output_is_cut_in_the_record_and_whole_in_the_notebook(tmp_path):
    _, run, folder, _ = run_post(tmp_path, post_text("print('x' * 200_000)"))
    text = stdout(run, 0)
    assert len(text) < 25_000 and "more characters cut here" in text
    notebook = json.loads((folder / "outputs.ipynb").read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"][0]
    assert len("".join(code["outputs"][0]["text"])) == 200_001


def test_symlinks_and_files_outside_the_working_directory_are_not_published(tmp_path):
    outside = tmp_path / "outside.txt"
    text = post_text(
        f"""
        import os
        os.symlink("/etc/passwd", "passwd-link")
        os.symlink("{tmp_path}", "dir-link")
        open("{outside}", "w").write("not published")
        os.makedirs("sub/..hidden", exist_ok=True)
        open("sub/ok file?.csv", "w").write("1")
        """
    )
    _, run, _, warnings = run_post(tmp_path, text)
    data = sorted(a.name for a in run.artifacts if a.kind == "data")
    assert data == ["data/sub/ok_file_.csv"]
    assert any("passwd-link" in w for w in warnings)


def test_memory_limit_ends_a_runaway_allocation(tmp_path):
    text = post_text("import numpy as np\nx = np.ones(2_000_000_000)", extra="labbook:\n  memory_mb: 1024\n")
    with pytest.raises((CellError, KernelDied)) as caught:
        run_post(tmp_path, text)
    assert "out of memory" in str(caught.value)


@pytest.mark.parametrize("name, expected", [("a/b.csv", "a/b.csv"), ("we ird$.txt", "we_ird_.txt"), (".hidden", "hidden")])
def test_safe_name(name, expected):
    assert execute.safe_name(name) == expected


@pytest.mark.parametrize("name", ["../x", "a/../../x", "", "/"])
def test_safe_name_refuses_escapes(name):
    with pytest.raises(PathEscapeError):
        execute.safe_name(name)


def test_a_fence_in_another_language_is_prose_not_a_cell(tmp_path):
    text = HEADER.format(extra="") + "```bash\necho hi\n```\n\n```python\nprint('ran')\n```\n"
    post, run, _, _ = run_post(tmp_path, text)
    assert len(post.cells) == 1 and stdout(run, 0) == "ran\n"


def test_the_run_notebook_holds_code_and_outputs_only_with_stable_ids(tmp_path):
    text = post_text("print(1)")
    _, first, folder_a, _ = run_post(tmp_path / "a", text)
    notebook = json.loads((folder_a / "outputs.ipynb").read_text())
    assert [c["id"] for c in notebook["cells"]] == ["cell-1"]
    assert [c["cell_type"] for c in notebook["cells"]] == ["code"]  # no prose: posts with equal code share it
    _, second, _, _ = run_post(tmp_path / "b", text)
    assert first.artifact("outputs.ipynb") == second.artifact("outputs.ipynb")
