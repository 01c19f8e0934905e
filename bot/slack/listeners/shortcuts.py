"""Message shortcuts: add a message to the incident timeline; correct a note."""

from __future__ import annotations

from vigil_ir.incidents import queries, service
from vigil_ir.incidents.service import IncidentError
from vigil_ir.keys import bounded_number
from vigil_ir.slack import blocks, notify
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.listeners.incident_command import open_view


def permalink(body: dict, channel: str, ts: str) -> str | None:
    team = body.get("team")
    domain = team.get("domain") if isinstance(team, dict) else None
    if not isinstance(domain, str) or not (domain.isascii() and domain.replace("-", "").isalnum()):
        return None
    return f"https://{domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"


def note_id_of(message: dict) -> int | None:
    """Vigil posts each note with block_id `note:<event id>`."""
    blocks = message.get("blocks")
    for block in blocks if isinstance(blocks, list) else []:
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if isinstance(block_id, str) and block_id.startswith("note:") and block_id[5:].isascii() \
                and block_id[5:].isdigit():
            return bounded_number(block_id[5:])
    return None


def text_of(message: dict) -> str:
    return message.get("text") if isinstance(message.get("text"), str) else ""


def author_of(message: dict) -> str | None:
    author = message.get("user") or message.get("bot_id")
    return author if isinstance(author, str) else None


def register(app, deps: Deps) -> None:
    @app.shortcut("add_to_timeline")
    def add_to_timeline(ack, body):
        ack()
        channel, message = body["channel"]["id"], body["message"]
        actor, response_url = body["user"]["id"], body["response_url"]
        with deps.database.session() as session:
            incident = queries.by_channel(session, channel)
            if incident is None:
                notify.respond_later(session, response_url, "This channel is not an incident channel, so there is "
                                     "no timeline to add to. Use it inside an incident's channel.")
            else:
                try:
                    event = service.record_message(
                        session, incident=incident, actor=actor, channel=channel, ts=message["ts"],
                        text=text_of(message), author=author_of(message),
                        permalink=permalink(body, channel, message["ts"]), via="shortcut")
                    reply = (f"Added to the {incident.key} timeline." if event else
                             f"That message is already on the {incident.key} timeline.")
                except IncidentError as problem:
                    session.rollback()
                    reply = str(problem)
                notify.respond_later(session, response_url, reply)
        deps.wake_sender()

    @app.shortcut("correct_note")
    def correct_note(ack, body, client):
        ack()
        from vigil_ir.permissions import Refused
        from vigil_ir.slack.authz import refusal
        from vigil_ir.slack.listeners.incident_command import require_correction

        channel, message = body["channel"]["id"], body["message"]
        who = deps.permissions.actor(body["user"]["id"])  # may ask Slack: before the transaction
        with deps.database.session() as session:
            incident = queries.by_channel(session, channel)
            note_id = note_id_of(message)
            original = session.get(service.Event, note_id) if note_id else None
            if incident is None or original is None or original.stream != incident.stream:
                notify.respond_later(session, body["response_url"], "Use *Correct this note* on a note Vigil "
                                     "posted in an incident channel (`/incident note …`).")
                problem = True
            else:
                try:  # the form would be refused on submit: say so now, and who may instead
                    require_correction(deps, session, incident, who, note_id)
                    problem = False
                    view = blocks.correct_note_modal(incident, note_id, original.data.get("text", ""))
                except Refused as refused:
                    notify.respond_later(session, body["response_url"], refusal(refused.decision))
                    problem = True
        if problem:
            deps.wake_sender()
            return
        failure = open_view(client, body["trigger_id"], view)
        if failure:
            with deps.database.session() as session:
                notify.respond_later(session, body["response_url"], failure["text"])
            deps.wake_sender()
