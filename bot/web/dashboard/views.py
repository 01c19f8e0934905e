"""Rendering dashboard pages: one autoescaping Jinja2 environment and the common page context.

Autoescape is on for every template, so user text (titles, notes, rationales) cannot inject markup.
Each page also gets the signed-in principal and the CSRF token for the sign-out form.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from vigil_ir.people.columns import label_in_row
from vigil_ir import clock
from vigil_ir.exports.describe import when
from vigil_ir.exports.render import EMPTY, html_finalize


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("vigil_ir", "templates/dashboard"), undefined=StrictUndefined,
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      finalize=html_finalize, trim_blocks=True, lstrip_blocks=True)
    # person_in_row: "Name (U…)" from an exported row's id and name columns (vigil_ir.people.columns).
    env.globals.update(when=when, iso=clock.iso, person_in_row=label_in_row)
    env.filters["yesno"] = lambda value: EMPTY if value is None else ("yes" if value else "no")
    return env


def query(params: dict[str, Any], **changes: Any) -> str:
    """A query string with `changes` applied, empty values dropped (pagination, download links)."""
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    html = environment().get_template(template).render(
        principal=principal, csrf=request.session.get("csrf", ""), path=request.url.path,
        generated_at=when(clock.now()), query=query, **context)
    return HTMLResponse(html, status_code=status_code)
