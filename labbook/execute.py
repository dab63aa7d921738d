"""Execute: Post -> Run, plus a folder with the run's artifacts.

Owns the run of a post's cells (nbclient, on a fresh kernel from kernels.py: one per post,
CPU only), the fresh working directory, timeouts, kernel death, and the capture of figures,
data files, text outputs and the executed notebook. The only module that imports nbclient's
errors. Never renders and never writes into site/.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import copy
import datetime as dt
import functools
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from . import _inline
from .compare.text import strip_ansi
from .errors import BugError, CellError, CellTimeout, ExecutionError, KernelDied, PathEscapeError
from .files import sha_file
from .kernel_side import project_source
from .kernels import STARTUP_TIMEOUT, Kernel, discard_kernel, kernel_environment, log_tail, start_kernel, stop_kernel
from .model import Artifact, Cell, CellResult, Platform, Post, Run, Verdict, replace
from .outputs import IMAGE_TYPES, TEXT_TYPES, UnsafeImage, choose_mime, image_size, sanitize_svg

__all__ = ["execute", "MAX_OUTPUT_CHARS", "NOTEBOOK", "safe_name", "pending_inline", "evaluate_inline"]

MAX_OUTPUT_CHARS = 20_000
"""A text output longer than this is cut in run.json and on the page; the post's notebook keeps it whole."""
_SKIPPED_DIRS = {"__pycache__", ".ipynb_checkpoints", ".git"}
_SAFE_PART = re.compile(r"[^A-Za-z0-9._-]+")
_FRAME_LINE = re.compile(r"Cell In\[\d+\], line (\d+)")
_TRACE_CODE = "import json as _j, labbook.kernel_side as _k; print(_j.dumps(_k.report()))"
_TRACE_EXPRESSION = "__import__('json').dumps(__import__('labbook.kernel_side', fromlist=['report']).report())"
"""The run record as a user expression: evaluated by the kernel after the last request's code,
returned in its execute_reply (no request of its own), and not left in the post's namespace."""
_TRACE_KEY = "labbook_trace"

CellStarted = Callable[[int, int], None]
"""Called as each cell starts with its place among the cells this run executes and their number
(a gather runs only the post's last cells): the progress display."""


def safe_name(relative: str) -> str:
    """A file name that stays in its folder: no '..', no absolute path, no odd characters."""
    parts = [p for p in relative.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise PathEscapeError(f"file name {relative!r} leaves its folder")
    cleaned = [_SAFE_PART.sub("_", p).lstrip(".") or "_" for p in parts]
    return "/".join(cleaned)


def _setup_code(post: Post) -> str:
    """Run before the post's cells, for SVG figures only: their ids need a fixed salt.

    (The inline backend's settings are given to the kernel when it starts: kernel_arguments.)
    matplotlib is imported here only for SVG: a post that never plots does not pay for it.
    """
    if post.settings.figure_format != "svg":
        return ""
    return "\n".join(["import matplotlib as _mpl", "_mpl.rcParams['svg.hashsalt'] = 'labbook'", "del _mpl"])


# --- the notebook --------------------------------------------------------------------------------


NOTEBOOK = "outputs.ipynb"
"""The run's own notebook: its code cells with every output whole. It holds no prose (two posts
with equal code share a run); render composes each post's notebook from it."""


def _notebook(post: Post) -> Any:
    """The post's code cells as a notebook for nbclient: exactly the cells the read stage found.

    A copy of one built (and validated by nbformat) for the same cells: a sweep's points share
    their code, and nbclient writes each run's outputs into its own copy.
    """
    return copy.deepcopy(_notebook_of(tuple((cell.text, cell.index, cell.line) for cell in post.cells)))


@functools.lru_cache(maxsize=16)
def _notebook_of(cells: tuple[tuple[str, int, int], ...]) -> Any:
    """The notebook of these cells (text, index, line); never changed: `_notebook` copies it."""
    import nbformat.v4 as nbf

    return nbf.new_notebook(cells=[
        nbf.new_code_cell(text, id=f"cell-{index + 1}", metadata={"labbook": {"index": index, "line": line}})
        for text, index, line in cells
    ], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })


# --- errors, translated here only ----------------------------------------------------------------


def _error_line(cell: Cell, traceback: str) -> int:
    """The post-file line of the failing statement, from IPython's `Cell In[k], line n` frame."""
    frames = _FRAME_LINE.findall(traceback)
    return cell.line + int(frames[-1]) - 1 if frames else cell.line


def _translate(exc: Exception, cell: Cell, post: Post, timeout: float) -> ExecutionError:
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    preview = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
    where: dict[str, Any] = {"path": str(post.path), "cell": cell.index}
    if isinstance(exc, CellExecutionError):
        traceback = strip_ansi(exc.traceback or "")
        message = f"{exc.ename}: {exc.evalue}".strip(": ")
        hint = None
        if exc.ename == "MemoryError":
            message = f"out of memory: the kernel's limit is {post.settings.memory_mb} MB ({message})"
            hint = "raise labbook.memory_mb in the post's front matter if the post really needs more"
        return CellError(
            f"CellError in cell {cell.index + 1}: {message}", line=_error_line(cell, traceback), hint=hint,
            traceback=traceback, ename=exc.ename, evalue=exc.evalue, **where,
        )
    if isinstance(exc, CellTimeoutError):
        return CellTimeout(
            f"cell {cell.index + 1} timed out after {timeout:g} s ({preview!r}); the kernel was stopped",
            line=cell.line, hint="raise `#| timeout:` on the cell or labbook.timeout for the post",
            seconds=timeout, **where,
        )
    if isinstance(exc, DeadKernelError):
        return KernelDied(
            f"the kernel died in cell {cell.index + 1} ({preview!r}): os._exit, a crash, or out of memory",
            line=cell.line, **where,
        )
    return ExecutionError(f"cell {cell.index + 1} could not run: {type(exc).__name__}: {exc}", line=cell.line, **where)


def _with_partial(error: ExecutionError, results: list[CellResult], nb_cell: Any) -> ExecutionError:
    """What ran before the failure, for `labbook run` to show: the earlier cells' results and
    the failing cell's printed text; and the kernel's own traceback, without nbclient's
    preamble (which repeats the cell's code)."""
    from dataclasses import asdict

    outputs = list(getattr(nb_cell, "outputs", None) or [])
    error.details["ran"] = [asdict(r) for r in results]
    error.details["printed"] = [_text_output(o) for o in _coalesced(outputs) if o.get("output_type") == "stream"]
    kernel = next((o for o in outputs if o.get("output_type") == "error"), None)
    if kernel is not None and error.details.get("traceback"):
        error.details["traceback"] = strip_ansi("\n".join(kernel.get("traceback", [])))
    return error


# --- capture --------------------------------------------------------------------------------------

def _write_artifact(folder: Path, name: str, data: bytes, kind: str, cell: int | None) -> Artifact:
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return Artifact(kind=kind, name=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data), cell=cell)  # type: ignore[arg-type]


def _cut(text: str) -> str:
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    hidden = len(text) - MAX_OUTPUT_CHARS
    return text[:MAX_OUTPUT_CHARS] + f"\n… [{hidden:,} more characters cut here; the notebook has them all]\n"


class _FigureNamer:
    """`label`, `label-2`, … or `fig-1`, `fig-2`, … in display order."""

    def __init__(self) -> None:
        self.count = 0
        self.used: set[str] = set()

    def name(self, cell: Cell, nth_in_cell: int) -> str:
        self.count += 1
        base = cell.options.label or f"fig-{self.count}"
        name = f"{base}-{nth_in_cell}" if cell.options.label and nth_in_cell != 1 else base
        while name in self.used:
            name += "-b"
        self.used.add(name)
        return name


def _coalesced(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive chunks of one stream as one output, as Jupyter shows them."""
    merged: list[dict[str, Any]] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream" and previous["name"] == output["name"]):
            merged[-1] = {**previous, "text": previous["text"] + output["text"]}
        else:
            merged.append(dict(output))
    return merged


def _cell_outputs(cell: Cell, outputs: list[dict[str, Any]], folder: Path, namer: _FigureNamer,
                  artifacts: list[Artifact], warnings: list[str]) -> tuple[dict[str, Any], ...]:
    kept: list[dict[str, Any]] = []
    images = 0
    budget = MAX_OUTPUT_CHARS * 2
    for output in _coalesced(outputs):
        data = output.get("data", {})
        mime = choose_mime(data)
        if mime is not None and mime in IMAGE_TYPES:
            figure = _figure_output(cell, output, mime, folder, namer, images + 1, warnings)
            if figure is not None:
                images += 1
                record, artifact = figure
                artifacts.append(artifact)
                kept.append(record)
                continue
        if budget <= 0:
            continue
        text = _text_output(output)
        budget -= len(json.dumps(text))
        if budget <= 0:
            text = {"output_type": "stream", "name": "stderr",
                    "text": "… [more output cut here; the notebook has all of it]\n"}
        kept.append(text)
    return tuple(kept)


def _figure_output(cell: Cell, output: dict[str, Any], mime: str, folder: Path, namer: _FigureNamer,
                   nth: int, warnings: list[str]) -> tuple[dict[str, Any], Artifact] | None:
    """An image output as a figure file and its record: name, MIME type and size to show it at.

    An SVG is published sanitized (what was removed becomes a warning); one that is not
    well-formed XML is not published, and the output falls back to its text.
    """
    raw = output["data"][mime]
    text = raw if isinstance(raw, str) else "".join(raw)
    content = text.encode() if mime == "image/svg+xml" else base64.b64decode(text)
    where = f"cell {cell.index + 1} (line {cell.line})"
    if mime == "image/svg+xml":
        try:
            clean = sanitize_svg(content)
        except UnsafeImage as exc:
            warnings.append(f"{where}: not published: {exc}")
            return None
        if clean.removed:
            warnings.append(f"{where}: removed from an SVG output before publishing: {', '.join(clean.removed)}")
        content = clean.data
    name = f"figures/{namer.name(cell, nth)}.{IMAGE_TYPES[mime]}"
    record: dict[str, Any] = {"output_type": "figure", "name": name,
                              "alt": _text_of(output["data"].get("text/plain", "")), "mime": mime}
    size = image_size(mime, content, output.get("metadata", {}).get(mime))
    if size is not None:
        record["width"], record["height"] = size
    return record, _write_artifact(folder, name, content, "figure", cell.index)


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else "".join(value)


def _text_output(output: dict[str, Any]) -> dict[str, Any]:
    kind = output["output_type"]
    if kind == "stream":
        return {"output_type": "stream", "name": output["name"], "text": _cut(output["text"])}
    if kind == "error":
        return {"output_type": "error", "ename": output["ename"], "evalue": output["evalue"],
                "traceback": _cut(strip_ansi("\n".join(output["traceback"])))}
    data = {m: _cut(_text_of(v)) for m, v in output.get("data", {}).items() if m in TEXT_TYPES}
    return {"output_type": kind, "data": data}


def _place(workdir: Path, placed: Mapping[str, bytes | str]) -> dict[str, str]:
    """Put files into the kernel's working directory (a sweep's gather: the table and the points'
    files), each a copy (never a link: the code may change it); their hashes, to leave them out
    of the run's data unless the code changed them. A name that would leave the folder is refused.

    Raises:
        PathEscapeError: a name with '..' or an absolute path.
    """
    hashes = {}
    for name, content in sorted(placed.items()):
        relative = safe_name(name)
        target = workdir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            shutil.copyfile(content, target)
        hashes[relative] = sha_file(target)
    return hashes


def _collect_data(workdir: Path, folder: Path, warnings: list[str],
                  placed: Mapping[str, str] | None = None) -> list[Artifact]:
    """Every regular file the code left in its working directory; symlinks are never followed.
    Files labbook placed there (`placed`: name -> sha256) are not the run's unless it changed them."""
    placed = placed or {}
    found = []
    for current, dirs, files in os.walk(workdir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not Path(current, d).is_symlink())
        for filename in sorted(files):
            path = Path(current, filename)
            relative = path.relative_to(workdir).as_posix()
            if path.is_symlink() or not path.is_file():
                warnings.append(f"not published: {relative} is a symlink or not a regular file")
                continue
            if relative in placed and sha_file(path) == placed[relative]:
                continue
            found.append((relative, path))
    taken = {r.lower() for r, _ in found if safe_name(r) == r}
    artifacts = []
    for relative, path in found:
        name = "data/" + relative
        if safe_name(relative) != relative:
            name = _unique("data/" + safe_name(relative), taken)
            warnings.append(f"{relative} is published as {name}: published names keep to letters, digits and "
                            "'._-', never start with a dot, and are unique")
        artifacts.append(_write_artifact(folder, name, path.read_bytes(), "data", None))
    return artifacts


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or `stem-2.ext`, `stem-3.ext`…: two files whose safe names agree ('a b.csv', 'a?b.csv') both publish."""
    stem, dot, suffix = name.rpartition(".") if "." in name.rsplit("/", 1)[-1] else (name, "", "")
    candidate, number = name, 1
    while candidate.lower().removeprefix("data/") in taken:
        number += 1
        candidate = f"{stem}-{number}{dot}{suffix}"
    taken.add(candidate.lower().removeprefix("data/"))
    return candidate


# --- the entry point --------------------------------------------------------------------------------


def execute(post: Post, root: Path, folder: Path, *, on_cell: CellStarted | None = None,
            kernel: Kernel | None = None, placed: Mapping[str, bytes | str] | None = None,
            keep: bool = False) -> tuple[Run, list[str]]:
    """Run the post in a fresh kernel and working directory; write its artifacts into `folder`.

    `kernel`, when given, was started for this post by `start_kernel` (it booted while the
    previous post ran), or passed on from the sweep's previous point (`kernels.pass_on`). With
    `keep`, a kernel given is left running when the run succeeds, for the caller to pass on to
    the next point or discard; a run that fails always discards it. `placed` files are put into
    the working directory before the first cell (name -> content, or a file to copy). Returns the
    run record and warnings (files that were not published).

    Raises:
        CellError, CellTimeout, KernelDied: with the post path, the cell and its line.
    """
    from nbclient import NotebookClient

    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    clock = time.perf_counter()
    notebook = _notebook(post)
    cells = post.cells
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    positions = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    timeouts = {c.index: c.options.timeout or post.settings.timeout for c in cells}
    folder.mkdir(parents=True, exist_ok=True)
    keep = keep and kernel is not None  # a kernel started here is nobody else's to pass on
    kernel = kernel or start_kernel(post, root)
    try:
        placed_hashes = _place(kernel.workdir, placed or {})
    except (OSError, PathEscapeError):
        discard_kernel(kernel)
        raise
    client = NotebookClient(
        notebook,
        km=kernel.manager,
        timeout=int(post.settings.timeout),
        timeout_func=lambda nb_cell: int(timeouts.get(nb_cell.metadata.get("labbook", {}).get("index", -1),
                                                      post.settings.timeout)),
        allow_errors=False,
        record_timing=False,
        shutdown_kernel="immediate",
        startup_timeout=STARTUP_TIMEOUT,
        on_cell_executed=lambda **hook: replies.__setitem__(hook["cell_index"], hook["execute_reply"]),
    )
    replies: dict[int, Any] = {}
    results: list[CellResult] = []
    artifacts: list[Artifact] = []
    namer = _FigureNamer()
    trace: dict[str, Any] = {"inputs": [], "versions": {}}
    warnings: list[str] = []
    kept = False
    try:
        if isinstance(kernel.client, BaseException):  # connecting ahead failed: as connecting here would
            raise kernel.client
        client.kc = kernel.client  # connected ahead, or None: setup_kernel connects
        with client.setup_kernel(cleanup_kc=not keep):
            kernel.client = client.kc  # connected here if not ahead: what a kept kernel is passed on with
            if setup := _setup_code(post):
                _run_hidden(client, setup, post)
            for ordinal, (cell, nb_cell, position) in enumerate(zip(cells, code_cells, positions, strict=True)):
                if on_cell:  # the ordinal in this run: a gather runs the post's last cells alone ("1/1", not "2/1")
                    on_cell(ordinal, len(cells))
                began = time.perf_counter()
                verdict = _run_cell(client, post, cell, nb_cell, position, replies, results, timeouts[cell.index])
                outputs = _cell_outputs(cell, nb_cell.outputs, folder, namer, artifacts, warnings)
                results.append(CellResult(cell.index, outputs, round(time.perf_counter() - began, 3), verdict))
            inline = _inline_in_kernel(client, post, folder, replies)
            trace = _traced_reply(replies) or json.loads(_run_hidden(client, _TRACE_CODE, post) or "{}")
            if not keep:
                stop_kernel(kernel)  # now, rather than through jupyter_client's 0.1 s shutdown polling
        artifacts += _collect_data(kernel.workdir, folder, warnings, placed_hashes)
        kept = keep
    except RuntimeError as exc:  # jupyter_client: "Kernel died before replying to kernel_info"
        raise KernelDied(f"the kernel could not start: {exc}", path=str(post.path),
                         traceback=log_tail(kernel.log)) from exc
    except KernelDied as error:
        error.details["traceback"] = log_tail(kernel.log)
        raise
    finally:
        if not kept:
            discard_kernel(kernel)
    notebook_bytes = _notebook_bytes(notebook)
    artifacts.append(_write_artifact(folder, NOTEBOOK, notebook_bytes, "notebook", None))
    inputs = dict(post.inputs)
    inputs.update(_hash_inputs(root, trace.get("inputs", [])))
    run = Run(
        key=post.key,
        cells=tuple(results),
        artifacts=tuple(sorted(artifacts, key=lambda a: a.name)),
        inputs=dict(sorted(inputs.items())),
        basis=post.basis,
        environment={"labbook": _labbook_version(), **trace.get("versions", {})},
        started=started,
        seconds=round(time.perf_counter() - clock, 3),
        seed=post.settings.seed,
        platform=Platform.from_json(trace["platform"]) if trace.get("platform") else None,
        params=dict(post.settings.params),
        inline=inline,
    )
    return run, [f"{post.path}: {w}" for w in warnings]


def _run_cell(client: Any, post: Post, cell: Cell, nb_cell: Any, position: int, replies: Mapping[int, Any],
              results: list[CellResult], timeout: float) -> Verdict | None:
    """Execute one of the post's cells; its claim's verdict (None without a claim).

    Raises:
        CellError, CellTimeout, KernelDied: with the results of the cells before it.
    """
    client.allow_errors = cell.options.claim is not None
    try:
        with _traced(client, last=cell is post.cells[-1] and not post.inline):
            client.execute_cell(nb_cell, position)
        return _verdict(cell, nb_cell.outputs, (replies.get(position) or {}).get("content", {}))
    except Exception as exc:  # noqa: BLE001 - translated into labbook's own errors
        raise _with_partial(_translate(exc, cell, post, timeout), results, nb_cell) from exc


def _verdict(cell: Cell, outputs: list[dict[str, Any]], reply: dict[str, Any]) -> Verdict | None:
    """A claim holds when its cell raised nothing; an AssertionError breaks it.

    The kernel's reply says whether the cell raised even when the error output never came (an
    error message the kernel could not send, such as one holding a lone surrogate).
    """
    if cell.options.claim is None:
        return None
    error = next((o for o in outputs if o.get("output_type") == "error"), None)
    if error is None and reply.get("status") == "error":
        error = {"ename": reply.get("ename", "Error"), "evalue": reply.get("evalue", ""),
                 "traceback": reply.get("traceback", [])}
    if error is None:
        return Verdict(claim=cell.options.claim, holds=True)
    if error.get("ename") != "AssertionError":
        from nbclient.exceptions import CellExecutionError

        raise CellExecutionError("\n".join(error.get("traceback", [])), error["ename"], error["evalue"])
    return Verdict(claim=cell.options.claim, holds=False, message=error.get("evalue") or "assertion failed")


# --- computed values in prose -------------------------------------------------------------------------


def _inline_in_kernel(client: Any, post: Post, folder: Path, replies: dict[int, Any]) -> dict[str, dict[str, str]]:
    """The post's inline expressions, evaluated in its namespace after the cells; and the
    snapshot of its simple values that lets a later prose edit add expressions without a run.
    The last request of the run: it brings the run record back too (its reply into `replies`)."""
    if not post.inline:
        return {}
    expressions = json.dumps([i.expression for i in post.inline])
    code = (f"print(__import__('labbook._inline', fromlist=['_']).kernel_evaluate("
            f"{expressions!r}, {str(folder / _inline.SNAPSHOT)!r}))")
    with _traced(client, last=True):
        printed = _run_hidden(client, code, post).strip().splitlines()
    return json.loads(printed[-1]) if printed else {}


@contextlib.contextmanager
def _traced(client: Any, *, last: bool) -> Iterator[None]:
    """The last execute request of a run also asks for the run record, as a user expression:
    a round trip (and an IPython cell) less a run. nbclient does not pass user_expressions, so
    its client's `execute` gets them for this one request."""
    if not last:
        yield
        return
    client.kc.execute = functools.partial(client.kc.execute, user_expressions={_TRACE_KEY: _TRACE_EXPRESSION})
    try:
        yield
    finally:
        del client.kc.execute  # the method again


def _traced_reply(replies: Mapping[int, Any]) -> dict[str, Any] | None:
    """The run record a reply brought back; None when none did (the last cell raised, under
    a claim: the kernel evaluates user expressions only after code that succeeded)."""
    for reply in replies.values():
        found = ((reply or {}).get("content", {}).get("user_expressions") or {}).get(_TRACE_KEY)
        if found and found.get("status") == "ok":
            text = found.get("data", {}).get("text/plain", "")
            with contextlib.suppress(ValueError, SyntaxError, TypeError):
                record = json.loads(ast.literal_eval(text))
                if isinstance(record, dict):
                    return record
    return None


def pending_inline(post: Post, run: Run) -> list[str]:
    """The post's inline expressions that the run has no value for (a prose edit added them)."""
    return [i.expression for i in post.inline if i.expression not in run.inline]


def evaluate_inline(post: Post, run: Run, folder: Path, root: Path) -> Run:
    """The run with the post's new inline expressions evaluated over its snapshot, in a short
    subprocess with the post's environment: the cells do not run again. Never raises: an
    expression that cannot be evaluated records its error."""
    import subprocess
    import sys
    import tempfile

    pending = pending_inline(post, run)
    if not pending:
        return run
    with tempfile.TemporaryDirectory(prefix=f"labbook-inline-{post.slug}-") as workdir:
        try:
            done = subprocess.run(
                [sys.executable, "-m", "labbook._inline", str(folder / _inline.SNAPSHOT)], input=json.dumps(pending),
                capture_output=True, text=True, env=kernel_environment(post, root), cwd=workdir,
                timeout=post.settings.timeout,
            )
            lines = done.stdout.strip().splitlines()
            if done.returncode != 0 or not lines:
                raise ValueError(strip_ansi(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else
                                           f"exit status {done.returncode}"))
            values = json.loads(lines[-1])
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            values = {e: {"error": f"could not be evaluated over the run's values: {exc}"} for e in pending}
    return replace(run, inline={**run.inline, **values})


def _run_hidden(client: Any, code: str, post: Post) -> str:
    """Execute code that is not part of the post; return what it printed. (Its reply goes to
    on_cell_executed at an index past the post's cells.)

    Raises:
        BugError: the code raised (labbook's own code, meeting a kernel it did not expect),
            with the kernel's traceback rather than nbclient's one-line preamble.
    """
    import nbformat.v4 as nbf
    from nbclient.exceptions import CellExecutionError

    cell = nbf.new_code_cell(code)
    client.nb.cells.append(cell)  # nbclient writes the executed cell back at its index
    client.allow_errors = False  # a claim cell before it allowed its own
    try:
        client.execute_cell(cell, len(client.nb.cells) - 1, store_history=False)
    except CellExecutionError as exc:
        raise BugError(f"bug in labbook: its own code failed in the post's kernel: {exc.ename}: {exc.evalue}",
                       path=str(post.path), traceback=strip_ansi(exc.traceback or ""),
                       hint="this is labbook's fault, not the post's; run with -v for the traceback and report it",
                       ) from exc
    finally:
        client.nb.cells.pop()
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def _notebook_bytes(notebook: Any) -> bytes:
    import nbformat

    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    return (nbformat.writes(notebook) + "\n").encode()


def _hash_inputs(root: Path, names: list[str]) -> dict[str, str]:
    """The files a run was seen to read that are the project's own sources, with their hashes.

    The kernel already left out build outputs, package metadata and environments; this side
    applies the same rule again (a remote kernel may be an older labbook) and leaves out what
    git ignores, asking git once.
    """
    venvs: dict[str, bool] = {}
    candidates = [n for n in names if project_source(n, str(root), venvs) and (root / n).is_file()]
    ignored = _git_ignored(root, candidates)
    return {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in candidates if name not in ignored}


def _git_ignored(root: Path, names: list[str]) -> set[str]:
    """Which of these root-relative files git ignores: one `git check-ignore --stdin` call.

    Files git tracks are never reported (a tracked file is a source whatever .gitignore says).
    Nothing when the project is not a git repository or git is not installed.
    """
    import subprocess

    if not names:
        return set()
    try:
        done = subprocess.run(["git", "-C", str(root), "check-ignore", "-z", "--stdin"], input="\0".join(names) + "\0",
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return set()
    if done.returncode not in (0, 1):  # 128: not a repository
        return set()
    return {name for name in done.stdout.split("\0") if name}


@functools.cache
def _labbook_version() -> str:
    """Read from the installed metadata once a process (~5 ms each time: it parses the METADATA file)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("labbook")
    except PackageNotFoundError:
        return "0+unknown"
