"""Shared fixtures: a migrated database per backend (SQLite always, PostgreSQL when configured).

Set TEST_DATABASE_URL to a PostgreSQL database the tests may wipe; every test that takes `db` then
runs against both backends. Under pytest-xdist (`-n 2`, as scripts/test.sh runs) each worker gets
its own PostgreSQL database beside that one (`<name>_gw0`, …), created when missing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from vigil_ir.config import sqlalchemy_url
from vigil_ir.db import Database, migrate
from vigil_ir.tables import metadata
from tests import slack_requests
from tests.fakes.slack_api import fake_slack  # noqa: F401  (fixture)

PLAYBOOK_FIXTURES = Path(__file__).parent / "playbook_fixtures"
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


def pytest_collection_modifyitems(items):
    """Tests marked slow first: pytest-xdist hands files out in this order, so the longest ones
    start at once and run beside the rest instead of after them."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _per_worker(url: str) -> str:
    """TEST_DATABASE_URL for this xdist worker: a database of its own on the same server."""
    from sqlalchemy.engine import make_url

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    given = make_url(url)
    mine = given.set(database=f"{given.database}_{worker}")
    engine = create_engine(given, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                    {"name": mine.database}).first()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{mine.database}"'))
    engine.dispose()
    return mine.render_as_string(hide_password=False)


def _fresh_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'vigil.db'}"
    else:
        url = _per_worker(sqlalchemy_url(os.environ["TEST_DATABASE_URL"]))
        _fresh_postgres(url)
    migrate(url)
    return url


def empty_all_tables(database: Database) -> None:
    names = [table.name for table in metadata.sorted_tables]
    with database.engine.begin() as connection:
        if database.is_sqlite:
            for name in reversed(names):
                connection.execute(text(f'DELETE FROM "{name}"'))
        else:
            quoted = ", ".join(f'"{name}"' for name in names)
            connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))


@pytest.fixture(autouse=True)
def signing_key_file(tmp_path_factory, monkeypatch) -> Path:
    """Each test signs bundles with a key of its own, created on first use in a folder of its own."""
    path = tmp_path_factory.mktemp("signing") / "vigil-signing-key.pem"
    monkeypatch.setenv("VIGIL_SIGNING_KEY_FILE", str(path))
    return path


VIGIL_KIND = re.compile(r"[a-z_]+\.[a-z_]+")  # what Vigil names its kinds; tests write odd ones on purpose


def kinds_without_a_sentence(database: Database) -> list[str]:
    """Event kinds recorded in `database` that the bundle checker has no sentence for (an auditor
    would read their summary as raw JSON); kinds tests write for their own purposes aside."""
    from vigil_ir.exports.describe import SENTENCES

    from sqlalchemy.exc import SQLAlchemyError

    try:
        with database.engine.connect() as connection:
            kinds = connection.execute(text("SELECT DISTINCT kind FROM event")).scalars().all()
    except SQLAlchemyError:  # a test that took the database away (outage, migration tests)
        return []
    return sorted(kind for kind in kinds if kind not in SENTENCES and VIGIL_KIND.fullmatch(kind)
                  and not kind.startswith("test.") and kind != "audit.test")


@pytest.fixture
def db(database_url) -> Database:
    database = Database(database_url)
    empty_all_tables(database)
    yield database
    database.dispose()


class VigilHarness:
    """The real Starlette + bolt app, driven with signed HTTP requests, talking to the fake Slack."""

    def __init__(self, runtime, fake):
        from starlette.testclient import TestClient

        from vigil_ir.web.app import create_web_app

        self.runtime, self.fake, self.db = runtime, fake, runtime.database
        self.client = TestClient(create_web_app(runtime, background_delivery=False))

    def post(self, body: str, *, content_type: str = "application/x-www-form-urlencoded", headers=None,
             secret: str = slack_requests.SECRET, timestamp: int | None = None):
        signed = slack_requests.signed_headers(body, secret=secret, timestamp=timestamp, content_type=content_type)
        return self.client.post("/slack/events", content=body.encode(), headers={**signed, **(headers or {})})

    def command(self, text: str, **kwargs):
        return self.post(slack_requests.slash_command(text, **kwargs))

    def submit(self, view: dict, values: dict, **kwargs):
        return self.post(slack_requests.view_submission(view, values, **kwargs))

    def event(self, event: dict, *, event_id: str | None = None, retry_num: int | None = None):
        headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"} if retry_num else None
        return self.post(slack_requests.event_callback(event, event_id=event_id), content_type="application/json",
                         headers=headers)

    def deliver(self, rounds: int = 10) -> int:
        """Run the outbox sender until a pass delivers nothing (the worker's job, in-process)."""
        total = 0
        for _ in range(rounds):
            delivered = self.runtime.worker.sender.run_once()
            total += delivered
            if not delivered:
                break
        return total

    def sweep(self, now=None) -> dict:
        """Run the reminder sweeps once (the worker's other job)."""
        from vigil_ir.reminders.scheduler import run_sweeps

        return run_sweeps(self.db, self.runtime.settings, now)

    def last_view(self, callback_id: str) -> dict:
        opened = [c.params["view"] for c in self.fake.calls_to("views.open")
                  if c.params["view"]["callback_id"] == callback_id]
        assert opened, f"no {callback_id} modal was opened"
        return opened[-1]

    def declare(self, title: str = "Checkout API returns 500s", *, severity: str = "sev2",
                type: str = "availability", user: str = "U0DECLARER", deliver: bool = True):
        from vigil_ir.incidents.models import Incident
        from sqlmodel import select

        assert self.command(f"declare {title}", user=user).status_code == 200
        view = self.last_view("incident_declare")
        response = self.submit(view, {"title": slack_requests.input_value("plain_text_input", title),
                                      "severity": slack_requests.input_value("static_select", severity),
                                      "type": slack_requests.input_value("static_select", type)}, user=user)
        assert response.status_code == 200, response.text
        if deliver:
            self.deliver()
        with self.db.session() as session:
            return session.exec(select(Incident).order_by(Incident.number.desc())).first()


@pytest.fixture
def settings_for(fake_slack):
    from vigil_ir.config import Settings

    def build(**overrides):
        values = {"DATABASE_URL": "sqlite://", "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": slack_requests.SECRET,
                  "SLACK_API_URL": fake_slack.base_url, "SLACK_HOOKS_URL": fake_slack.response_url(""),
                  "VIGIL_INCIDENT_FEED_CHANNEL": "C0FEED",
                  "VIGIL_ADMINS": "U0ADMIN", "VIGIL_SLACK_TIMEOUT_SECONDS": 2,
                  "VIGIL_PLAYBOOKS_DIR": str(PLAYBOOK_FIXTURES),
                  # Closing without a second person, so tests of other features close in one step;
                  # tests/test_permissions_*.py set the default (sev1,sev2,security) and test it.
                  "VIGIL_CLOSE_APPROVAL": "none"}
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return build


@pytest.fixture
def vigil(db, fake_slack, settings_for) -> VigilHarness:
    from vigil_ir.runtime import build_runtime

    runtime = build_runtime(settings_for(DATABASE_URL=db.url), db)
    harness = VigilHarness(runtime, fake_slack)
    yield harness
    harness.client.close()
