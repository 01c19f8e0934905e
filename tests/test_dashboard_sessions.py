"""Dashboard sessions held on the server, through the real web app: signing out and revocation end
every copy of the cookie, failed sign-ins are throttled and recorded boundedly, the cookie's
Secure flag follows the base URL, page views are recorded boundedly and GETs write nothing else,
and Slack users are admitted by the permissions policy."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.auth.models import AuditorToken, DashboardSession
from vigil_ir.auth.throttle import window_start
from vigil_ir.cli import main
from vigil_ir.people.cli_actor import host_login
from tests.dashboard_seed import make_token, seed
from tests.fuzzing import changed, row_counts
from tests.test_dashboard import Dash
from tests.test_dashboard_slack import CLIENT, sign_in as slack_sign_in


@pytest.fixture
def dash(db):
    seed(db)
    harness = Dash(db)
    yield harness
    harness.client.close()


def csrf_of(client, path="/") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def copy_cookies(source, target) -> None:
    for cookie in source.cookies.jar:
        target.cookies.set(cookie.name, cookie.value)


def sessions_in(db) -> list[DashboardSession]:
    with db.session() as s:
        rows = list(s.exec(select(DashboardSession).order_by(DashboardSession.id)))
        for row in rows:
            s.expunge(row)
    return rows


def cli(db, *args):
    return CliRunner().invoke(main, list(args), obj={"database": db})


# ---- signing out and revocation --------------------------------------------------------------------
def test_signing_out_ends_the_session_for_a_copied_cookie_too(dash):
    _, secret = make_token(dash.db)
    assert dash.sign_in(secret).status_code == 303
    thief = dash.browser("198.51.100.7")
    copy_cookies(dash.client, thief)
    assert thief.get("/risks").status_code == 200  # the copy works while the session lives
    response = dash.client.post("/logout", data={"csrf": csrf_of(dash.client)})
    assert response.headers["location"] == "/login?reason=signed_out"
    replay = thief.get("/risks")
    assert replay.status_code == 303 and "reason=signed_out" in replay.headers["location"]
    (row,) = sessions_in(dash.db)
    assert row.end_reason == "signed_out" and row.ended_by == "auditor:1"
    (event,) = dash.events("audit.dashboard_signed_out")
    assert event.actor == "auditor:1" and event.data["session_id"] == row.id and event.data["address"] == "testclient"
    (signed_in,) = dash.events("audit.dashboard_signed_in")
    assert signed_in.data["session_id"] == row.id and signed_in.data["address"] == "testclient"


def test_the_cookie_carries_only_a_random_session_id(dash):
    _, secret = make_token(dash.db, name="Acme Audit LLP")
    cookie = dash.sign_in(secret).headers["set-cookie"]
    import base64
    import json

    payload = json.loads(base64.b64decode(cookie.split("=", 1)[1].split(".")[0] + "=="))
    assert set(payload) == {"sid", "csrf"} and len(payload["sid"]) >= 40
    assert "Acme" not in json.dumps(payload)
    with dash.db.session() as s:
        (row,) = s.exec(select(DashboardSession)).all()
    assert payload["sid"] not in (row.sid_sha256, str(row.id))  # only its SHA-256 is stored


def test_an_admin_revokes_a_session_in_the_dashboard_and_the_victim_is_signed_out(db, fake_slack):
    seed(db)
    dash = Dash(db, SLACK_API_URL=fake_slack.base_url, **CLIENT)
    _, secret = make_token(db, name="Acme")
    victim = dash.browser("203.0.113.20")
    assert dash.sign_in(secret, client=victim).status_code == 303
    assert victim.get("/").status_code == 200
    assert slack_sign_in(dash, fake_slack, "U0ADMIN").status_code == 303
    listing = dash.client.get("/admin/sessions")
    assert listing.status_code == 200 and "Acme (auditor token 1)" in listing.text and "203.0.113.20" in listing.text
    victim_id = next(row.id for row in sessions_in(db) if row.kind == "token")
    forged = dash.client.post("/admin/sessions/revoke", data={"csrf": "forged", "session_id": str(victim_id)})
    assert forged.status_code == 400 and victim.get("/").status_code == 200
    token = csrf_of(dash.client)
    before = row_counts(db)
    bad = dash.client.post("/admin/sessions/revoke", data={"csrf": token, "session_id": "abc"})
    assert bad.status_code == 400 and "is not a session id" in bad.text and not changed(before, row_counts(db))
    done = dash.client.post("/admin/sessions/revoke", data={"csrf": csrf_of(dash.client), "session_id": str(victim_id)})
    assert done.status_code == 200 and f"Ended session {victim_id}" in done.text
    answer = victim.get("/")
    assert answer.status_code == 303 and "reason=session_revoked" in answer.headers["location"]
    assert "ended by an admin" in victim.get(answer.headers["location"]).text
    (event,) = dash.events("audit.dashboard_session_revoked")
    assert event.actor == "U0ADMIN" and event.data["session_id"] == victim_id and event.data["token_id"] == 1
    assert event.data["address"] == "testclient" and event.data["signed_in_from"] == "203.0.113.20"
    again = dash.client.post("/admin/sessions/revoke", data={"csrf": csrf_of(dash.client), "session_id": str(victim_id)})
    assert again.status_code == 400 and "not active (revoked)" in again.text
    viewer = dash.browser("203.0.113.30")
    assert slack_sign_in(type("D", (), {"client": viewer})(), fake_slack, "U0VIEWER", code="v").status_code == 303
    assert viewer.get("/admin/sessions").status_code == 403
    assert viewer.post("/admin/sessions/revoke", data={"csrf": csrf_of(viewer), "session_id": "1"}).status_code == 403
    dash.client.close()


def test_sessions_cli_lists_and_revokes_by_id_and_for_a_user(dash):
    _, secret = make_token(dash.db, name="Acme")
    first, second = dash.browser("192.0.2.1"), dash.browser("192.0.2.2")
    for browser in (first, second):
        assert dash.sign_in(secret, client=browser).status_code == 303
    listing = cli(dash.db, "dashboard", "sessions", "list")
    assert listing.exit_code == 0, listing.output
    assert "1\tactive\tauditor:1\tAcme (auditor token 1)\t192.0.2.1" in listing.stdout
    assert "2\tactive\tauditor:1" in listing.stdout
    assert cli(dash.db, "dashboard", "sessions", "revoke", "1", "--by", "Jane Roe").exit_code == 2  # not a person
    revoked = cli(dash.db, "dashboard", "sessions", "revoke", "1")
    assert revoked.exit_code == 0 and "Revoked dashboard session 1 (auditor:1)" in revoked.output
    assert first.get("/").status_code == 303 and second.get("/").status_code == 200
    assert cli(dash.db, "dashboard", "sessions", "revoke", "1").exit_code == 1
    assert cli(dash.db, "dashboard", "sessions", "revoke", "99").exit_code == 1
    assert cli(dash.db, "dashboard", "sessions", "revoke").exit_code == 2
    assert cli(dash.db, "dashboard", "sessions", "revoke", "--all-for", "nobody").exit_code == 1
    everyone = cli(dash.db, "dashboard", "sessions", "revoke", "--all-for", "auditor:1")
    assert everyone.exit_code == 0 and "Revoked dashboard session 2" in everyone.output
    assert second.get("/").status_code == 303
    assert "Nobody is signed in" in cli(dash.db, "dashboard", "sessions", "list").output
    assert "2\trevoked\tauditor:1" in cli(dash.db, "dashboard", "sessions", "list", "--all").stdout
    assert [e.actor for e in dash.events("audit.dashboard_session_revoked")] == [host_login()] * 2
    assert cli(dash.db, "dashboard", "sessions", "revoke", "--all-for", "nobody@example.com").exit_code == 2


# ---- failed sign-ins -------------------------------------------------------------------------------
def test_failed_sign_ins_are_throttled_per_address_and_recorded_once_per_window(db):
    # Windows are fixed (aligned to an epoch): start a minute into one, so "+16 minutes" is the next.
    start = window_start(clock.now(), timedelta(minutes=15)) + timedelta(minutes=16)
    with clock.frozen(start):
        seed(db)
        dash = Dash(db, VIGIL_SIGN_IN_FAILURE_LIMIT="3", VIGIL_SIGN_IN_WINDOW_MINUTES="15")
        _, secret = make_token(db)
        attacker = dash.browser("203.0.113.66")
        for n in range(3):  # different prefixes: only the address counts them all
            assert dash.sign_in(f"vigil_at_guess{n}xxxxxxxxxxxx", client=attacker).status_code == 401
        refused = dash.sign_in(secret, client=attacker)  # even the right token: the address is throttled
        assert refused.status_code == 429 and "Too many failed sign-ins" in refused.text
        assert 0 < int(refused.headers["retry-after"]) <= 15 * 60
        assert attacker.get("/").status_code == 303
        for _ in range(20):
            assert dash.sign_in("vigil_at_guess0xxxxxxxxxxxx", client=attacker).status_code == 429
        assert dash.sign_in(secret, client=dash.browser("192.0.2.9")).status_code == 303  # elsewhere: fine
        events = dash.events("audit.dashboard_sign_in_failed")
        by_address = [e for e in events if "address" in e.data and e.data.get("address") == "203.0.113.66"
                      and "prefix" not in e.data]
        assert len(by_address) == 1 and by_address[0].data["limit"] == 3
        prefixes = sorted(e.data["prefix"] for e in events if "prefix" in e.data and not secret.startswith(e.data["prefix"]))
        assert prefixes == ["vigil_at_guess0xx", "vigil_at_guess1xx", "vigil_at_guess2xx"]  # one each, not 24
        assert secret not in str([e.data for e in events])
        with clock.frozen(start + timedelta(minutes=16)):
            assert dash.sign_in(secret, client=attacker).status_code == 303  # a new window
            assert dash.sign_in("vigil_at_guess0xxxxxxxxxxxx", client=dash.browser("203.0.113.66")).status_code == 401
        newest = [e for e in dash.events("audit.dashboard_sign_in_failed") if e.data.get("address") == "203.0.113.66"
                  and "prefix" not in e.data][-1]
        assert newest.data["previous_window_failures"] == 24  # the last window's total, recorded once


def test_failed_sign_ins_are_throttled_per_token_prefix_across_addresses(db):
    with clock.frozen(window_start(clock.now(), timedelta(minutes=15)) + timedelta(minutes=1)):
        seed(db)
        dash = Dash(db, VIGIL_SIGN_IN_FAILURE_LIMIT="3")
        for n in range(3):
            assert dash.sign_in(f"vigil_at_SAMEPREFabc{n}", client=dash.browser(f"198.51.100.{n}")).status_code == 401
        refused = dash.sign_in("vigil_at_SAMEPREFzzzz", client=dash.browser("198.51.100.50"))
        assert refused.status_code == 429 and refused.headers["retry-after"].isdigit()
        assert dash.sign_in("vigil_at_OTHERPRE1234", client=dash.browser("198.51.100.51")).status_code == 401
        prefix_events = [e for e in dash.events("audit.dashboard_sign_in_failed") if e.data.get("prefix") == "vigil_at_SAMEPREF"]
        assert len(prefix_events) == 1


# ---- the cookie --------------------------------------------------------------------------------------
@pytest.mark.parametrize("base_url, secure", [("https://vigil.example.com", True), ("http://127.0.0.1:8000", False),
                                              ("http://localhost:8000", False), ("http://vigil.example.com", True),
                                              (None, False)])
def test_cookie_is_secure_unless_plain_http_on_loopback(db, base_url, secure):
    dash = Dash(db, **({"VIGIL_BASE_URL": base_url} if base_url else {}))
    _, secret = make_token(db)
    cookie = dash.sign_in(secret).headers["set-cookie"].lower()
    assert ("; secure" in cookie) is secure, cookie
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_unset_base_url_on_a_public_listen_address_gets_a_secure_cookie(db):
    dash = Dash(db, HOST="0.0.0.0")
    assert "; secure" in dash.client.get("/login").headers["set-cookie"].lower()


# ---- the access log ---------------------------------------------------------------------------------
def test_a_huge_query_string_records_only_known_capped_parameters(dash):
    _, secret = make_token(dash.db)
    assert dash.sign_in(secret).status_code == 303
    junk = "&".join(f"p{n}={'x' * 90}" for n in range(110))
    query = f"severity={'s' * 500}&{junk}&from=2025-01-01"
    assert len(query) > 10_000
    assert dash.client.get(f"/?{query}").status_code in (200, 400)
    (event,) = dash.events("audit.dashboard_access")
    assert event.data["params"] == {"severity": "s" * 64, "from": "2025-01-01"}
    assert event.data["other_parameters"] == 110 and event.data["route"] == "/"
    assert len(str(event.data)) < 600


def test_page_views_above_the_limit_become_one_summary_and_write_nothing(db):
    seed(db)
    dash = Dash(db, VIGIL_ACCESS_LOG_LIMIT="3", VIGIL_ACCESS_LOG_WINDOW_MINUTES="60")
    _, secret = make_token(db)
    start = clock.now().replace(minute=1, second=0, microsecond=0)
    with clock.frozen(start):
        assert dash.sign_in(secret).status_code == 303
        for path in ("/", "/risks", "/reviews"):
            assert dash.client.get(path).status_code == 200
        before = row_counts(db)
        for _ in range(5):
            assert dash.client.get("/exports").status_code == 200
        assert not changed(before, row_counts(db))  # above the limit: no row, only the viewer's count moves
    uses = dash.events("audit.dashboard_access")
    assert [e.data["path"] for e in uses] == ["/", "/risks", "/reviews"]
    assert uses[-1].data["limit_reached"]["limit"] == 3
    with clock.frozen(start + timedelta(hours=1)):
        assert dash.client.get("/risks").status_code == 200
    (summary,) = dash.events("audit.dashboard_access_summarised")
    assert summary.actor == "auditor:1" and summary.data["further_views"] == 5 and summary.data["recorded_views"] == 3
    assert dash.events("audit.dashboard_access")[-1].data["path"] == "/risks"


def test_the_count_above_the_limit_survives_a_restart_and_is_shared_by_every_process(db):
    """The views above the limit are counted in the database: another process (or this one after a
    restart) counts on from there, and the summary says how many came, whoever's view writes it."""
    seed(db)
    limited = {"VIGIL_ACCESS_LOG_LIMIT": "2", "VIGIL_ACCESS_LOG_WINDOW_MINUTES": "60"}
    first, second = Dash(db, **limited), Dash(db, **limited)
    _, secret = make_token(db, name="Auditor A")
    _, other = make_token(db, name="Auditor B")
    start = clock.now().replace(minute=1, second=0, microsecond=0)
    with clock.frozen(start):
        assert first.sign_in(secret).status_code == 303
        copy_cookies(first.client, second.client)  # the same browser, served by another process
        for dash in (first, second, first, second, first):
            assert dash.client.get("/risks").status_code == 200
    assert len(first.events("audit.dashboard_access")) == 2, "the limit holds across processes"
    restarted = Dash(db, **limited)
    with clock.frozen(start + timedelta(hours=1)):
        assert restarted.sign_in(other).status_code == 303
        assert restarted.client.get("/").status_code == 200  # someone else's view, after the window
    (summary,) = restarted.events("audit.dashboard_access_summarised")
    assert (summary.actor, summary.data["further_views"], summary.data["recorded_views"]) == ("auditor:1", 3, 2)
    assert summary.data["window_start"] == clock.iso(start.replace(minute=0))
    with clock.frozen(start + timedelta(hours=2)):  # summarised once, never again
        assert restarted.client.get("/").status_code == 200
    assert len(restarted.events("audit.dashboard_access_summarised")) == 1


def test_signing_out_writes_the_summary_and_does_not_renew_the_allowance(db):
    seed(db)
    dash = Dash(db, VIGIL_ACCESS_LOG_LIMIT="2", VIGIL_ACCESS_LOG_WINDOW_MINUTES="60")
    _, secret = make_token(db)
    start = clock.now().replace(minute=1, second=0, microsecond=0)
    with clock.frozen(start):
        assert dash.sign_in(secret).status_code == 303
        for _ in range(4):
            dash.client.get("/risks")
        dash.client.post("/logout", data={"csrf": csrf_of(dash.client, "/exports")})
        (summary,) = dash.events("audit.dashboard_access_summarised")
        assert summary.data["further_views"] == 3  # two over the limit, and the page the form came from
        assert dash.sign_in(secret).status_code == 303
        dash.client.get("/risks")
    assert len(dash.events("audit.dashboard_access")) == 2, "signing in again is no new allowance"


def test_get_requests_write_only_their_access_event(auditor_dash):
    dash = auditor_dash
    with dash.db.session() as s:
        token_before = s.get(AuditorToken, 1).model_dump()
        session_before = [row.model_dump() for row in s.exec(select(DashboardSession))]
    for path in ("/", "/incidents/INC-1", "/risks", "/exports/incidents.csv?from=2025-01-01&to=2025-12-31",
                 "/admin/tokens"):
        before = row_counts(dash.db)
        dash.client.get(path)
        assert changed(before, row_counts(dash.db)) == {"event": (before["event"], before["event"] + 1)}, path
    with dash.db.session() as s:
        assert s.get(AuditorToken, 1).model_dump() == token_before  # no per-request bookkeeping
        assert [row.model_dump() for row in s.exec(select(DashboardSession))] == session_before


@pytest.fixture
def auditor_dash(dash):
    _, secret = make_token(dash.db)
    assert dash.sign_in(secret).status_code == 303
    return dash


# ---- the permissions policy --------------------------------------------------------------------------
@pytest.fixture
def slack_dash(db, fake_slack):
    seed(db)

    def build(**settings):
        return Dash(db, SLACK_API_URL=fake_slack.base_url, **{**CLIENT, **settings})

    return build


def test_a_slack_user_the_policy_does_not_allow_is_told_who_may(slack_dash, fake_slack):
    dash = slack_dash(VIGIL_COMMANDERS="U0CMDR")
    before = row_counts(dash.db)
    refused = slack_sign_in(dash, fake_slack, "U0STRANGER")
    assert refused.status_code == 403, refused.text
    assert ("Only a dashboard viewer (U0VIEWER or U0OTHER), a commander (U0CMDR) or an admin (U0ADMIN) may use "
            "the dashboard.") in refused.text
    assert "&lt;@" not in refused.text
    assert not changed(before, row_counts(dash.db)) and dash.client.get("/").status_code == 303
    assert slack_sign_in(dash, fake_slack, "U0CMDR", code="c2").status_code == 303  # commanders may, by policy
    assert dash.client.get("/").status_code == 200


def test_a_permissions_override_narrows_who_may_use_the_dashboard(slack_dash, fake_slack):
    dash = slack_dash(VIGIL_PERMISSIONS="use_dashboard=admins")
    refused = slack_sign_in(dash, fake_slack, "U0VIEWER")
    assert refused.status_code == 403 and "Only an admin (U0ADMIN) may use the dashboard." in refused.text
    assert slack_sign_in(dash, fake_slack, "U0ADMIN", code="a").status_code == 303


def test_auditor_tokens_are_not_subject_to_the_slack_policy(slack_dash):
    dash = slack_dash(VIGIL_PERMISSIONS="use_dashboard=admins")
    _, secret = make_token(dash.db)
    assert dash.sign_in(secret).status_code == 303
    assert "INC-1" in dash.client.get("/").text
