"""The dashboard and private incidents: auditor tokens and admins see every incident, marked private;
a Slack user signed in as a viewer sees a private one only as the permissions policy allows (its
members, commanders)."""

from __future__ import annotations

import pytest

from vigil_ir.incidents import access, service
from tests.dashboard_seed import make_token
from tests.test_dashboard import Dash
from tests.test_dashboard_slack import CLIENT, sign_in

TITLE = "Customer DB exfiltration via stolen admin key"
VIEWER, MEMBER, COMMANDER, ADMIN = "U0VIEWER", "U0OTHER", "U0CMDR", "U0ADMIN"


@pytest.fixture
def incidents(db):
    with db.session() as s:
        private = service.declare(s, actor="U0DECLARER", title=TITLE, severity="sev1", type="security", private=True)
        access.grant(s, incident=private, actor="U0DECLARER", user=MEMBER, via="invite")
        public = service.declare(s, actor="U0DECLARER", title="Checkout slow", severity="sev3", type="availability")
        return private.key, public.key


def build(db, fake_slack):
    return Dash(db, SLACK_API_URL=fake_slack.base_url, **{**CLIENT, "VIGIL_COMMANDERS": COMMANDER,
                                                         "VIGIL_DASHBOARD_VIEWERS": f"{VIEWER},{MEMBER},{COMMANDER}"})


def test_an_auditor_token_sees_every_incident_marked_private(db, fake_slack, incidents):
    private, public = incidents
    dash = build(db, fake_slack)
    _, secret = make_token(db)
    assert dash.sign_in(secret).status_code == 303
    listing = dash.client.get("/").text
    assert f"{TITLE} <span class=\"private\">(private)</span>" in listing and "Checkout slow" in listing
    page = dash.client.get(f"/incidents/{private}")
    assert page.status_code == 200 and TITLE in page.text and "(private)" in page.text
    assert dash.client.get(f"/incidents/{private}/timeline.json").status_code == 200


@pytest.mark.parametrize("user", [MEMBER, COMMANDER, ADMIN])
def test_members_commanders_and_admins_see_it(db, fake_slack, incidents, user):
    private, _ = incidents
    dash = build(db, fake_slack)
    assert sign_in(dash, fake_slack, user).status_code == 303
    assert TITLE in dash.client.get("/").text
    assert dash.client.get(f"/incidents/{private}").status_code == 200


def test_a_viewer_who_is_not_a_member_sees_nothing_of_it(db, fake_slack, incidents):
    private, public = incidents
    dash = build(db, fake_slack)
    assert sign_in(dash, fake_slack, VIEWER).status_code == 303
    listing = dash.client.get("/").text
    assert "Checkout slow" in listing and TITLE not in listing and f">{private}<" not in listing
    assert "1 incident" in listing
    for path in (f"/incidents/{private}", f"/incidents/{private}/timeline.json", f"/incidents/{private}/timeline.html"):
        response = dash.client.get(path)
        assert response.status_code == 403 and TITLE not in response.text and "is private" in response.text
    assert dash.client.get(f"/incidents/{public}").status_code == 200


def test_a_viewer_who_may_not_see_it_gets_no_export_that_holds_it(db, fake_slack, incidents):
    from datetime import timedelta

    from vigil_ir import clock

    from sqlmodel import select

    from vigil_ir.followup import actions
    from vigil_ir.incidents.models import Incident

    private, public = incidents
    with db.session() as s:
        incident = s.exec(select(Incident).where(Incident.private.is_(True))).one()
        actions.create(s, actor="U0DECLARER", description="Rotate the admin key", owner=MEMBER, incident=incident)
    today = clock.now().date()
    period = f"from={(today - timedelta(days=1)).isoformat()}&to={today.isoformat()}"
    dash = build(db, fake_slack)
    assert sign_in(dash, fake_slack, VIEWER).status_code == 303
    page = dash.client.get("/exports?" + period)
    assert page.status_code == 200 and TITLE not in page.text and "Checkout slow" in page.text
    for path in ("/exports/incidents.csv", "/exports/incidents.json", "/exports/actions.csv", "/exports/bundle.zip"):
        response = dash.client.get(f"{path}?{period}")
        assert response.status_code == 403 and TITLE not in response.text and "private" in response.text
    assert dash.client.get(f"/exports/reviews.csv?{period}").status_code == 200  # no incident in it

    member = build(db, fake_slack)  # a member still sees the population whole, private incident included
    assert sign_in(member, fake_slack, MEMBER, code="code-2").status_code == 303
    rows = member.client.get(f"/exports/incidents.json?{period}").json()
    assert {(r["key"], r["private"]) for r in rows} == {(private, True), (public, False)}


def test_insights_count_only_the_incidents_the_reader_may_see(db, fake_slack, incidents):
    """The Insights figures agree with the list they link to: a viewer who is not a member counts
    the public incident only; a member counts both."""
    import re

    for user, expected in ((VIEWER, "1 incident"), (MEMBER, "2 incidents")):
        dash = build(db, fake_slack)
        assert sign_in(dash, fake_slack, user).status_code == 303
        page = dash.client.get("/insights").text
        found = re.search(r'<a id="all-incidents" href="[^"]+">([^<]+)</a>', page)
        assert found and found.group(1) == expected, user
        assert TITLE not in page
        dash.client.close()


def test_a_member_whose_access_is_revoked_no_longer_sees_it(db, fake_slack, incidents):
    from sqlmodel import select

    from vigil_ir.incidents.models import Incident

    private, _ = incidents
    dash = build(db, fake_slack)
    assert sign_in(dash, fake_slack, MEMBER).status_code == 303
    assert TITLE in dash.client.get("/").text
    with db.session() as s:  # the lead removes them (the domain function /incident remove calls)
        incident = s.exec(select(Incident).where(Incident.private.is_(True))).one()
        assert access.revoke(s, incident=incident, actor="U0DECLARER", user=MEMBER, via="removed") is not None
    # The same signed-in session, on its next request: the listing and the page follow at once.
    assert TITLE not in dash.client.get("/").text
    assert dash.client.get(f"/incidents/{private}").status_code == 403
