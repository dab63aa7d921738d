"""The post as a notebook: a Jupyter kernel that runs a post's cells as a build runs them.

`labbook kernel install` registers the kernelspec "labbook (this project)". Jupyter starts a
kernel in the notebook's folder and names the notebook in JPY_SESSION_NAME; the launcher
(`python -m labbook.kernelspec -f CONNECTION_FILE`) finds the project upwards from that
folder, the post from that name (`posts/x.md` opened through jupytext, or `posts/x.ipynb`
paired with it), and starts the kernel as a build does: the environment of
`kernels.kernel_environment` (LABBOOK_ROOT, LABBOOK_POST, LABBOOK_SEED, LABBOOK_PARAMS, the
post's folder and the root on sys.path, PYTHONHASHSEED, one BLAS thread, no GPU, the memory
limit) and `kernels.kernel_arguments`, in a fresh working folder per session,
.labbook/sessions/<slug>-XXXX/ (what the code writes there is what a build would publish).
Never writes outside that folder and the kernelspec's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

from .config import Config, find_root, load_config
from .errors import LabbookError
from .model import Post

__all__ = ["NAME", "DISPLAY_NAME", "kernel_spec", "install", "launch", "post_for"]

NAME = "labbook"
DISPLAY_NAME = "labbook (this project)"


def kernel_spec() -> dict[str, object]:
    """kernel.json: this interpreter runs the launcher, which becomes the kernel."""
    return {
        "argv": [sys.executable, "-m", "labbook.kernelspec", "-f", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": False, "labbook": "runs a post's cells in the environment of a labbook build"},
    }


def install(*, user: bool = False, prefix: str | None = None) -> Path:
    """Register the kernelspec (for this user, or under `prefix`, e.g. sys.prefix); its folder."""
    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory(prefix="labbook-kernelspec-") as staging:
        folder = Path(staging) / NAME
        folder.mkdir()
        (folder / "kernel.json").write_text(json.dumps(kernel_spec(), indent=1) + "\n", encoding="utf-8")
        return Path(KernelSpecManager().install_kernel_spec(str(folder), NAME, user=user, prefix=prefix))


def post_for(config: Config, notebook: str, cwd: Path) -> Path | None:
    """The post file of the notebook Jupyter named: the .md itself, or the .md it is paired with."""
    if not notebook:
        return None
    path = Path(notebook) if Path(notebook).is_absolute() else cwd / notebook
    candidate = path if path.suffix == ".md" else path.with_suffix(".md")
    try:
        candidate = candidate.resolve()
    except OSError:
        return None
    if candidate.is_file() and candidate.parent == config.posts.resolve():
        return candidate
    return None


def _post(config: Config, path: Path | None) -> tuple[Post, bool]:
    """The post to take settings from, and whether it is the notebook's own (else a blank one)."""
    from . import source

    if path is not None:
        try:
            return source.read(path, config)[0], True
        except LabbookError as error:
            print(f"labbook: {error}; the kernel starts with default settings", file=sys.stderr)
    blank = "---\ntitle: notebook\ndate: 2000-01-01\n---\n"
    return source.parse(blank, config.relative(config.posts / "notebook.md"), config=config)[0], False


def _session_folder(config: Config, slug: str) -> Path:
    """A fresh, empty working folder for this session; empty ones of earlier sessions go."""
    sessions = config.cache / "sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    for old in sessions.iterdir():
        with contextlib.suppress(OSError):
            old.rmdir()  # only when empty: what a session wrote stays for the author
    return Path(tempfile.mkdtemp(prefix=f"{slug}-", dir=sessions))


def launch(argv: list[str]) -> None:
    """Become the post's kernel: the build's environment, a fresh working folder, then ipykernel."""
    from .kernels import kernel_arguments, kernel_environment

    cwd = Path.cwd()
    try:
        config = load_config(find_root(cwd))
    except LabbookError as error:
        print(f"labbook: {error}; using the default settings", file=sys.stderr)
        root = find_root(cwd)
        config = Config(root=root, posts=root / "posts", site=root / "site", cache=root / ".labbook",
                        templates=root / "templates")
    notebook = os.environ.get("JPY_SESSION_NAME", "")
    post, known = _post(config, post_for(config, notebook, cwd))
    env = kernel_environment(post, config.root)
    env.update({k: v for k, v in os.environ.items() if k.startswith("JPY_")})  # Jupyter's own (parent pid)
    if not known:  # not a post: no settings of its own to pass
        env.pop("LABBOOK_PARAMS", None)
        env.pop("LABBOOK_POST", None)
    workdir = _session_folder(config, post.slug if known else "notebook")
    os.chdir(workdir)
    os.execve(sys.executable, [sys.executable, "-m", "labbook.kernel_side", *argv, *kernel_arguments(post)], env)


if __name__ == "__main__":
    launch(sys.argv[1:])
