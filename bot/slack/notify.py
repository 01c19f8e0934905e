"""Queue the Slack side of a change in the same transaction as the change (the outbox).

Kinds handled by bot/slack/delivery.py:
- `incident.setup`: create the channel, invite the declarer, post and pin the summary, announce.
- `incident.refresh`: re-render the pinned summary and the feed announcement (coalesced).
- `channel.post`: post a message in the incident channel (optionally also in the feed).
- `incident.invite`: invite people to the incident channel (a private incident's new members).
- `incident.capture_message`: fetch a pinned message and put it on the timeline.
- `respond`: an ephemeral reply through a response_url.
- `home.publish`: render a user's App Home tab.
- `slack.post`: a plain message to a channel id, or to a user id (a DM from the app).
- `playbook.checklist`: post or update a playbook run's checklist message, on a chosen page (coalesced).
- `playbook.suggest`: offer the playbooks that apply to a new incident, with Attach buttons.
- `pir.document`: render the post-incident review document and post it to the channel as a file.
"""

from __future__ import annotations

from sqlmodel import Session

from vigil_ir.incidents.models import Incident
from vigil_ir.outbox.service import enqueue
from vigil_ir.slack.blocks import private_feed_text, with_banner


def setup_incident(session: Session, incident: Incident) -> None:
    enqueue(session, kind="incident.setup", subject=incident.stream, payload={"incident_id": incident.id},
            dedupe_key=f"{incident.stream}:setup")


def refresh_incident(session: Session, incident: Incident) -> None:
    enqueue(session, kind="incident.refresh", subject=incident.stream,
            payload={"incident_id": incident.id}, coalesce=True)


def post_in_channel(session: Session, incident: Incident, text: str, *, block_id: str | None = None,
                    also_feed: bool = False, dedupe_key: str | None = None, buttons: list[dict] | None = None,
                    refresh: bool = True) -> bool:
    """Post `text` (already-escaped mrkdwn) in the incident channel and, when the change shows in
    it (`refresh`), re-render the pinned summary. An exercise's post carries the exercise banner.

    `buttons`: [{action_id, text, value}]. With `dedupe_key`, at most one post ever carries that
    key; False if it was already queued.
    """
    payload = {"incident_id": incident.id, "text": with_banner(incident, text), "block_id": block_id,
               "also_feed": also_feed,
               "buttons": buttons or []}
    if also_feed and incident.private:  # the feed is told the state as of now, never the text
        payload["feed_text"] = private_feed_text(incident, f"is {incident.status}")
    item = enqueue(session, kind="channel.post", subject=incident.stream, dedupe_key=dedupe_key, payload=payload)
    if item is None:
        return False
    if refresh:
        refresh_incident(session, incident)
    return True


def invite_to_channel(session: Session, incident: Incident, users: list[str]) -> None:
    """Invite people to the incident channel (once set up); their access grant is already recorded."""
    enqueue(session, kind="incident.invite", subject=incident.stream, payload={"incident_id": incident.id,
                                                                            "users": list(users)})


def remove_from_channel(session: Session, incident: Incident, users: list[str]) -> None:
    """Remove people from the incident channel; their access was already revoked (recorded)."""
    enqueue(session, kind="incident.remove", subject=incident.stream, payload={"incident_id": incident.id,
                                                                            "users": list(users)})


def capture_message(session: Session, incident: Incident, *, channel: str, ts: str, actor: str, via: str) -> None:
    enqueue(session, kind="incident.capture_message", subject=incident.stream,
            payload={"incident_id": incident.id, "channel": channel, "ts": ts, "actor": actor, "via": via},
            dedupe_key=f"capture:{channel}:{ts}")


def direct_message(session: Session, incident: Incident, user: str, text: str, *, blocks: list[dict] | None = None,
                   dedupe_key: str | None = None) -> None:
    """A DM about the incident (an exercise's with the banner, as text and as the first block)."""
    from vigil_ir.slack.blocks import banner_blocks

    payload = {"channel": user, "text": with_banner(incident, text)}
    if blocks:
        payload["blocks"] = banner_blocks(incident) + blocks
    enqueue(session, kind="slack.post", subject=incident.stream, dedupe_key=dedupe_key, payload=payload)


def respond_later(session: Session, response_url: str, text: str, *, subject: str = "respond",
                  blocks: list[dict] | None = None) -> None:
    if not response_url:  # blanked: not on Slack's hooks host (vigil_ir.slack.hooks)
        return
    payload = {"response_url": response_url, "text": text, **({"blocks": blocks} if blocks else {})}
    enqueue(session, kind="respond", subject=subject, payload=payload)


def publish_home(session: Session, user_id: str) -> None:
    enqueue(session, kind="home.publish", subject=f"home:{user_id}", payload={"user_id": user_id}, coalesce=True)


def refresh_checklist(session: Session, run, *, page: int | None = None, show_step: int | None = None) -> None:
    """Post the run's checklist, or update it in place once posted.

    Which page a long checklist shows: `page`, else the page holding step `show_step` (the one just
    acted on), else the page it shows now.
    """
    wish = {"page": page} if page is not None else {"show_step": show_step} if show_step is not None else {}
    if wish:
        wish = {"page": None, "show_step": None, **wish}  # replaces an older wish in a waiting item
    enqueue(session, kind="playbook.checklist", subject=f"playbook_run:{run.id}", payload={"run_id": run.id, **wish},
            coalesce=True, merge=bool(wish))


def suggest_playbooks(session: Session, incident: Incident) -> None:
    enqueue(session, kind="playbook.suggest", subject=incident.stream, payload={"incident_id": incident.id},
            dedupe_key=f"{incident.stream}:suggest")


def pir_document(session: Session, incident: Incident) -> None:
    enqueue(session, kind="pir.document", subject=incident.stream, payload={"incident_id": incident.id},
            dedupe_key=f"{incident.stream}:pir-document")
