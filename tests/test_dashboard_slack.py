"""Sign in with Slack (OpenID Connect) against the fake Slack API: viewers, admins, refusals."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.dashboard_seed import seed
from tests.test_dashboard import Dash

CLIENT = {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "s3cret", "VIGIL_BASE_URL": "https://vigil.example.com",
          "VIGIL_ADMINS": "U0ADMIN", "VIGIL_DASHBOARD_VIEWERS": "U0VIEWER, U0OTHER"}


@pytest.fixture
def slack_dash(db, fake_slack):
    seed(db)

    def build(**settings):
        return Dash(db, SLACK_API_URL=fake_slack.base_url, **{**CLIENT, **settings})

    return build


def start(dash, next_path: str | None = None) -> dict[str, str]:
    """Follow /login/slack to Slack's authorize URL and return its query parameters."""
    response = dash.client.get("/login/slack" + (f"?next={next_path}" if next_path else ""))
    assert response.status_code == 303
    url = urlsplit(response.headers["location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://slack.com/openid/connect/authorize"
    return {key: values[0] for key, values in parse_qs(url.query).items()}


def sign_in(dash, fake, user_id, *, team_id="T0FAKE", next_path=None, code="code-1"):
    params = start(dash, next_path)
    fake.add_openid_code(code, user_id=user_id, nonce=params["nonce"], team_id=team_id, name=f"Name of {user_id}")
    return dash.client.get(f"/login/slack/callback?code={code}&state={params['state']}")


def test_login_page_offers_slack_when_configured(slack_dash):
    page = slack_dash().client.get("/login?next=/risks").text
    assert 'href="/login/slack?next=%2Frisks"' in page and "SLACK_CLIENT_ID" not in page


def test_authorize_request_carries_scope_state_nonce_and_redirect(slack_dash):
    params = start(slack_dash())
    assert params["scope"] == "openid profile email" and params["response_type"] == "code"
    assert params["client_id"] == "1.2"
    assert params["redirect_uri"] == "https://vigil.example.com/login/slack/callback"
    assert len(params["state"]) >= 24 and len(params["nonce"]) >= 24 and params["state"] != params["nonce"]


def test_listed_viewer_signs_in_and_reads_pages(slack_dash, fake_slack):
    dash = slack_dash()
    response = sign_in(dash, fake_slack, "U0VIEWER", next_path="/risks")
    assert response.status_code == 303 and response.headers["location"] == "/risks"
    assert "secure" in response.headers["set-cookie"] and "httponly" in response.headers["set-cookie"]
    page = dash.client.get("/risks")
    assert page.status_code == 200 and "Name of U0VIEWER (U0VIEWER) · viewer" in page.text
    assert dash.client.get("/admin/tokens").status_code == 403
    (call,) = fake_slack.calls_to("openid.connect.token")
    assert call.headers["authorization"].startswith("Basic ")  # client id and secret, never in the URL
    assert call.params["code"] == "code-1"
    assert call.params["redirect_uri"] == "https://vigil.example.com/login/slack/callback"
    (event,) = dash.events("audit.dashboard_signed_in")
    assert event.actor == "U0VIEWER" and event.data["method"] == "slack" and event.data["role"] == "viewer"


def test_admin_sees_the_auditor_token_page(slack_dash, fake_slack):
    from tests.dashboard_seed import make_token

    dash = slack_dash()
    make_token(dash.db, name="Acme <Audit> LLP")
    assert sign_in(dash, fake_slack, "U0ADMIN").status_code == 303
    page = dash.client.get("/admin/tokens")
    assert page.status_code == 200 and "Acme &lt;Audit&gt; LLP" in page.text and "active" in page.text
    assert 'href="/admin/tokens"' in dash.client.get("/").text


def test_a_slack_user_not_listed_is_refused(slack_dash, fake_slack):
    dash = slack_dash()
    response = sign_in(dash, fake_slack, "U0STRANGER")
    assert response.status_code == 403
    assert "U0STRANGER" in response.text and "VIGIL_DASHBOARD_VIEWERS" in response.text
    assert dash.client.get("/").status_code == 303
    assert dash.events("audit.dashboard_signed_in") == []


def test_workspace_members_may_sign_in_when_allowed(slack_dash, fake_slack):
    dash = slack_dash(VIGIL_DASHBOARD_ALLOW_WORKSPACE="true", SLACK_TEAM_ID="T0FAKE")
    assert start(dash)["team"] == "T0FAKE"
    assert sign_in(dash, fake_slack, "U0MEMBER", code="a").status_code == 303
    assert dash.client.get("/").status_code == 200
    other = slack_dash(VIGIL_DASHBOARD_ALLOW_WORKSPACE="true", SLACK_TEAM_ID="T0FAKE")
    assert sign_in(other, fake_slack, "U0GUEST", team_id="T0ELSEWHERE", code="b").status_code == 403


def test_workspace_team_defaults_to_the_bot_tokens_team(slack_dash, fake_slack):
    dash = slack_dash(VIGIL_DASHBOARD_ALLOW_WORKSPACE="true", SLACK_BOT_TOKEN="xoxb-test",
                      SLACK_SIGNING_SECRET="x")
    assert sign_in(dash, fake_slack, "U0MEMBER").status_code == 303  # auth.test says team T0FAKE
    assert dash.client.get("/exports").status_code == 200
    assert len(fake_slack.calls_to("auth.test")) >= 1


def test_a_viewer_removed_from_the_settings_is_signed_out(slack_dash, fake_slack):
    dash = slack_dash()
    sign_in(dash, fake_slack, "U0OTHER")
    assert dash.client.get("/").status_code == 200
    later = slack_dash(VIGIL_DASHBOARD_VIEWERS="U0VIEWER")  # same session secret, new settings
    later.client.cookies = dash.client.cookies
    response = later.client.get("/")
    assert response.status_code == 303 and "reason=not_allowed" in response.headers["location"]


@pytest.mark.parametrize("tamper, status, message", [
    ("state", 400, "stale or was not started here"),
    ("unicode state", 400, "stale or was not started here"),  # compared as bytes: not a TypeError and a 500
    ("nonce", 401, "could not be matched to this browser"),
    ("code", 401, "Slack refused the sign-in (invalid_code)"),
    ("audience", 401, "meant for another Slack app"),
    ("expired", 401, "expired before it reached Vigil"),
    ("denied", 401, "Slack did not sign you in (access_denied)"),
])
def test_bad_callbacks_are_refused(slack_dash, fake_slack, tamper, status, message):
    dash = slack_dash()
    params = start(dash)
    claims = {"aud": "9.9"} if tamper == "audience" else {"exp": 1000} if tamper == "expired" else {}
    nonce = "other" if tamper == "nonce" else params["nonce"]
    fake_slack.add_openid_code("good", user_id="U0VIEWER", nonce=nonce, **claims)
    query = {"code": "wrong" if tamper == "code" else "good",
             "state": {"state": "forged", "unicode state": "é" + params["state"]}.get(tamper, params["state"])}
    if tamper == "denied":
        query = {"error": "access_denied", "state": params["state"]}
    response = dash.client.get("/login/slack/callback", params=query)
    assert response.status_code == status and message in response.text
    assert dash.client.get("/").status_code == 303


def test_a_callback_cannot_be_replayed(slack_dash, fake_slack):
    dash = slack_dash()
    params = start(dash)
    fake_slack.add_openid_code("c", user_id="U0VIEWER", nonce=params["nonce"])
    url = f"/login/slack/callback?code=c&state={params['state']}"
    assert dash.client.get(url).status_code == 303
    dash.client.cookies.clear()
    assert dash.client.get(url).status_code == 400


def test_an_unreachable_workspace_lookup_refuses_members_but_not_listed_users(slack_dash, fake_slack):
    fake_slack.fail_always("auth.test", status=500)
    dash = slack_dash(VIGIL_DASHBOARD_ALLOW_WORKSPACE="true", SLACK_BOT_TOKEN="xoxb-test", SLACK_SIGNING_SECRET="x")
    assert sign_in(dash, fake_slack, "U0MEMBER", code="a").status_code == 403
    assert sign_in(dash, fake_slack, "U0MEMBER", code="b").status_code == 403
    assert len(fake_slack.calls_to("auth.test")) == 1  # not asked again for a minute
    assert sign_in(dash, fake_slack, "U0VIEWER", code="c").status_code == 303


def test_slack_errors_at_the_token_endpoint_are_explained(slack_dash, fake_slack):
    fake_slack.fail_always("openid.connect.token", status=500)
    response = sign_in(slack_dash(), fake_slack, "U0VIEWER")
    assert response.status_code == 401 and "Slack refused the sign-in" in response.text
