"""Every dashboard route (read from the route tables, so a new page is fuzzed too) with arbitrary path
values, query parameters and form fields, signed in as an auditor: never a 5xx and never a traceback."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.dashboard_seed import make_token, seed
from tests.fuzzing import assert_no_traceback, fuzz
from tests.fuzzing import sqlite_database_url  # noqa: F401  (fixture `database_url`: SQLite only)
from tests.test_dashboard import Dash
from vigil_ir.web.dashboard import admin, downloads, incidents, insights, login, people, registers

PARAMS = ("from", "to", "as_of", "page", "severity", "type", "security", "status", "format", "next", "key",
          "code", "state", "error", "sid", "csrf", "token")
ROUTES = [(path, method) for module in (login, incidents, insights, registers, people, downloads, admin)
          for path, _, methods, _ in module.ROUTES for method in methods]
GETS = [path for path, method in ROUTES if method == "GET"]
POSTS = [path for path, method in ROUTES if method == "POST"]
values = st.one_of(st.text(max_size=30), st.integers().map(str), st.dates().map(str),
                   st.sampled_from(["9999-12-31", "0001-01-01", "-1", "9" * 40, "sev1", "yes", "csv", "json", ""]))


@pytest.fixture
def auditor(db):
    seed(db)
    harness = Dash(db, VIGIL_SIGN_IN_FAILURE_LIMIT=100_000)  # fuzzed sign-ins must not lock the next examples out
    _, harness.secret = make_token(db)
    assert harness.sign_in(harness.secret).status_code == 303
    yield harness
    harness.client.close()


def _url(path: str, key: str, fmt: str) -> str:
    """The route's path with its {placeholders} filled; a value is percent-encoded as a browser sends it."""
    return re.sub(r"\{(\w+)\}", lambda m: fmt if m.group(1) == "fmt" else quote(key, safe="") or "INC-1", path)


@fuzz(examples=150)
@given(path=st.sampled_from(GETS), key=values, fmt=st.sampled_from(["csv", "json", "md", "html", "zip", "x"]),
       params=st.dictionaries(st.sampled_from(PARAMS), values, max_size=4))
def test_dashboard_routes_never_5xx(auditor, path, key, fmt, params):
    url = _url(path, key, fmt)
    response = auditor.client.get(url, params=params)
    assert response.status_code < 500, (url, params, response.status_code, response.text[:500])
    assert_no_traceback(response.text)


@fuzz(examples=60)
@given(path=st.sampled_from(POSTS), form=st.dictionaries(st.sampled_from(PARAMS), values, max_size=4),
       with_csrf=st.booleans())
def test_dashboard_forms_never_5xx(auditor, path, form, with_csrf):
    if with_csrf:
        form = {**form, "csrf": auditor.csrf()}
    response = auditor.client.post(path, data=form)
    assert response.status_code < 500, (path, form, response.status_code, response.text[:500])
    assert_no_traceback(response.text)
    if auditor.client.get("/").status_code != 200:  # signed out (or replaced) by the form: sign in again
        assert auditor.sign_in(auditor.secret).status_code == 303
