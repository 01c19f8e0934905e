"""Jinja2 environments for reports: HTML autoescaped, Markdown escaped by `finalize`.

Escaping is applied to every `{{ value }}` by the environment, not by each template, so a template
cannot forget it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from vigil_ir.bidi import neutralise

EMPTY = "—"
# Markdown punctuation that could format, link or break a table cell; backslash-escaped.
_MD_PUNCT = re.compile(r"([\\`*_\[\]|~#])")
_NEWLINES = re.compile(r"\r\n|\r|\n")
# Any character md_escape changes in ASCII text (bidi controls are not ASCII).
_MD_SPECIAL = re.compile(r"[\\`*_\[\]|~#&<>\r\n]")


@dataclass
class Section:
    """One titled part of a report (the risk assessment, the program review): a paragraph, a table
    (columns, rows of cell values), and an SVG the HTML report draws (every text in it escaped)."""

    title: str
    text: str
    columns: tuple[str, ...] = ()
    rows: list[tuple] = field(default_factory=list)
    empty: str = "None."
    chart: str = ""


def render_sections(fmt: str, *, heading: str, period: str, generated_at: str, note: str,
                    sections: list[Section]) -> str:
    """A report of `sections` in Markdown or HTML (charts drawn in HTML only)."""
    if fmt == "html":
        sections = [replace(part, chart=Markup(part.chart)) for part in sections]
    return render(fmt, f"report.{fmt}.j2", heading=heading, period=period, generated_at=generated_at, note=note,
                  sections=sections)


def md_escape(value: Any) -> str:
    """Text safe inside a Markdown table cell: punctuation escaped, raw HTML neutralised, one line."""
    if value is None:
        return EMPTY
    text = str(value)
    if text.isascii() and not _MD_SPECIAL.search(text):  # most cells (names, refs, levels): nothing to do
        return text
    text = neutralise(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_PUNCT.sub(r"\\\1", text)
    return _NEWLINES.sub("<br>", text)


def html_finalize(value: Any) -> Any:
    """None as a dash; text with bidi controls shown (autoescaping follows)."""
    if value is None:
        return EMPTY
    return neutralise(value) if isinstance(value, str) and not isinstance(value, Markup) else value


@lru_cache(maxsize=None)
def environment(kind: str) -> Environment:
    """`html` or `md`."""
    common = dict(loader=PackageLoader("vigil_ir", "templates"), undefined=StrictUndefined,
                  trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    if kind == "html":
        return Environment(autoescape=True, finalize=html_finalize, **common)
    if kind == "md":
        return Environment(autoescape=False, finalize=md_escape, **common)
    raise ValueError(f"No template environment for {kind!r}")


def render(kind: str, template: str, **context: Any) -> str:
    return environment(kind).get_template(template).render(**context)
