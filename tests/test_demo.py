"""`vigil demo`: a labelled sample quarter in an empty database, made through the domain functions,
that the dashboard shows, `vigil verify` accepts and exports into a bundle that verifies."""

from __future__ import annotations

import re

from click.testing import CliRunner
from sqlalchemy import func
from sqlmodel import select

from tests.test_dashboard import Dash
from vigil_ir.cli import main
from vigil_ir.config import Settings
from vigil_ir.config_evidence import record_if_changed
from vigil_ir.eventlog import Event
from vigil_ir.incidents.models import Incident
from vigil_ir.risks.models import Risk, RiskAcceptance


def demo(database_url: str):
    return CliRunner().invoke(main, ["demo"], env={"DATABASE_URL": database_url, "VIGIL_PLAYBOOKS_DIR": ""})


def count_events(db) -> int:
    with db.session() as s:
        return s.exec(select(func.count()).select_from(Event)).one()


def test_demo_fills_an_empty_database_that_the_dashboard_shows_and_that_verifies(db, tmp_path):
    with db.session() as s:  # what `vigil serve` records at start-up does not make it "not empty"
        assert record_if_changed(s, Settings(_env_file=None, DATABASE_URL=db.url)) is not None
    result = demo(db.url)
    assert result.exit_code == 0, result.output
    token = next(line for line in result.output.splitlines() if line.startswith("vigil_at_"))
    with db.session() as s:
        incidents = s.exec(select(Incident).order_by(Incident.number)).all()
        risks = s.exec(select(Risk)).all()
        acceptances = s.exec(select(RiskAcceptance)).all()
    assert [i.status for i in incidents] == ["closed", "closed", "monitoring"]
    assert all(i.title.startswith("[Demo]") for i in incidents) and all(r.title.startswith("[Demo]") for r in risks)
    assert len(risks) == 3 and len(acceptances) == 1

    dash = Dash(db)
    try:
        assert dash.sign_in(token).status_code == 303
        page = dash.client.get("/?from=2020-01-01&to=2030-12-31")
        assert page.status_code == 200
        assert "Checkout API returning 500s" in page.text and "Dana Kim" in dash.client.get("/incidents/INC-1").text
    finally:
        dash.client.close()

    runner = CliRunner()
    env = {"DATABASE_URL": db.url}
    assert runner.invoke(main, ["verify"], env=env).exit_code == 0
    period = re.search(r"Demo quarter (\S+) to (\S+):", result.output).groups()
    bundle = tmp_path / "demo.zip"
    exported = runner.invoke(main, ["export", "bundle", "--from", period[0], "--to", period[1], "-o", str(bundle)],
                             env=env)
    assert exported.exit_code == 0, exported.output
    checked = runner.invoke(main, ["verify", "--bundle", str(bundle)])
    assert checked.exit_code == 0 and checked.output.startswith("OK"), checked.output


def test_demo_refuses_a_database_with_records_and_writes_nothing(db, vigil):
    vigil.declare(deliver=False)
    before = count_events(db)
    result = demo(db.url)
    assert result.exit_code != 0
    assert "only fills an empty one" in result.output and "incidents, risks or actions" in result.output
    assert count_events(db) == before
