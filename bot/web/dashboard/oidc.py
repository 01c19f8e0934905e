"""Sign in with Slack (OpenID Connect, authorization code flow).

/login/slack sends the browser to Slack's authorize page with a fresh `state` and `nonce` kept in
the session; Slack sends it back to /login/slack/callback with a code, which we exchange at
`openid.connect.token` (slack_sdk, base URL from SLACK_API_URL so tests can fake it).

The id_token's signature is not checked: it comes straight from Slack's token endpoint over TLS,
in exchange for our client secret, which OpenID Connect Core §3.1.3.7 (6) allows in place of a
signature check. Its issuer, audience, expiry and nonce are checked.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from vigil_ir.config import Settings

AUTHORIZE_URL = "https://slack.com/openid/connect/authorize"
ISSUER = "https://slack.com"
SCOPE = "openid profile email"
USER_CLAIM, TEAM_CLAIM = "https://slack.com/user_id", "https://slack.com/team_id"
LEEWAY_SECONDS = 120


class SignInFailed(Exception):
    """Slack did not vouch for this sign-in; the message is for the person signing in."""


@dataclass(frozen=True)
class SlackIdentity:
    user_id: str
    team_id: str | None
    name: str
    email: str | None


def redirect_uri(settings: Settings) -> str:
    return settings.base_url.rstrip("/") + "/login/slack/callback"


def authorize_url(settings: Settings, *, state: str, nonce: str, team: str | None = None) -> str:
    params = {"response_type": "code", "scope": SCOPE, "client_id": settings.slack_client_id, "state": state,
              "nonce": nonce, "redirect_uri": redirect_uri(settings)}
    if team:  # skips Slack's workspace picker
        params["team"] = team
    return f"{AUTHORIZE_URL}?{urlencode(params)}"


def _claims(id_token: str) -> dict:
    try:
        payload = id_token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise SignInFailed("Slack's answer could not be read (malformed id_token); try again.") from exc


def check_claims(claims: dict, settings: Settings, nonce: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    if claims.get("iss") != ISSUER:
        raise SignInFailed("The sign-in did not come from Slack (wrong issuer).")
    audience = claims.get("aud")
    if settings.slack_client_id not in (audience if isinstance(audience, list) else [audience]):
        raise SignInFailed("The sign-in was meant for another Slack app (wrong audience).")
    if not isinstance(claims.get("nonce"), str) or claims["nonce"] != nonce:
        raise SignInFailed("The sign-in could not be matched to this browser (nonce); start again.")
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < now - LEEWAY_SECONDS:
        raise SignInFailed("The sign-in expired before it reached Vigil; start again.")


def exchange(settings: Settings, *, code: str, nonce: str) -> SlackIdentity:
    """The Slack user behind `code`; SignInFailed with a readable reason otherwise."""
    client = WebClient(base_url=settings.slack_api_url, timeout=settings.slack_timeout_seconds)
    try:
        answer = client.openid_connect_token(client_id=settings.slack_client_id,
                                             client_secret=settings.slack_client_secret, code=code,
                                             redirect_uri=redirect_uri(settings))
        id_token = answer.get("id_token")
        if not id_token:
            raise SignInFailed("Slack did not return an id_token; check the app's OpenID scopes.")
        claims = _claims(id_token)
        check_claims(claims, settings, nonce)
    except SlackApiError as exc:
        raise SignInFailed(f"Slack refused the sign-in ({exc.response.get('error')}); start again.") from exc
    except (SlackClientError, OSError) as exc:
        raise SignInFailed(f"Could not reach Slack to finish signing in ({type(exc).__name__}); try again.") from exc
    user = claims.get(USER_CLAIM)
    if not user:
        raise SignInFailed("Slack did not say which user signed in.")
    return SlackIdentity(user_id=user, team_id=claims.get(TEAM_CLAIM), name=claims.get("name") or user,
                         email=claims.get("email"))
