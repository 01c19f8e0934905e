"""The alert webhooks (POST /integrations/alerts/<source>) with authenticated bodies in each tool's shape,
values replaced by values of any JSON type, keys dropped: never a 5xx and never a traceback.

SQLite only (see tests/fuzzing.py).
"""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import VigilHarness
from tests.fakes import alert_senders as senders
from tests.fuzzing import assert_no_traceback, fuzz, json_values
from tests.fuzzing import sqlite_database_url  # noqa: F401  (fixture `database_url`: SQLite only)

GENERIC = {"fingerprint": "disk-full-db1", "title": "Disk full on db1", "severity": "warning",
           "starts_at": "2026-12-04T05:59:00Z", "labels": {"host": "db1"}}
SHAPES = {"alertmanager": lambda: senders.alertmanager([senders.am_alert("fp-1"), senders.am_alert("fp-2")]),
          "grafana": senders.grafana, "opsgenie": lambda: senders.opsgenie("Create"),
          "pagerduty": lambda: senders.pagerduty("incident.triggered"), "generic": lambda: dict(GENERIC)}


@pytest.fixture
def alerting(db, fake_slack, settings_for):
    from vigil_ir.runtime import build_runtime

    runtime = build_runtime(settings_for(DATABASE_URL=db.url, **senders.settings_overrides()), db)
    harness = VigilHarness(runtime, fake_slack)
    yield harness
    harness.client.close()


def _paths(value, prefix=()):
    """Every place in a JSON document (dict keys and list positions)."""
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*prefix, index))


def _mutate(document, path, replacement, drop: bool):
    if not path:
        return replacement
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if drop and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return document


@fuzz(120)
@given(data=st.data())
def test_alert_webhooks_never_5xx(alerting, data):
    source = data.draw(st.sampled_from(sorted(SHAPES)), label="source")
    document = SHAPES[source]()
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        path = data.draw(st.sampled_from(list(_paths(document))), label="where")
        document = _mutate(copy.deepcopy(document), path, data.draw(json_values, label="value"),
                           data.draw(st.booleans(), label="drop"))
    body = json.dumps(document).encode()
    response = alerting.client.post(f"/integrations/alerts/{source}", content=body,
                                    headers=senders.headers_for(source, body))
    assert response.status_code < 500, (source, document, response.status_code, response.text[:500])
    assert_no_traceback(response.text)
