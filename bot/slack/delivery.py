"""Carry out outbox items against Slack's Web API.

Each handler re-reads the current state, so a late or repeated delivery renders what is true
now. Results (channel id, message ts) are committed right after the call that produced them,
which leaves one narrow window: a crash between Slack's answer and that commit repeats the call
on retry (Slack has no idempotency key): a second channel with a `-2` suffix, or a second copy
of a message. Everything before that point is skipped on retry because its result is stored.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.config import Settings
from bot.db import Database
from bot.eventlog import append
from bot.followup import pir_document
from bot.incidents import queries, service
from bot.incidents.models import Incident
from bot.playbooks import runner
from bot.playbooks.loader import suggest
from bot.playbooks.models import PlaybookRun
from bot.slack import blocks, checklist
from bot.slack.home import home_view

log = logging.getLogger(__name__)
HARMLESS = {"already_in_channel", "already_pinned", "cant_invite_self", "already_reacted"}


class NotReady(Exception):
    """The item depends on another that has not been delivered yet (e.g. the channel)."""


def channel_slug(title: str, limit: int) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title).strip("-")
    return slug[:limit].rstrip("-") or "incident"


def channel_names(incident: Incident):
    """inc-<n>-<slug>, then -2, -3… when the name is taken (Slack names: ≤ 80 chars, lower case)."""
    base = f"inc-{incident.number}-{channel_slug(incident.title, 60)}"
    yield base
    for suffix in range(2, 50):
        yield f"{base}-{suffix}"


class Deliverer:
    def __init__(self, database: Database, settings: Settings, client: WebClient, library: dict | None = None):
        self.database, self.settings, self.client = database, settings, client
        self.library = library or {}
        self.handlers = {"incident.setup": self.setup, "incident.refresh": self.refresh,
                         "channel.post": self.channel_post, "incident.capture_message": self.capture_message,
                         "respond": self.respond, "home.publish": self.home_publish,
                         "slack.post": self.post, "playbook.checklist": self.checklist,
                         "playbook.suggest": self.suggest, "pir.document": self.pir_document}

    def __call__(self, kind: str, payload: dict) -> dict:
        return self.handlers[kind](payload) or {}

    def _incident(self, payload: dict) -> Incident:
        with self.database.session() as session:
            incident = queries.by_id(session, payload["incident_id"])
        if incident is None:
            raise LookupError(f"incident id {payload['incident_id']} not found")
        return incident

    def _call(self, method: str, **params):
        try:
            return getattr(self.client, method)(**params)
        except SlackApiError as failure:
            if failure.response.get("error") in HARMLESS:
                return failure.response
            raise

    # incident.setup: each step is skipped when its result is already stored.
    def setup(self, payload: dict) -> dict:
        incident = self._incident(payload)
        if not incident.channel_id:
            incident = self._create_channel(incident)
        self._call("conversations_invite", channel=incident.channel_id, users=incident.declared_by)
        if not incident.summary_ts:
            answer = self._call("chat_postMessage", channel=incident.channel_id, text=blocks.summary_text(incident),
                                blocks=blocks.summary_blocks(incident))
            self._record_post(incident, "summary", incident.channel_id, answer["ts"])
            self._call("pins_add", channel=incident.channel_id, timestamp=answer["ts"])
        feed = self.settings.incident_feed_channel
        if feed and not incident.feed_ts:
            answer = self._call("chat_postMessage", channel=feed, text=blocks.summary_text(incident),
                                blocks=blocks.announcement_blocks(incident))
            self._record_post(incident, "announcement", feed, answer["ts"])
        incident = self._incident(payload)
        return {"channel": incident.channel_id, "summary_ts": incident.summary_ts, "feed_ts": incident.feed_ts}

    def _create_channel(self, incident: Incident) -> Incident:
        for name in channel_names(incident):
            try:
                answer = self.client.conversations_create(name=name, is_private=False)
            except SlackApiError as failure:
                if failure.response.get("error") == "name_taken":
                    continue
                raise
            with self.database.session() as session:
                fresh = queries.by_id(session, incident.id)
                service.attach_channel(session, incident=fresh, channel_id=answer["channel"]["id"],
                                       channel_name=answer["channel"]["name"])
            return fresh
        raise RuntimeError(f"no free channel name for {incident.key}")

    def _record_post(self, incident: Incident, what: str, channel: str, ts: str) -> None:
        with self.database.session() as session:
            service.record_post(session, incident=queries.by_id(session, incident.id), what=what,
                                channel=channel, ts=ts)

    def refresh(self, payload: dict) -> dict:
        incident = self._incident(payload)
        if not incident.summary_ts:
            raise NotReady("summary not posted yet")
        self._call("chat_update", channel=incident.channel_id, ts=incident.summary_ts,
                   text=blocks.summary_text(incident), blocks=blocks.summary_blocks(incident))
        if incident.feed_ts:
            self._call("chat_update", channel=incident.feed_channel, ts=incident.feed_ts,
                       text=blocks.summary_text(incident), blocks=blocks.announcement_blocks(incident))
        return {}

    def channel_post(self, payload: dict) -> dict:
        incident = self._incident(payload)
        if not incident.channel_id:
            raise NotReady("channel not created yet")
        section = {"type": "section", "text": {"type": "mrkdwn", "text": payload["text"][:3000]}}
        if payload.get("block_id"):
            section["block_id"] = payload["block_id"]
        message_blocks = [section]
        if payload.get("buttons"):
            message_blocks.append({"type": "actions", "elements": [
                {"type": "button", "action_id": b["action_id"], "value": b["value"],
                 "text": {"type": "plain_text", "text": b["text"]}} for b in payload["buttons"]]})
        answer = self._call("chat_postMessage", channel=incident.channel_id, text=payload["text"], blocks=message_blocks)
        result = {"channel": incident.channel_id, "ts": answer["ts"]}
        feed = incident.feed_channel or self.settings.incident_feed_channel
        if payload.get("also_feed") and feed:
            text = f"*{incident.key}* · {payload['text']}"
            result["feed_ts"] = self._call("chat_postMessage", channel=feed, text=text)["ts"]
        return result

    def capture_message(self, payload: dict) -> dict:
        channel, ts = payload["channel"], payload["ts"]
        history = self._call("conversations_history", channel=channel, latest=ts, inclusive=True, limit=1)
        messages = [m for m in history.get("messages", []) if m.get("ts") == ts]
        if not messages:  # a reply in a thread is not in the channel history
            replies = self._call("conversations_replies", channel=channel, ts=ts, limit=1)
            messages = [m for m in replies.get("messages", []) if m.get("ts") == ts]
        message = messages[0] if messages else {}
        link = self._call("chat_getPermalink", channel=channel, message_ts=ts).get("permalink")
        with self.database.session() as session:
            incident = queries.by_id(session, payload["incident_id"])
            event = service.record_message(session, incident=incident, actor=payload["actor"], channel=channel,
                                           ts=ts, text=message.get("text", ""),
                                           author=message.get("user") or message.get("bot_id"),
                                           permalink=link, via=payload["via"])
        return {"event_id": event.id if event else None}

    def post(self, payload: dict) -> dict:
        """A plain message to any channel (or a user id, which Slack delivers as a DM from the app)."""
        answer = self._call("chat_postMessage", channel=payload["channel"], text=payload["text"],
                            blocks=payload.get("blocks"))
        return {"channel": answer.get("channel"), "ts": answer["ts"]}

    def checklist(self, payload: dict) -> dict:
        with self.database.session() as session:
            run = session.get(PlaybookRun, payload["run_id"])
            incident = queries.by_id(session, run.incident_id)
            steps, deadlines = runner.steps_for(session, run), runner.deadlines_for(session, run)
        if not incident.channel_id:
            raise NotReady("channel not created yet")
        blocks, text = checklist.checklist_blocks(run, steps, deadlines), checklist.checklist_text(run, steps)
        if run.checklist_ts:
            self._call("chat_update", channel=incident.channel_id, ts=run.checklist_ts, text=text, blocks=blocks)
            return {"ts": run.checklist_ts}
        answer = self._call("chat_postMessage", channel=incident.channel_id, text=text, blocks=blocks)
        with self.database.session() as session:
            stored = session.get(PlaybookRun, run.id)
            stored.checklist_ts = answer["ts"]
            session.add(stored)
        return {"ts": answer["ts"]}

    def suggest(self, payload: dict) -> dict:
        incident = self._incident(payload)
        if not incident.channel_id:
            raise NotReady("channel not created yet")
        matches = suggest(self.library, incident.type, incident.severity)
        if not matches:
            return {}
        answer = self._call("chat_postMessage", channel=incident.channel_id, blocks=blocks.suggestion_blocks(matches),
                            text=f"{len(matches)} playbook(s) fit this incident")
        return {"ts": answer["ts"]}

    def pir_document(self, payload: dict) -> dict:
        incident = self._incident(payload)
        if not incident.channel_id:
            raise NotReady("channel not created yet")
        with self.database.session() as session:
            content = pir_document.render_pir(session, incident)
        answer = self.client.files_upload_v2(channel=incident.channel_id, content=content,
                                             filename=pir_document.document_name(incident),
                                             title=f"Post-incident review of {incident.key}")
        file_id = (answer.get("file") or {}).get("id") or answer["files"][0]["id"]
        with self.database.session() as session:
            append(session, stream=incident.stream, kind="pir.document_posted", actor="system:worker",
                   data={"file_id": file_id, "name": pir_document.document_name(incident),
                         "sha256": hashlib.sha256(content.encode("utf-8")).hexdigest()})
        return {"file_id": file_id}

    def respond(self, payload: dict) -> dict:
        answer = WebhookClient(payload["response_url"], timeout=self.settings.slack_timeout_seconds).send(
            text=payload["text"], response_type="ephemeral", replace_original=False)
        if answer.status_code >= 500 or answer.status_code == 429:
            raise ConnectionError(f"response_url answered {answer.status_code}")
        return {"status": answer.status_code}

    def home_publish(self, payload: dict) -> dict:
        with self.database.session() as session:
            view = home_view(session, payload["user_id"])
        self._call("views_publish", user_id=payload["user_id"], view=view)
        return {}
