"""What Jekyll does with the files labbook gives it, written down once.

In -> out: file names and first bytes -> the `include:`/`exclude:` lists that make Jekyll publish
them as they are; a post's old URLs -> small redirect pages; a permalink pattern -> a URL.
Owns Jekyll 4.3's rules as labbook relies on them (read from Jekyll's own source: EntryFilter,
Utils.has_yaml_header?, Utils.slugify, the permalink placeholders) and the small plugin that turns
files Jekyll would render back into files it copies. Never reads or writes files.

Jekyll drops a file whose path has a segment starting with '.', '_', '#' or '~' (or ending in
'~'), unless `include:` names it, and renders any file whose first line is `---` as a page
(front matter stripped, Liquid run, Markdown converted). A data file must come out as the code
wrote it, so:
- special names are listed in `include:` by full path (this works in GitHub Pages' safe mode too);
- files with a `---` first line are listed in `exclude:`, and `_plugins/labbook_raw_files.rb` adds
  every file under labbook's folders back as a static file. Safe mode (GitHub Pages' classic
  build) loads no plugin: those files are then left out (a 404), never changed or run.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

__all__ = [
    "RawRules",
    "raw_rules",
    "has_yaml_header",
    "special_path",
    "needs_plugin",
    "raw_files_plugin",
    "RAW_PLUGIN_PATH",
    "redirect_page",
    "redirect_target",
    "slugify",
    "permalink_url",
    "REDIRECT_MARK",
]

RAW_PLUGIN_PATH = "_plugins/labbook_raw_files.rb"
REDIRECT_MARK = '<meta name="generator" content="labbook redirect">'
_YAML_HEADER = re.compile(rb"\A---[ \t\r\n\f\v]*\r?\n")
_SPECIAL_START = (".", "_", "#", "~")
_GLOB = re.compile(r"([*?\[\]{}\\])")
_DATED = re.compile(r"\A\d{2,4}-\d{1,2}-\d{1,2}-[^/]*\.[^.]+\Z")
HEAD_BYTES = 64
"""Enough of a file's start to apply Jekyll's front-matter test to its first line."""


def has_yaml_header(head: bytes) -> bool:
    """Jekyll's `Utils.has_yaml_header?`: the first line is `---` (trailing blanks allowed).

    `head` is the start of the file; a first line longer than it cannot be `---` plus blanks
    unless it is all blanks, which `HEAD_BYTES` covers for any real file.
    """
    line = head.split(b"\n", 1)
    return len(line) == 2 and bool(_YAML_HEADER.match(line[0] + b"\n"))


def special_path(relative: str) -> bool:
    """Jekyll's EntryFilter would skip this path: a segment starts with '.', '_', '#', '~' or ends with '~'."""
    return any(part.startswith(_SPECIAL_START) or part.endswith("~") for part in relative.split("/"))


@dataclass(frozen=True, slots=True)
class RawRules:
    """The `_config.yml` lists that make Jekyll publish labbook's files byte for byte."""

    include: tuple[str, ...] = ()
    """Files Jekyll would skip for their name: read by full path (a literal path, not a glob)."""
    exclude: tuple[str, ...] = ()
    """Files Jekyll would render as pages: left out, then copied by the plugin (globs escaped)."""

    @property
    def uses_plugin(self) -> bool:
        return bool(self.exclude)


def raw_rules(heads: Mapping[str, bytes]) -> RawRules:
    """The lists for these files (site-relative path -> first bytes), sorted."""
    include, exclude = [], []
    for name in sorted(heads):
        if needs_plugin(name, heads[name]):
            exclude.append(_GLOB.sub(r"\\\1", name))
        elif special_path(name):
            include.append(name)
    return RawRules(tuple(include), tuple(exclude))


def needs_plugin(name: str, head: bytes) -> bool:
    """Jekyll would change this file whatever the config says: only the plugin publishes it as it is.

    A first line `---` makes it a page; a `%` in its name is unescaped on the way out
    (`a%20b.csv` is written as `a b.csv`); a dated name in a `_posts` or `_drafts` folder,
    anywhere in the tree, makes it a blog post.
    """
    parts = name.split("/")
    in_posts = any(part in ("_posts", "_drafts") for part in parts[:-1])
    return has_yaml_header(head) or "%" in name or (in_posts and bool(_DATED.match(parts[-1])))


def raw_files_plugin(folders: Sequence[str]) -> bytes:
    """A Jekyll generator that publishes every file under `folders` as a static file, byte for byte.

    It runs after Jekyll read the site and before it renders: pages and posts Jekyll made of
    files there are dropped (their Liquid never runs), and every file there becomes a static
    file, whatever its name. Written by labbook; GitHub Pages' classic build ignores plugins.
    """
    listed = ", ".join(_ruby_string(f.strip("/")) for f in folders)
    return f'''# Written by labbook: publishes the files under these folders exactly as they are.
# Jekyll would render a file whose first line is '---' as a page and skip names starting with
# '_' or '.'; labbook's data files must reach readers byte for byte. Safe mode (GitHub Pages'
# classic build) loads no plugin: such files are then left out, never changed.
module LabbookRawFiles
  FOLDERS = [{listed}].freeze

  # A static file written under its own name: Jekyll's would unescape '%20' in it to a space.
  class RawFile < Jekyll::StaticFile
    def destination(dest)
      @site.in_dest_dir(dest, File.join(@dir, @name))
    end
  end

  class Generator < Jekyll::Generator
    safe true
    priority :highest

    def generate(site)
      FOLDERS.each {{ |folder| publish(site, folder) }}
    end

    private

    def publish(site, folder)
      root = site.in_source_dir(folder)
      return unless File.directory?(root)

      inside = ->(path) {{ path.to_s.sub(%r!\\A/!, "").start_with?("#{{folder}}/") }}
      site.pages.reject! {{ |page| inside.call(page.relative_path) }}
      site.posts.docs.reject! {{ |post| inside.call(post.relative_path) }}
      site.static_files.reject! {{ |file| inside.call(file.relative_path) }}
      Dir.glob("**/*", File::FNM_DOTMATCH, base: root).sort.each do |name|
        path = File.join(root, name)
        next if File.directory?(path) || File.symlink?(path)

        relative = File.join(folder, name)
        site.static_files << RawFile.new(site, site.source, File.dirname(relative), File.basename(relative))
      end
    end
  end
end
'''.encode()


def _ruby_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- redirects ---------------------------------------------------------------------------------------


def redirect_target(path: str) -> str:
    """Where a redirect page for the URL path `/old/url/` (or `/old.html`, `/old`) is written, site-relative."""
    if path.endswith("/"):
        return path.strip("/") + "/index.html" if path.strip("/") else "index.html"
    name = path.strip("/")
    return name if PurePosixPath(name).suffix in (".html", ".htm") else name + ".html"


def redirect_page(url: str, canonical: str) -> bytes:
    """A page that sends the reader to `url`: a meta refresh, a canonical link and a plain link, no script."""
    href = html.escape(url, quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
{REDIRECT_MARK}
<title>Redirecting…</title>
<link rel="canonical" href="{html.escape(canonical, quote=True)}">
<meta http-equiv="refresh" content="0; url={href}">
<meta name="robots" content="noindex">
</head>
<body>
<p>This page has moved to <a href="{href}">{href}</a>.</p>
</body>
</html>
""".encode()


# --- slugs and permalinks ----------------------------------------------------------------------------

_PRETTY = re.compile(r"[^\w.~!$&'()+,;=@]+")  # \w holds '_'
_DEFAULT = re.compile(r"[\W_]+")


def slugify(text: str, mode: str = "default", *, cased: bool = False) -> str:
    """Jekyll's `Utils.slugify` for the modes labbook meets: 'default' (tags) and 'pretty' (:title)."""
    text = unicodedata.normalize("NFC", text)
    if mode == "pretty":
        slug = _PRETTY.sub("-", text)
    elif mode == "raw":
        slug = re.sub(r"\s+", "-", text)
    else:
        slug = _DEFAULT.sub("-", text)
    slug = slug.removeprefix("-").removesuffix("-")
    return slug if cased else slug.lower()


_STYLES = {
    "date": "/:categories/:year/:month/:day/:title:output_ext",
    "pretty": "/:categories/:year/:month/:day/:title/",
    "ordinal": "/:categories/:year/:y_day/:title:output_ext",
    "weekdate": "/:categories/:year/W:week/:short_day/:title:output_ext",
    "none": "/:categories/:title:output_ext",
}


def permalink_url(pattern: str, *, date: dt.date, title: str, categories: Iterable[str] = (),
                  output_ext: str = ".html") -> str:
    """A post's URL under a Jekyll permalink pattern (a style name or placeholders), baseurl not included."""
    pattern = _STYLES.get(pattern, pattern)
    values = {
        "year": f"{date.year:04d}", "month": f"{date.month:02d}", "day": f"{date.day:02d}",
        "i_month": str(date.month), "i_day": str(date.day), "short_year": f"{date.year % 100:02d}",
        "y_day": f"{date.timetuple().tm_yday:03d}", "short_month": date.strftime("%b"),
        "long_month": date.strftime("%B"), "week": f"{date.isocalendar()[1]:02d}",
        "short_day": date.strftime("%a"), "long_day": date.strftime("%A"),
        "title": slugify(title, "pretty", cased=True), "slug": slugify(title),
        "name": title, "categories": "/".join(dict.fromkeys(c.lower() for c in categories)),
        "output_ext": output_ext,
    }
    url = re.sub(r":(output_ext|[a-z_]+)", lambda m: values.get(m.group(1), m.group(0)), pattern)
    url = re.sub(r"/{2,}", "/", "/" + url)
    return url
