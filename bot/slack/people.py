"""Slack's `users.info` answer as a directory profile, and the outbox handler that asks for it."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

from vigil_ir.db import Database
from vigil_ir.people import Profile, record_not_found, record_profile

# Answers that say Slack has no such user for us: recorded, not retried.
NO_SUCH_USER = {"user_not_found", "user_not_visible"}


def _text(value) -> str | None:
    value = (value or "").strip() if isinstance(value, str) else None
    return value or None


def profile_from_slack(user: dict) -> Profile:
    """users.info's `user` object. The e-mail needs the users:read.email scope; without it Slack
    leaves the field out and the directory holds none."""
    profile = user.get("profile") or {}
    return Profile(name=_text(user.get("name")),
                   real_name=_text(profile.get("real_name")) or _text(user.get("real_name")),
                   display_name=_text(profile.get("display_name")), email=_text(profile.get("email")),
                   title=_text(profile.get("title")), deactivated=bool(user.get("deleted")),
                   is_bot=bool(user.get("is_bot")), tz=_text(user.get("tz")))


def look_up(database: Database, client, user_id: str) -> dict:
    """The `person.lookup` outbox item: ask Slack, record the answer (and its events)."""
    try:
        user = client.users_info(user=user_id)["user"]
    except SlackApiError as failure:
        error = failure.response.get("error")
        if error not in NO_SUCH_USER:
            raise  # retried by the outbox
        with database.session() as session:
            record_not_found(session, user_id=user_id, error=error)
        return {"user_id": user_id, "error": error}
    with database.session() as session:
        event = record_profile(session, user_id=user_id, profile=profile_from_slack(user))
    return {"user_id": user_id, "event": event.kind if event else None}
