"""config.py: defaults, then [tool.labbook] in pyproject.toml, then command-line flags; every
problem collected into one ConfigError that names where it comes from."""

from __future__ import annotations

from pathlib import Path

import pytest

from labbook import source
from labbook.config import KERNEL_START_MB, PACKAGE_TEMPLATES, Config, did_you_mean, find_root, load_config
from labbook.errors import ConfigError, FrontMatterError


def project(root: Path, settings: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "x"\n\n[tool.labbook]\n{settings}', encoding="utf-8")
    return root


def problems(excinfo: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return str(excinfo.value).splitlines()[1:]


# --- valid settings ---------------------------------------------------------------------------------


def test_defaults_put_everything_in_the_project(tmp_path):
    root = project(tmp_path / "p")
    config = load_config(root)
    assert (config.root, config.posts, config.site, config.cache, config.assets) == (
        root, root / "posts", root / "site", root / ".labbook", root / "assets")
    assert config.templates == PACKAGE_TEMPLATES  # the project has no templates/ of its own
    assert (config.title, config.scheduler, config.jobs, config.timeout, config.memory_mb) == (
        "labbook", None, 0, 600.0, 4096)


def test_a_projects_own_templates_folder_replaces_the_packages(tmp_path):
    root = project(tmp_path / "p")
    (root / "templates").mkdir()
    assert load_config(root).templates == root / "templates"


def test_settings_from_pyproject(tmp_path):
    root = project(tmp_path / "p", 'title = "Notes"\nposts = "content"\nsite = "out/site"\njobs = 3\n'
                                   'timeout = 30\nmemory_mb = 2048\nurl = "https://example.org"\n')
    config = load_config(root)
    assert (config.title, config.jobs, config.workers, config.timeout, config.memory_mb, config.url) == (
        "Notes", 3, 3, 30, 2048, "https://example.org")
    assert (config.posts, config.site) == (root / "content", root / "out" / "site")


def test_flags_win_over_pyproject_and_none_flags_are_ignored(tmp_path):
    root = project(tmp_path / "p", 'jobs = 3\nposts = "content"\n')
    config = load_config(root, jobs=1, posts=None, site="elsewhere", scheduler=None)
    assert (config.jobs, config.posts, config.site, config.scheduler) == (1, root / "content", root / "elsewhere", None)


def test_the_root_is_found_upwards_from_a_subfolder(tmp_path):
    root = project(tmp_path / "p")
    deep = root / "posts" / "drafts"
    deep.mkdir(parents=True)
    assert find_root(deep) == root and load_config(deep).root == root


def test_without_a_pyproject_the_folder_itself_is_the_project(tmp_path):
    folder = tmp_path / "bare"
    folder.mkdir()
    assert find_root(folder) == folder and load_config(folder).posts == folder / "posts"


def test_zero_jobs_means_one_per_core(tmp_path):
    assert load_config(project(tmp_path / "p", "jobs = 0\n")).workers >= 1


def test_paths_in_messages_are_relative_to_the_project(tmp_path):
    config = load_config(project(tmp_path / "p"))
    assert config.relative(config.posts / "a.md") == "posts/a.md"
    assert config.relative(config.root / "posts" / ".." / "site") == "site"
    assert config.relative(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")


def test_config_is_frozen(tmp_path):
    config = load_config(project(tmp_path / "p"))
    with pytest.raises(AttributeError):
        config.title = "changed"  # type: ignore[misc]
    assert isinstance(config, Config)


# --- invalid settings: every problem at once, with where it comes from -------------------------------


def test_an_unknown_setting_suggests_the_close_one(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(project(tmp_path / "p", 'titel = "Notes"\n'))
    assert problems(caught) == ["  pyproject.toml [tool.labbook]: unknown setting 'titel' (did you mean 'title'?)"]
    assert caught.value.exit_code == 2


def test_every_problem_is_listed_once_from_file_and_flags(tmp_path):
    root = project(tmp_path / "p", 'jobs = -1\ntimeout = 0\ntitle = 3\ncolour = "red"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(root, jobs="two")
    assert problems(caught) == [
        "  pyproject.toml [tool.labbook]: 'jobs' must be a non-negative integer, not -1",
        "  pyproject.toml [tool.labbook]: 'timeout' must be a positive number of seconds, not 0",
        "  pyproject.toml [tool.labbook]: 'title' must be a string, not 3",
        "  pyproject.toml [tool.labbook]: unknown setting 'colour'",
        "  command line: 'jobs' must be a non-negative integer, not 'two'",
    ]


@pytest.mark.parametrize("line, problem", [
    ("jobs = true", "'jobs' must be a non-negative integer, not True"),
    ("memory_mb = 1.5", "'memory_mb' must be a non-negative integer, not 1.5"),
    (f"memory_mb = {KERNEL_START_MB - 1}", f"less than the {KERNEL_START_MB} MB a kernel needs to start"),
    ('timeout = "long"', "'timeout' must be a positive number of seconds, not 'long'"),
    ("scheduler = 8786", "'scheduler' must be a string, not 8786"),
    ('params = "lr=1"', "unknown setting 'params'"),  # -p values never come from pyproject.toml
    ('root = "/"', "unknown setting 'root'"),
])
def test_a_wrong_value_is_refused(tmp_path, line, problem):
    with pytest.raises(ConfigError, match="invalid configuration") as caught:
        load_config(project(tmp_path / "p", line + "\n"))
    assert problem in str(caught.value)


def test_no_memory_limit_is_allowed(tmp_path):
    assert load_config(project(tmp_path / "p", "memory_mb = 0\n")).memory_mb == 0


def test_invalid_toml_names_the_file_and_line(tmp_path):
    root = project(tmp_path / "p", 'title = "Notes"\njobs = = 2\n')
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    assert caught.value.path == str(root / "pyproject.toml")
    assert str(caught.value).startswith(f"{root / 'pyproject.toml'}: pyproject.toml is not valid TOML")
    assert "line 6" in str(caught.value)  # tomllib's own position, in the message


def test_tool_labbook_must_be_a_table(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool]\nlabbook = "yes"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[tool.labbook\] must be a table"):
        load_config(root)


def test_did_you_mean_is_empty_when_nothing_is_close():
    assert did_you_mean("phenomna", ["phenomena", "models"]) == " (did you mean 'phenomena'?)"
    assert did_you_mean("zzz", ["phenomena", "models"]) == ""


# --- a post's own settings (the `labbook:` block) go through the same kind of checks ------------------


def settings_post(block: str) -> str:
    return f"---\ntitle: T\ndate: 2026-01-02\nlabbook:\n{block}---\n\n```python\nx = 1\n```\n"


def test_a_posts_settings_start_from_the_projects_defaults(tmp_path):
    config = load_config(project(tmp_path / "p", "timeout = 30\nmemory_mb = 2048\n"))
    post, _ = source.parse(settings_post("  seed: 3\n"), "posts/a.md", config=config)
    assert (post.settings.timeout, post.settings.memory_mb, post.settings.seed) == (30, 2048, 3)
    post, _ = source.parse(settings_post("  timeout: 5\n"), "posts/a.md", config=config)
    assert post.settings.timeout == 5


@pytest.mark.parametrize("block, line, message", [
    ("  timout: 5\n", 5, "unknown setting 'labbook.timout' (did you mean 'timeout'?)"),
    ("  seed: 1\n  timeout: -1\n", 6, "labbook.timeout must be positive"),
    ("  threads: two\n", 5, "'labbook.threads' has the wrong type: 'two'"),
    ("  figure_format: jpg\n", 5, "labbook.figure_format must be png or svg"),
    (f"  memory_mb: {KERNEL_START_MB // 2}\n", 5, "a kernel needs to start"),
    ("  seed: true\n", 5, "'labbook.seed' has the wrong type: True (it takes a whole number)"),
    ("  timeout: ten\n", 5, "'labbook.timeout' has the wrong type: 'ten' (it takes a number)"),
    ("  sweep: 5\n", 5, "'labbook.sweep' has the wrong type: 5 (it takes a mapping or a list)"),
])
def test_a_wrong_post_setting_names_the_file_and_line(tmp_path, block, line, message):
    config = load_config(project(tmp_path / "p"))
    with pytest.raises(FrontMatterError) as caught:
        source.parse(settings_post(block), "posts/a.md", config=config)
    assert (caught.value.path, caught.value.line) == ("posts/a.md", line)
    assert str(caught.value).startswith(f"posts/a.md:{line}: ") and message in str(caught.value)


def test_a_settings_block_that_is_not_a_mapping_names_its_line(tmp_path):
    text = "---\ntitle: T\ndate: 2026-01-02\nlabbook: fast\n---\n"
    with pytest.raises(FrontMatterError) as caught:
        source.parse(text, "posts/a.md", config=load_config(project(tmp_path / "p")))
    assert (caught.value.line, caught.value.message) == (4, "'labbook' must be a mapping of settings")


# --- the memo of [tool.labbook] ---------------------------------------------------------------------


def test_settings_are_read_from_the_memo_while_pyproject_is_as_it_was(tmp_path, monkeypatch):
    import json
    import os
    import tomllib

    from labbook import config as config_module

    root = project(tmp_path / "p", 'title = "First"\njobs = 2\n')
    config_module.remember_settings(load_config(root))
    assert not (root / config_module.MEMO).exists()  # no .labbook/: no memo
    (root / ".labbook").mkdir()
    assert load_config(root).title == "First" and not (root / config_module.MEMO).exists()  # only a build keeps it
    config_module.remember_settings(load_config(root))
    assert json.loads((root / config_module.MEMO).read_text())["section"] == {"title": "First", "jobs": 2}

    def no_toml(*args, **kwargs):
        raise AssertionError("tomllib read a pyproject.toml that had not changed")

    monkeypatch.setattr(tomllib, "load", no_toml)
    assert load_config(root).jobs == 2
    monkeypatch.undo()
    (root / "pyproject.toml").write_text('[tool.labbook]\ntitle = "Second"\n', encoding="utf-8")
    changed = load_config(root)
    assert changed.title == "Second" and changed.jobs == Config._field_defaults["jobs"]
    stat = os.stat(root / "pyproject.toml")  # same size and time, another inode (an editor's save-by-rename)
    replacement = root / "new.toml"
    replacement.write_text('[tool.labbook]\ntitle = "Thirdd"\n', encoding="utf-8")
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, root / "pyproject.toml")
    assert load_config(root).title == "Thirdd"


def test_a_broken_pyproject_is_reported_every_time_and_odd_values_are_not_memoized(tmp_path):
    root = project(tmp_path / "p", 'title = "x"\n')
    (root / ".labbook").mkdir()
    (root / "pyproject.toml").write_text("[tool.labbook\n", encoding="utf-8")
    for _ in range(2):
        with pytest.raises(ConfigError, match="pyproject.toml is not valid TOML"):
            load_config(root)
    (root / "pyproject.toml").write_text("[tool.labbook]\ntitle = 1979-05-27\ndate = 1979-05-27\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'title' must be a string"):
        load_config(root)
    from labbook.config import _READ, MEMO, Config, remember_settings

    remember_settings(Config(root, root, root, root, root))  # what it read holds a TOML date: no JSON for it
    assert not (root / MEMO).exists() and root not in _READ
    (root / MEMO).write_text("{not json", encoding="utf-8")  # a broken memo is read past
    (root / "pyproject.toml").write_text('[tool.labbook]\ntitle = "ok"\n', encoding="utf-8")
    assert load_config(root).title == "ok"
