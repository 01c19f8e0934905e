"""The dashboard: sign-in required everywhere, auditor tokens, filters, pages, downloads, escaping."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import timedelta

import pytest
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.auth import tokens
from vigil_ir.config import Settings
from vigil_ir.eventlog import Event
from vigil_ir.runtime import build_runtime
from vigil_ir.web.app import create_web_app
from vigil_ir.web.dashboard import filters as filters_module
from tests.dashboard_seed import HOSTILE, make_token, seed

PAGES = ["/", "/?severity=sev1", "/incidents/INC-1", "/risks", "/risks?as_of=2025-06-01", "/reviews", "/people", "/exports",
         "/admin/tokens"]
DOWNLOADS = ["/incidents/INC-1/timeline.json", "/incidents/INC-1/timeline.html", "/exports/incidents.csv?from=2025-01-01&to=2025-12-31",
             "/exports/risks.json", "/exports/reviews.csv?from=2025-01-01&to=2025-12-31",
             "/exports/bundle.zip?from=2025-01-01&to=2025-12-31"]


class Dash:
    """The real web app on SQLite/PostgreSQL without Slack credentials, behind Starlette's test client."""

    def __init__(self, db, **settings):
        values = {"DATABASE_URL": db.url, "VIGIL_SESSION_SECRET": "test-secret", **settings}
        self.db = db
        self.runtime = build_runtime(Settings(_env_file=None, **values), db)
        self.base = "https://testserver" if str(values.get("VIGIL_BASE_URL", "")).startswith("https") else "http://testserver"
        self.app = create_web_app(self.runtime, background_delivery=False)
        self.client = self.browser()

    def browser(self, address: str = "testclient"):
        """Another browser on the same server, connecting from `address`."""
        from starlette.testclient import TestClient

        return TestClient(self.app, base_url=self.base, follow_redirects=False, client=(address, 50000))

    def csrf(self, path: str = "/login", client=None) -> str:
        return re.search(r'name="csrf" value="([^"]+)"', (client or self.client).get(path).text).group(1)

    def sign_in(self, secret: str, next: str = "/", client=None):
        client = client or self.client
        return client.post("/login", data={"csrf": self.csrf(client=client), "token": secret, "next": next})

    def events(self, kind: str) -> list[Event]:
        with self.db.session() as s:
            return list(s.exec(select(Event).where(Event.stream == "audit", Event.kind == kind).order_by(Event.id)))


@pytest.fixture
def dash(db):
    seed(db)
    harness = Dash(db)
    yield harness
    harness.client.close()


@pytest.fixture
def auditor(dash):
    _, secret = make_token(dash.db)
    assert dash.sign_in(secret).status_code == 303
    return dash


# ---- access control ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PAGES + DOWNLOADS)
def test_anonymous_visitors_are_sent_to_sign_in_and_see_no_data(dash, path):
    response = dash.client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    assert "Checkout" not in response.text and "Vendor" not in response.text


def test_anonymous_redirect_remembers_the_page_and_a_forged_cookie_is_ignored(dash):
    assert dash.client.get("/risks?as_of=2025-06-01").headers["location"] == "/login?next=%2Frisks%3Fas_of%3D2025-06-01"
    dash.client.cookies.set("vigil_session", "eyJwcmluY2lwYWwiOiB7fX0=.forged.sig")
    assert dash.client.get("/").status_code == 303


def test_slack_endpoint_and_healthz_are_unchanged(dash):
    assert dash.client.post("/slack/events", content=b"x=1").status_code == 503
    assert dash.client.get("/slack/events").status_code == 405
    health = dash.client.get("/healthz")
    assert health.status_code == 200 and "set-cookie" not in health.headers


def test_login_page_without_slack_credentials_says_what_to_configure(dash):
    page = dash.client.get("/login")
    assert page.status_code == 200
    assert "SLACK_CLIENT_ID, SLACK_CLIENT_SECRET, VIGIL_BASE_URL" in page.text
    assert 'href="/login/slack' not in page.text
    assert dash.client.get("/login/slack").headers["location"] == "/login"


def test_valid_auditor_token_signs_in_and_every_use_is_logged(dash):
    token_id, secret = make_token(dash.db, name="Acme Audit LLP")
    response = dash.sign_in(secret, next="/risks")
    assert response.status_code == 303 and response.headers["location"] == "/risks"
    cookie = response.headers["set-cookie"]
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie.lower()
    assert dash.client.get("/risks").status_code == 200
    assert dash.client.get("/incidents/INC-1?x=1").status_code == 200
    signed_in = dash.events("audit.dashboard_signed_in")
    assert [(e.actor, e.data["token_id"], e.data["name"]) for e in signed_in] == [
        (f"auditor:{token_id}", token_id, "Acme Audit LLP")]
    uses = dash.events("audit.dashboard_access")
    assert [(e.data["route"], e.data["path"], e.data["params"]) for e in uses] == [
        ("/risks", "/risks", {}), ("/incidents/{key}", "/incidents/INC-1", {})]
    assert uses[1].data["other_parameters"] == 1 and "query" not in uses[1].data
    assert all(e.data["token_id"] == token_id and e.actor == f"auditor:{token_id}" for e in uses)
    created = dash.events("audit.token_created")
    assert created[-1].data == {"token_id": token_id, "name": "Acme Audit LLP",
                                "expires_at": created[-1].data["expires_at"]}


@pytest.mark.parametrize("kind, message", [("expired", "This auditor token expired on"),
                                           ("revoked", "This auditor token was revoked on"),
                                           ("unknown", "That token is not valid")])
def test_expired_revoked_and_unknown_tokens_are_refused_with_a_clear_message(dash, kind, message):
    _, secret = make_token(dash.db, days=-1 if kind == "expired" else 30, revoked=kind == "revoked")
    response = dash.sign_in(secret + ("x" if kind == "unknown" else ""))
    assert response.status_code == 401 and message in response.text
    assert dash.client.get("/").status_code == 303
    assert dash.events("audit.dashboard_signed_in") == []


def test_revoking_a_token_ends_its_open_session_at_the_next_request(auditor):
    with auditor.db.session() as s:
        tokens.revoke(s, token_id=1, actor="cli:admin")
    response = auditor.client.get("/")
    assert response.status_code == 303 and "reason=revoked" in response.headers["location"]
    login = auditor.client.get(response.headers["location"])
    assert "Your auditor token was revoked" in login.text
    assert auditor.client.get("/").status_code == 303  # the session was dropped
    assert [e.data["token_id"] for e in auditor.events("audit.token_revoked")] == [1]


def test_a_token_that_expires_during_a_session_is_refused(dash):
    _, secret = make_token(dash.db, days=0.25)  # six hours: within the 12-hour session
    assert dash.sign_in(secret).status_code == 303
    with clock.frozen(clock.now() + timedelta(hours=7)):
        response = dash.client.get("/risks")
    assert response.status_code == 303 and "reason=expired" in response.headers["location"]


def test_the_session_itself_ends_after_session_hours(auditor):
    with clock.frozen(clock.now() + timedelta(hours=12, minutes=1)):
        response = auditor.client.get("/risks")
    assert response.status_code == 303 and "reason=session_expired" in response.headers["location"]
    assert "Your session has expired" in auditor.client.get(response.headers["location"]).text


def test_sign_in_needs_the_form_csrf_token_and_never_redirects_off_site(dash):
    _, secret = make_token(dash.db)
    dash.client.get("/login")
    for guess in ("guess", "\x80", "é" * 43):  # any text a form can carry is refused, never a 500
        forged = dash.client.post("/login", data={"token": secret, "csrf": guess})
        assert forged.status_code == 400 and dash.client.get("/").status_code == 303
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        assert dash.sign_in(secret, next=target).headers["location"] == "/"


def test_sign_out_needs_the_csrf_token_and_ends_the_session(auditor):
    assert auditor.client.post("/logout", data={"csrf": "forged"}).headers["location"] == "/"
    assert auditor.client.get("/").status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', auditor.client.get("/").text).group(1)
    response = auditor.client.post("/logout", data={"csrf": csrf})
    assert response.headers["location"] == "/login?reason=signed_out"
    assert auditor.client.get("/").status_code == 303


def test_auditors_cannot_open_the_admin_token_page(auditor):
    assert auditor.client.get("/admin/tokens").status_code == 403


def test_pages_carry_a_strict_content_security_policy_and_no_store(auditor):
    response = auditor.client.get("/incidents/INC-1")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "script-src" not in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert "<script" not in response.text.replace("&lt;script", "")


def test_secure_cookie_when_the_base_url_is_https(db):
    harness = Dash(db, VIGIL_BASE_URL="https://vigil.example.com")
    _, secret = make_token(db)
    assert "secure" in harness.sign_in(secret).headers["set-cookie"]
    assert harness.client.get("/").status_code == 200


# ---- pages ---------------------------------------------------------------------------------------
def keys(html: str) -> list[str]:
    return re.findall(r'<a href="/incidents/(INC-\d+)">', html)


@pytest.mark.parametrize("query, expected", [
    ("", ["INC-3", "INC-2", "INC-1"]), ("severity=sev1", ["INC-2"]), ("type=other", ["INC-3"]),
    ("security=yes", ["INC-2"]), ("security=no", ["INC-3", "INC-1"]), ("status=resolved", ["INC-1"]),
    ("status=open", ["INC-3", "INC-2"]), ("from=2025-03-10&to=2025-05-01", ["INC-2", "INC-1"]),
    ("from=2025-03-11", ["INC-3", "INC-2"]), ("to=2025-03-10", ["INC-1"]),
    ("severity=sev2&type=availability&status=resolved&security=no", ["INC-1"]),
])
def test_incident_list_filters(auditor, query, expected):
    response = auditor.client.get(f"/?{query}")
    assert response.status_code == 200
    assert keys(response.text) == expected


def test_bad_filter_values_are_reported_and_ignored(auditor):
    response = auditor.client.get("/?from=2025-13-01&severity=sev9")
    assert response.status_code == 400
    assert "&#39;2025-13-01&#39; is not a date" in response.text and "&#39;sev9&#39; is not one of" in response.text
    assert keys(response.text) == ["INC-3", "INC-2", "INC-1"]


def test_incident_list_pages(auditor, monkeypatch):
    monkeypatch.setattr(filters_module, "PAGE_SIZE", 2)
    monkeypatch.setattr("vigil_ir.web.dashboard.incidents.PAGE_SIZE", 2)
    first = auditor.client.get("/?type=&severity=")
    assert keys(first.text) == ["INC-3", "INC-2"] and "Page 1 of 2" in first.text
    assert 'href="/?page=2"' in first.text
    assert keys(auditor.client.get("/?page=2").text) == ["INC-1"]


def test_incident_page_shows_facts_checklist_and_the_full_timeline(auditor):
    from vigil_ir.eventlog import events_for_stream

    with auditor.db.session() as s:
        events = events_for_stream(s, "incident:1")
    html = auditor.client.get("/incidents/INC-1").text
    assert len(re.findall(r'<tr class="timeline-row"', html)) == len(events) >= 7
    assert "Generic checklist" in html and "Write a summary" in html and "done" in html
    assert "Summary posted &lt;script&gt;" in html  # the step's evidence, escaped
    assert "Rolled back &lt;script&gt;" in html  # a note on the timeline
    assert "Acknowledged" in html and "min to resolve (from detection)" in html
    assert "Chain verifies: <strong class=\"ok\">yes</strong>" in html
    assert auditor.client.get("/incidents/INC-99").status_code == 404


def test_user_text_is_escaped_on_every_page(auditor):
    for path in ("/", "/incidents/INC-1", "/risks", "/exports?from=2025-01-01&to=2025-12-31"):
        html = auditor.client.get(path).text
        assert HOSTILE not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in html, path


def test_the_people_page_escapes_what_slack_says_about_a_person(auditor):
    from vigil_ir.people import Profile, record_profile

    with auditor.db.session() as s:
        record_profile(s, user_id="U0HOSTILE", profile=Profile(real_name=HOSTILE, title=HOSTILE, email="h@example.com"))
    html = auditor.client.get("/people").text
    assert HOSTILE not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt; (U0HOSTILE)" in html


def test_risk_register_with_both_heat_maps_and_as_of(auditor):
    live = auditor.client.get("/risks")
    assert live.status_code == 200
    assert "RISK-1" in live.text and "Inherent risk" in live.text and "Residual risk" in live.text
    assert live.text.count("<svg") == 1 and "20 critical" in live.text and "8 medium" in live.text
    before = auditor.client.get("/risks?as_of=2025-01-15")
    assert "RISK-1" not in before.text and "No risks were registered by then" in before.text
    assert "RISK-1" in auditor.client.get("/risks?as_of=2025-02-01").text
    future = auditor.client.get("/risks?as_of=2999-01-01")
    assert future.status_code == 400 and "is in the future" in future.text


def test_review_log_lists_reviews_due_in_the_period(auditor):
    page = auditor.client.get("/reviews?from=2025-01-01&to=2025-12-31")
    assert page.status_code == 200 and 'class="review-row"' in page.text and "RISK-1" in page.text
    assert auditor.client.get("/reviews?from=2025-05-01&to=2025-01-01").status_code == 400


# ---- downloads -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path, content_type, starts", [
    ("/incidents/INC-1/timeline.json", "application/json", b"{"),
    ("/incidents/INC-1/timeline.csv", "text/csv; charset=utf-8", b"\xef\xbb\xbfseq,id,"),
    ("/incidents/INC-1/timeline.md", "text/markdown; charset=utf-8", b"# INC-1"),
    ("/incidents/INC-1/timeline.html", "text/html; charset=utf-8", b"<!DOCTYPE html>"),
    ("/exports/incidents.csv?from=2025-01-01&to=2025-12-31", "text/csv; charset=utf-8", b"\xef\xbb\xbfkey,title"),
    ("/exports/incidents.json?from=2025-01-01&to=2025-12-31", "application/json", b"["),
    ("/exports/risks.csv", "text/csv; charset=utf-8", b"\xef\xbb\xbfas_of,risk_ref"),
    ("/exports/risks.json?as_of=2025-06-30", "application/json", b"["),
    ("/exports/reviews.csv?from=2025-01-01&to=2025-12-31", "text/csv; charset=utf-8", b"\xef\xbb\xbfreview_ref"),
    ("/exports/reviews.json?from=2025-01-01&to=2025-12-31", "application/json", b"["),
    ("/exports/actions.csv?from=2025-01-01&to=2025-12-31", "text/csv; charset=utf-8", b"\xef\xbb\xbfaction_ref"),
    ("/exports/acceptances.csv?from=2025-01-01&to=2025-12-31", "text/csv; charset=utf-8",
     b"\xef\xbb\xbfacceptance_ref"),
    ("/exports/acceptances.json?from=2025-01-01&to=2025-12-31", "application/json", b"["),
    ("/exports/risk-assessment.html?from=2025-01-01&to=2025-12-31", "text/html; charset=utf-8", b"<!DOCTYPE html>"),
    ("/exports/risk-assessment.md?from=2025-01-01&to=2025-12-31", "text/markdown; charset=utf-8",
     b"# Periodic risk assessment"),
])
def test_downloads_have_the_right_content_type_and_are_attachments(auditor, path, content_type, starts):
    response = auditor.client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    assert response.content.startswith(starts)


def test_downloads_match_the_cli_exports(auditor):
    timeline = json.loads(auditor.client.get("/incidents/INC-1/timeline.json").text)
    assert timeline["incident"]["key"] == "INC-1" and timeline["integrity"]["verified"] is True
    population = json.loads(auditor.client.get("/exports/incidents.json?from=2025-03-01&to=2025-05-31").text)
    assert [row["key"] for row in population] == ["INC-1", "INC-2"]
    register = json.loads(auditor.client.get("/exports/risks.json?as_of=2025-01-31").text)
    assert register == []


@pytest.mark.parametrize("path", ["/exports/incidents.csv", "/exports/incidents.csv?from=2025-01-01",
                                  "/exports/incidents.xml?from=2025-01-01&to=2025-02-01",
                                  "/exports/risks.csv?as_of=nope", "/exports/reviews.json?from=x&to=y",
                                  "/exports/acceptances.xml?from=2025-01-01&to=2025-02-01",
                                  "/exports/risk-assessment.pdf?from=2025-01-01&to=2025-02-01",
                                  "/exports/risk-assessment.md?from=2025-02-01&to=2025-01-01"])
def test_bad_download_requests_are_400(auditor, path):
    assert auditor.client.get(path).status_code == 400


def test_exports_page_links_every_export(auditor):
    html = auditor.client.get("/exports?from=2025-01-01&to=2025-12-31").text
    for link in ("/exports/incidents.csv?from=2025-01-01&amp;to=2025-12-31", "/exports/incidents.json?",
                 "/exports/risks.csv", "/exports/risks.json", "/exports/reviews.csv?from=2025-01-01",
                 "/exports/reviews.json?", "/exports/actions.csv?from=2025-01-01",
                 "/exports/acceptances.json?from=2025-01-01", "/exports/risk-assessment.html?from=2025-01-01",
                 "/incidents/INC-1/timeline.json", "/incidents/INC-1/timeline.csv",
                 "/incidents/INC-1/timeline.md", "/incidents/INC-1/timeline.html"):
        assert link in html, link
    assert "evidence.zip" in html


def test_bundle_download_is_a_zip_and_its_export_is_recorded(auditor):
    response = auditor.client.get("/exports/bundle.zip?from=2025-01-01&to=2025-12-31")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert 'filename="evidence-2025-01-01-2025-12-31.zip"' in response.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
        manifest = json.loads(bundle.read("manifest.json"))
    assert manifest["generated_by"] == "auditor:1"
    assert [e.actor for e in auditor.events("audit.bundle_exported")] == ["auditor:1"]


def test_empty_values_show_a_dash_not_none(auditor):
    for path in ("/reviews?from=2025-01-01&to=2025-12-31", "/incidents/INC-2", "/risks"):
        assert ">None<" not in auditor.client.get(path).text, path
