"""Rendering step instructions: Jinja2 in a sandbox, with the incident as the only variable.

Playbook files are reviewed text, not trusted code, so templates run in Jinja's
SandboxedEnvironment (no `__class__`/`__globals__` walks, bounded `range`) with StrictUndefined
(a misspelt variable is an error, not an empty string). Autoescape is off: the output is Markdown
that the Slack layer escapes (`&`, `<`, `>`) when it posts it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from vigil_ir import clock
from vigil_ir.incidents.models import SEVERITIES, STATUSES, TYPES

VARIABLES = ("key", "number", "title", "severity", "type", "security", "status", "lead", "channel",
             "declared_at", "detected_at")
_AVAILABLE = ", ".join(f"incident.{name}" for name in VARIABLES)

# Jinja's default whitespace rules (authors use `{%- -%}` where they want lines joined);
# keep_trailing_newline so rendering does not alter the text's ending.
_ENV = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)


class PlaybookTemplateError(ValueError):
    """A step's instructions do not compile or render; `line` is within the template (1-based)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class _Incident:
    """`incident` inside templates: attributes are the facts; anything else is undefined."""

    def __init__(self, facts: Mapping[str, Any]) -> None:
        self.__dict__.update({name: facts.get(name) for name in VARIABLES})

    def __repr__(self) -> str:
        return str(self.__dict__["key"])


def incident_facts(incident) -> dict[str, Any]:
    """The template variables (and condition facts) of a `vigil_ir.incidents.models.Incident`."""
    return {
        "key": incident.key,
        "number": incident.number,
        "title": incident.title,
        "severity": incident.severity,
        "type": incident.type,
        "security": bool(incident.security),
        "status": incident.status,
        "lead": incident.lead,
        "channel": incident.channel_id,
        "declared_at": clock.iso(incident.declared_at),
        "detected_at": clock.iso(incident.detected_at),
    }


def render_instructions(template: str, facts: Mapping[str, Any]) -> str:
    """Render a step's instructions for an incident; PlaybookTemplateError if it cannot be."""
    compiled = _compile(template)
    try:
        return compiled.render(incident=_Incident(facts))
    except SecurityError as exc:
        raise PlaybookTemplateError(f"unsafe template operation refused: {exc}", _template_line(exc)) from exc
    except UndefinedError as exc:
        raise PlaybookTemplateError(_undefined_message(str(exc)), _template_line(exc)) from exc
    except Exception as exc:  # noqa: BLE001 -- any runtime failure (1/0, bad filter args) is a lint error
        raise PlaybookTemplateError(f"template error: {type(exc).__name__}: {exc}", _template_line(exc)) from exc


@lru_cache(maxsize=1024)
def _compile(template: str) -> Template:
    try:
        return _ENV.from_string(template)
    except TemplateSyntaxError as exc:
        raise PlaybookTemplateError(f"template syntax error: {exc.message}", exc.lineno) from exc


def _undefined_message(message: str) -> str:
    attribute = re.search(r"_Incident object' has no attribute '([^']+)'", message)
    if attribute:
        return f"unknown variable 'incident.{attribute.group(1)}' (available: {_AVAILABLE})"
    name = re.fullmatch(r"'([^']+)' is undefined", message)
    if name:
        return f"unknown variable '{name.group(1)}' (available: {_AVAILABLE})"
    return f"undefined value: {message}"


def _template_line(exc: BaseException) -> int | None:
    """Jinja rewrites tracebacks so template frames carry template line numbers."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def sample_facts() -> Iterator[dict[str, Any]]:
    """Incidents to lint templates against: every severity × type, then the odd cases (no lead or
    channel yet, security flag flipped, each status)."""
    base = {"key": "INC-42", "number": 42, "title": "Sample incident", "status": "investigating",
            "lead": "U0LEAD", "channel": "C0INCIDENT", "declared_at": "2025-01-06T09:30:00.000000Z",
            "detected_at": "2025-01-06T08:55:00.000000Z"}
    for severity in SEVERITIES:
        for kind in TYPES:
            yield {**base, "severity": severity, "type": kind, "security": kind == "security"}
    for index, status in enumerate(STATUSES):
        kind = tuple(TYPES)[index % len(TYPES)]
        yield {**base, "severity": "sev1", "type": kind, "security": kind != "security", "status": status,
               "lead": None, "channel": None if index % 2 else "C0INCIDENT"}


def check_template(template: str) -> list[PlaybookTemplateError]:
    """Every distinct error rendering `template` against the sample incidents (empty: fine)."""
    try:
        _compile(template)
    except PlaybookTemplateError as exc:
        return [exc]
    errors: dict[str, PlaybookTemplateError] = {}
    for facts in sample_facts():
        try:
            render_instructions(template, facts)
        except PlaybookTemplateError as exc:
            errors.setdefault(exc.message, exc)
    return list(errors.values())
