"""Witnesses (vigil_ir.eventlog.witness) in the audit channel: posting one and recording that it
was posted, and reading every one back for `vigil verify --witness`.

The post carries the witness line `vigil verify --witness` reads back; the publication is an
`audit.witness_published` event with the message's ts and permalink, so the bundle and the log say
where each digest was witnessed. A retry after a lost answer finds the marked post instead of
posting twice (Deliverer._post_once), and the event is recorded once.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil_ir.eventlog import append
from vigil_ir.eventlog.witness import Witness
from vigil_ir.idempotency import first_time
from vigil_ir.slack.escape import esc

ACTOR = "system:worker"


def text(witness: Witness) -> str:
    return (f":closed_lock_with_key: Vigil event-log witness: the {witness.events} events in {witness.streams} "
            f"streams recorded up to {witness.cutoff:%Y-%m-%d %H:%M} UTC have heads digest `{esc(witness.digest)}`. "
            "`vigil verify --witness` checks every such post against the log.\n"
            f"`{witness.line()}`")


def deliver(deliverer, payload: dict) -> dict:
    witness = Witness.from_payload(payload)
    channel, key = payload["channel"], payload["key"]
    ts = deliverer._post_once(key, channel, text=text(witness))
    link = deliverer._call("chat_getPermalink", channel=channel, message_ts=ts).get("permalink")
    with deliverer.database.session() as session:
        if first_time(session, f"witness-recorded:{key}"):
            append(session, stream="audit", kind="audit.witness_published", actor=ACTOR,
                   data={**witness.payload(), "channel": channel, "ts": ts, "permalink": link})
    return {"ts": ts, "permalink": link}



@dataclass(frozen=True)
class Posted:
    witness: Witness
    ts: str


def read_all(client, channel: str) -> list[Posted]:
    """Every witness posted in `channel`, oldest first (conversations.history, paged)."""
    found, cursor = [], None
    while True:
        page = client.conversations_history(channel=channel, limit=200, cursor=cursor)
        for message in page.get("messages", []):
            witness = Witness.parse(message.get("text", ""))
            if witness is not None:
                found.append((message["ts"], witness))
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    return [Posted(witness, ts) for ts, witness in sorted(found, key=lambda pair: float(pair[0]))]


def permalink(client, channel: str, ts: str) -> str | None:
    try:
        return client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink")
    except Exception:  # noqa: BLE001 - the ts alone still names the post
        return None
