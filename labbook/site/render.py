"""The Jinja environment of the journal: autoescape always, sanitized markdown, resources.

Templates live in the repository's ``templates/`` and static assets in ``site/``;
the wheel ships them as ``labbook/_templates`` and ``labbook/_static``
(pyproject maps them), and a source checkout or editable install finds them
next to the package.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import jinja2
import markdown
import nh3
from markupsafe import Markup

from .. import __version__

_PACKAGE = Path(__file__).resolve().parent.parent
ALLOWED_TAGS = {"p", "em", "strong", "code", "pre", "ul", "ol", "li", "a", "blockquote", "br", "hr",
                "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "del", "sup", "sub"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'")


def resource_dir(wheel_name: str, repo_name: str) -> Path:
    """A folder shipped in the wheel (``labbook/<wheel_name>``) or, in a checkout, at the top."""
    for candidate in (_PACKAGE / wheel_name, _PACKAGE.parent / repo_name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"labbook's {repo_name}/ folder is missing from this installation")


def template_dir() -> Path:
    return resource_dir("_templates", "templates")


def static_dir() -> Path:
    return resource_dir("_static", "site")


@functools.lru_cache(maxsize=20000)
def render_markdown(text: str) -> Markup:
    """User markdown as HTML that is safe to mark safe: nh3 allow-lists the output."""
    html = markdown.markdown(text or "", extensions=["fenced_code", "tables", "sane_lists"])
    clean = nh3.clean(html, tags=ALLOWED_TAGS, attributes={"a": {"href", "title"}},
                      url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")
    return Markup(clean)


def fingerprint() -> str:
    """A hash of labbook's version, templates and static files: a change rebuilds every page."""
    digest = hashlib.sha256(__version__.encode())
    for folder in (template_dir(), static_dir()):
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def environment() -> jinja2.Environment:
    """The site's Jinja environment: autoescape on for every template, strict undefined."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir())), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             auto_reload=False)
    env.filters["markdown"] = render_markdown
    env.filters["size"] = human_size
    env.globals["csp"] = CSP
    env.globals["version"] = __version__
    return env


def human_size(size: Any) -> str:
    number = float(size or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if number < 1024 or unit == "GB":
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    return f"{number:.1f} GB"


def js_assign(name: str, key: str | None, data: Any) -> str:
    """A generated data script: ``window.NAME = …`` or ``(window.NAME ||= {})[KEY] = …``.

    json.dumps output is a valid JavaScript expression; ``<``, ``>`` and ``&`` are
    escaped anyway, and the file is loaded by ``<script src>`` (never inlined).
    """
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    body = body.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    body = body.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if key is None:
        return f"window.{name} = {body};\n"
    return f"(window.{name} = window.{name} || {{}})[{json.dumps(key)}] = {body};\n"
