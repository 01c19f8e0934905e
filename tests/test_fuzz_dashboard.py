"""The dashboard's routes with arbitrary query parameters and path values, signed in as an auditor:
never a 5xx and never a traceback."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.dashboard_seed import make_token, seed
from tests.fuzzing import assert_no_traceback, fuzz
from tests.fuzzing import sqlite_database_url  # noqa: F401  (fixture `database_url`: SQLite only)
from tests.test_dashboard import Dash

PARAMS = ("from", "to", "as_of", "page", "severity", "type", "security", "status", "format", "next")
PATHS = ("/", "/risks", "/reviews", "/people", "/exports", "/incidents/{key}", "/incidents/{key}/timeline.{fmt}",
         "/exports/incidents.{fmt}", "/exports/reviews.{fmt}", "/exports/risks.{fmt}", "/exports/actions.{fmt}",
         "/exports/acceptances.{fmt}")
values = st.one_of(st.text(max_size=30), st.integers().map(str), st.dates().map(str),
                   st.sampled_from(["9999-12-31", "0001-01-01", "-1", "9" * 40, "sev1", "yes", "csv", "json", ""]))


@pytest.fixture
def auditor(db):
    seed(db)
    harness = Dash(db)
    _, secret = make_token(db)
    assert harness.sign_in(secret).status_code == 303
    yield harness
    harness.client.close()


@fuzz(examples=120)
@given(path=st.sampled_from(PATHS), key=values, fmt=st.sampled_from(["csv", "json", "md", "html", "zip", "x"]),
       params=st.dictionaries(st.sampled_from(PARAMS), values, max_size=4))
def test_dashboard_routes_never_5xx(auditor, path, key, fmt, params):
    url = path.replace("{key}", key.replace("/", "") or "INC-1").replace("{fmt}", fmt)
    response = auditor.client.get(url, params=params)
    assert response.status_code < 500, (url, params, response.status_code, response.text[:500])
    assert_no_traceback(response.text)
