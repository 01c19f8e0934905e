"""Carry out outbox items against Slack's Web API.

Each handler re-reads the current state, so a late or repeated delivery renders what is true
now. Results (channel id, message ts) are committed right after the call that produced them, and
every earlier step is skipped on retry because its result is stored.

Slack has no idempotency key, and a call whose answer is lost (client timeout, dropped
connection, a crash before the commit) may still have happened. Incident set-up therefore
checks before it repeats one: a `name_taken` channel that this bot created for this incident is
adopted, not replaced by a `-2` one; the summary and the feed announcement carry a message
metadata marker, and a retry after an uncertain attempt looks for it in the channel's recent
history before posting again. What is left open is in docs/architecture.md, "The narrow window".
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import unicodedata

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from vigil_ir import clock
from vigil_ir.bidi import neutralise_all
from vigil_ir.config import Settings
from vigil_ir.db import Database
from vigil_ir.eventlog import append
from vigil_ir.idempotency import ProcessedKey, first_time
from vigil_ir.followup import pir_document
from vigil_ir.incidents import access, queries, service
from vigil_ir.incidents.models import EXERCISE_BANNER, Incident
from vigil_ir.outbox import service as outbox
from vigil_ir.paging import delivery as paging
from vigil_ir.playbooks import runner
from vigil_ir.playbooks.loader import suggest
from vigil_ir.playbooks.models import PlaybookRun
from vigil_ir.slack import blocks, bolt_patch, checklist, hooks, limits, people
from vigil_ir.slack import blocks as slack_blocks  # `blocks` is a local name in checklist()
from vigil_ir.reminders import witnesses as witness_sweep
from vigil_ir.slack import signoff as slack_signoff
from vigil_ir.slack import alert_triage, signing_key_post, witnesses
from vigil_ir.signing.service import PUBLISH_KIND as SIGNING_KEY_KIND
from vigil_ir.slack.home import home_view

log = logging.getLogger(__name__)
HARMLESS = {"already_in_channel", "already_pinned", "cant_invite_self", "already_reacted"}
POST_MARKER = "vigil_post"  # message metadata event_type on posts a retry must not repeat
HISTORY_PAGES, HISTORY_PAGE_SIZE = 2, 100  # newest messages looked through for a lost post
CHANNEL_LIST_PAGES, CHANNEL_LIST_PAGE_SIZE = 20, 1000
CLOCK_SKEW_SECONDS = 300  # Slack's `created` against our declared_at
CANNOT_READ_HISTORY = {"not_in_channel", "channel_not_found"}


class NotReady(Exception):
    """The item depends on another that has not been delivered yet (e.g. the channel)."""


def channel_slug(title: str, limit: int) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title).strip("-")
    return slug[:limit].rstrip("-") or "incident"


def channel_names(incident: Incident):
    """inc-<n>-<slug> (an exercise's ex-<n>-<slug>), then -2, -3… when the name is taken (Slack names: ≤ 80
    chars, lower case). A private incident's name is neutral, `inc-<n>`: channel names show in places its
    title must not."""
    number = f"ex-{incident.number}" if incident.exercise else f"inc-{incident.number}"
    base = number if incident.private else f"{number}-{channel_slug(incident.title, 60)}"
    yield base
    for suffix in range(2, 50):
        yield f"{base}-{suffix}"


def post_marker(key: str) -> dict:
    return {"event_type": POST_MARKER, "event_payload": {"key": key}}


def is_marked(message: dict, key: str) -> bool:
    metadata = message.get("metadata") or {}
    return metadata.get("event_type") == POST_MARKER and (metadata.get("event_payload") or {}).get("key") == key


class Deliverer:
    def __init__(self, database: Database, settings: Settings, client: WebClient, library: dict | None = None):
        self.database, self.settings, self.client = database, settings, client
        self.library = library or {}
        self.permissions = None  # built on first use (private incidents' set-up, the App Home)
        self._bot_user: str | None = None
        self._batch = threading.local()  # the incidents of the batch this thread delivers (prepare_batch)
        self.handlers = {"incident.setup": self.setup, "incident.refresh": self.refresh,
                         "channel.post": self.channel_post, "incident.capture_message": self.capture_message,
                         "incident.invite": self.invite, "incident.remove": self.remove,
                         "respond": self.respond, "home.publish": self.home_publish,
                         "slack.post": self.post, "playbook.checklist": self.checklist,
                         "playbook.suggest": self.suggest, "pir.document": self.pir_document,
                         "person.lookup": self.person_lookup, slack_signoff.KIND: self.risk_sign_off,
                         witness_sweep.KIND: lambda payload: witnesses.deliver(self, payload),
                         SIGNING_KEY_KIND: lambda payload: signing_key_post.deliver(self, payload),
                         alert_triage.TRIAGE_KIND: lambda payload: alert_triage.deliver(self, payload),
                         **paging.handlers(database, settings)}

    def __call__(self, kind: str, payload: dict) -> dict:
        return self.handlers[kind](payload) or {}

    def prepare_batch(self, items: list[tuple[str, dict]]) -> None:
        """Read the incidents a claimed batch's posts are for in one query (the sender calls this with
        each batch's (kind, payload) pairs), instead of one read per item. Only for `channel.post`, and
        only incidents with a channel: what a post reads of its incident (channel, feed channel,
        private, key) is set once and never changes, so a batch a few seconds old renders the same
        post; an incident still without a channel is read afresh at its turn (its set-up may come first)."""
        ids = {payload["incident_id"] for kind, payload in items if kind == "channel.post" and "incident_id" in payload}
        self._batch.incidents = {}
        if not ids:
            return
        with self.database.read_session() as session:
            self._batch.incidents = {incident.id: incident for incident in queries.by_ids(session, ids)
                                     if incident.channel_id}

    def _settled_incident(self, payload: dict) -> Incident:
        """The incident from the batch read (`prepare_batch`), else read now."""
        incident = getattr(self._batch, "incidents", {}).get(payload["incident_id"])
        return incident if incident is not None else self._incident(payload)

    def _incident(self, payload: dict) -> Incident:
        with self.database.read_session() as session:  # a read: no write turn, no write lock
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
        for user in self._invitees(incident):
            self._call("conversations_invite", channel=incident.channel_id, users=user)
        summary_ts = incident.summary_ts or self._post_summary(incident)
        # Repeated on every attempt (already_pinned is harmless): a pin that failed after the
        # summary's ts was stored would otherwise never be retried.
        self._call("pins_add", channel=incident.channel_id, timestamp=summary_ts)
        feed = self._feed_for(incident)
        if feed and not incident.feed_ts:
            ts = self._post_once(f"{incident.stream}:announcement", feed, text=blocks.announcement_text(incident),
                                 blocks=blocks.announcement_blocks(incident))
            self._record_post(incident, "announcement", feed, ts)
        incident = self._incident(payload)
        return {"channel": incident.channel_id, "summary_ts": incident.summary_ts, "feed_ts": incident.feed_ts}

    def _feed_for(self, incident: Incident) -> str | None:
        """Where the incident is announced: nowhere for a private one when VIGIL_PRIVATE_FEED=none."""
        if incident.private and self.settings.private_feed == "none":
            return None
        return self.settings.incident_feed_channel

    def _invitees(self, incident: Incident) -> list[str]:
        """Who set-up invites: the declarer; for a private incident also its lead and the members of
        VIGIL_SECURITY_GROUP, each granted access first (recorded once, as the worker's grant)."""
        if not incident.private:
            return [incident.declared_by]
        security = self._security_members()
        with self.database.session() as session:
            fresh = queries.by_id(session, incident.id)
            for user in sorted(security):
                access.grant(session, incident=fresh, actor="system:worker", user=user, via="security_group",
                             data={"group": ",".join(self.settings.security_subjects)})
            granted = access.members(session, fresh)
        first = [incident.declared_by] + ([incident.lead] if incident.lead else [])
        return first + sorted(granted - set(first))

    def _security_members(self) -> frozenset[str]:
        return self._policy().expand(self.settings.security_subjects)

    def _policy(self):
        """The permissions policy, with a directory resolving user groups through this client."""
        if self.permissions is None:
            from vigil_ir.permissions import build_permissions

            self.permissions = build_permissions(self.settings, client=self.client, database=self.database)
        return self.permissions

    def _post_summary(self, incident: Incident) -> str:
        ts = self._post_once(f"{incident.stream}:summary", incident.channel_id, text=blocks.summary_text(incident),
                             blocks=blocks.summary_blocks(incident))
        self._record_post(incident, "summary", incident.channel_id, ts)
        return ts

    def _create_channel(self, incident: Incident) -> Incident:
        for name in channel_names(incident):
            try:
                channel = self.client.conversations_create(name=name, is_private=incident.private)["channel"]
            except SlackApiError as failure:
                if failure.response.get("error") != "name_taken":
                    raise
                channel = self._created_earlier(incident, name)
                if channel is None:
                    continue
            with self.database.session() as session:
                fresh = queries.by_id(session, incident.id)
                service.attach_channel(session, incident=fresh, channel_id=channel["id"], channel_name=channel["name"])
            return fresh
        raise RuntimeError(f"no free channel name for {incident.key}")

    def _created_earlier(self, incident: Incident, name: str) -> dict | None:
        """The channel called `name` if an earlier attempt for this incident created it and lost the answer.

        Ours means: created by this bot, not before the incident was declared (an older one is from
        something else, e.g. a previous database), and not attached to another incident.
        """
        channel = self._channel_named(name, private=incident.private)
        if channel is None or channel.get("creator") != self._bot_user_id():
            return None
        if channel.get("created", 0) < clock.to_utc(incident.declared_at).timestamp() - CLOCK_SKEW_SECONDS:
            return None
        with self.database.session() as session:
            if queries.by_channel(session, channel["id"]) is not None:
                return None
        log.info("adopting channel %s (%s): created for %s by an attempt whose answer was lost",
                 channel["name"], channel["id"], incident.key)
        return channel

    def _channel_named(self, name: str, *, private: bool = False) -> dict | None:
        # Slack has no lookup by name; conversations.list pages through the workspace's channels
        # (private ones only where the bot is a member, as it is of those it created).
        cursor = None
        for _ in range(CHANNEL_LIST_PAGES):
            page = self.client.conversations_list(types="private_channel" if private else "public_channel",
                                                  exclude_archived=True,
                                                  limit=CHANNEL_LIST_PAGE_SIZE, cursor=cursor)
            found = next((c for c in page.get("channels", []) if c.get("name") == name), None)
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if found or not cursor:
                return found
        return None

    def _bot_user_id(self) -> str | None:
        if self._bot_user is None:
            self._bot_user = self.client.auth_test().get("user_id")
        return self._bot_user

    def _post_once(self, key: str, channel: str, **message) -> str:
        """chat.postMessage, not repeated by a retry when Slack posted but the answer was lost; the ts.

        The intent is committed before the call. An attempt that finds it cannot know how the
        earlier one ended (timeout, crash), so it first looks for the marked message.
        """
        intent = f"slack-post:{key}"
        if not self._first_attempt(intent):
            found = self._find_marked_post(channel, key)
            if found:
                log.info("found %s already posted in %s (an earlier answer was lost)", key, channel)
                return found
        try:
            answer = self._call("chat_postMessage", channel=channel, metadata=post_marker(key), **message)
        except SlackApiError as failure:
            if failure.response.status_code < 500:  # Slack refused (429, ok: false): nothing was posted
                self._forget_attempt(intent)
            raise
        return answer["ts"]

    def _first_attempt(self, intent: str) -> bool:
        with self.database.session() as session:
            return first_time(session, intent)

    def _forget_attempt(self, intent: str) -> None:
        with self.database.session() as session:
            row = session.get(ProcessedKey, intent)
            if row is not None:
                session.delete(row)

    def _find_marked_post(self, channel: str, key: str) -> str | None:
        """The ts of our message marked `key` among the channel's newest messages, if there."""
        cursor = None
        for _ in range(HISTORY_PAGES):
            try:
                page = self.client.conversations_history(channel=channel, limit=HISTORY_PAGE_SIZE,
                                                         include_all_metadata=True, cursor=cursor)
            except SlackApiError as failure:
                if failure.response.get("error") not in CANNOT_READ_HISTORY:
                    raise  # retried later: better late than twice
                log.warning("cannot read %s to check for an earlier post of %s (%s); posting",
                            channel, key, failure.response.get("error"))
                return None
            found = next((m["ts"] for m in page.get("messages", []) if is_marked(m, key)), None)
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if found or not cursor:
                return found
        return None

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
                       text=blocks.announcement_text(incident), blocks=blocks.announcement_blocks(incident))
        return {}

    def channel_post(self, payload: dict) -> dict:
        incident = self._settled_incident(payload)
        if not incident.channel_id:
            raise NotReady("channel not created yet")
        section = {"type": "section", "text": {"type": "mrkdwn", "text": limits.fit(payload["text"])}}
        if payload.get("block_id"):
            section["block_id"] = payload["block_id"]
        message_blocks = [section]
        if payload.get("buttons"):
            message_blocks.append({"type": "actions", "elements": [
                {"type": "button", "action_id": b["action_id"], "value": b["value"],
                 "text": {"type": "plain_text", "text": limits.plain(b["text"], limits.BUTTON_TEXT)}} for b in payload["buttons"]]})
        answer = self._call("chat_postMessage", channel=incident.channel_id, text=payload["text"], blocks=message_blocks)
        result = {"channel": incident.channel_id, "ts": answer["ts"]}
        feed = incident.feed_channel or self._feed_for(incident)
        if payload.get("also_feed") and feed:
            # A private incident's change is told in the feed without who, what or why.
            text = (payload.get("feed_text") or blocks.private_feed_text(incident, f"is {incident.status}")
                    if incident.private else blocks.with_banner(incident, f"*{incident.key}* · "
                                                                f"{payload['text'].removeprefix(EXERCISE_BANNER + chr(10))}"))
            result["feed_ts"] = self._call("chat_postMessage", channel=feed, text=text)["ts"]
        return result

    def invite(self, payload: dict) -> dict:
        incident = self._incident(payload)
        if not incident.channel_id:
            raise NotReady("channel not created yet")
        for user in payload["users"]:
            self._call("conversations_invite", channel=incident.channel_id, users=user)
        return {"channel": incident.channel_id, "users": payload["users"]}

    def remove(self, payload: dict) -> dict:
        incident = self._incident(payload)
        if not incident.channel_id:
            raise NotReady("channel not created yet")
        for user in payload["users"]:
            try:
                self.client.conversations_kick(channel=incident.channel_id, user=user)
            except SlackApiError as failure:
                if failure.response.get("error") != "not_in_channel":  # gone already: what was asked
                    raise
        return {"channel": incident.channel_id, "users": payload["users"]}

    def capture_message(self, payload: dict) -> dict:
        channel, ts = payload["channel"], payload["ts"]
        history = self._call("conversations_history", channel=channel, latest=ts, inclusive=True, limit=1)
        messages = [m for m in history.get("messages", []) if m.get("ts") == ts]
        if not messages:  # a reply in a thread is not in the channel history
            replies = self._call("conversations_replies", channel=channel, ts=ts, limit=1)
            messages = [m for m in replies.get("messages", []) if m.get("ts") == ts]
        message = messages[0] if messages else {}
        # Sanitised at the boundary: a NUL or lone surrogate in Slack's text would fail the insert on
        # every retry; the message is recorded with U+FFFD in their place, and says so.
        text = bolt_patch.storable(message.get("text", ""))
        link = self._call("chat_getPermalink", channel=channel, message_ts=ts).get("permalink")
        with self.database.session() as session:
            incident = queries.by_id(session, payload["incident_id"])
            event = service.record_message(session, incident=incident, actor=payload["actor"], channel=channel,
                                           ts=ts, text=text, sanitised=text != message.get("text", ""),
                                           author=message.get("user") or message.get("bot_id"),
                                           permalink=link, via=payload["via"])
        return {"event_id": event.id if event else None}

    def post(self, payload: dict) -> dict:
        """A plain message to any channel (or a user id, which Slack delivers as a DM from the app)."""
        answer = self._call("chat_postMessage", channel=payload["channel"], text=payload["text"],
                            blocks=payload.get("blocks"))
        return {"channel": answer.get("channel"), "ts": answer["ts"]}

    def checklist(self, payload: dict) -> dict:
        subject = f"playbook_run:{payload['run_id']}"
        with self.database.session() as session:
            run = session.get(PlaybookRun, payload["run_id"])
            incident = queries.by_id(session, run.incident_id)
            steps, deadlines = runner.steps_for(session, run), runner.deadlines_for(session, run)
            shown = outbox.last_result(session, kind="playbook.checklist", subject=subject).get("page")
        if not incident.channel_id:
            raise NotReady("channel not created yet")
        page = payload.get("page")
        if page is None:
            page = checklist.page_holding(steps, payload.get("show_step"))
        if page is None:
            page = shown or 0
        page = min(max(int(page), 0), len(checklist.pages(steps)) - 1)
        blocks = slack_blocks.banner_blocks(incident) + checklist.checklist_blocks(run, steps, deadlines, page=page)
        text = slack_blocks.with_banner(incident, checklist.checklist_text(run, steps))
        if run.checklist_ts:
            self._call("chat_update", channel=incident.channel_id, ts=run.checklist_ts, text=text, blocks=blocks)
            return {"ts": run.checklist_ts, "page": page}
        ts = self._post_once(f"playbook_run:{run.id}:checklist", incident.channel_id, text=text, blocks=blocks)
        with self.database.session() as session:
            stored = session.get(PlaybookRun, run.id)
            stored.checklist_ts = ts
            session.add(stored)
        return {"ts": ts, "page": page}

    def suggest(self, payload: dict) -> dict:
        incident = self._incident(payload)
        if not incident.channel_id:
            raise NotReady("channel not created yet")
        matches = suggest(self.library, incident.type, incident.severity)
        if not matches:
            return {}
        ts = self._post_once(f"{incident.stream}:suggest", incident.channel_id,
                             blocks=blocks.banner_blocks(incident) + blocks.suggestion_blocks(matches),
                             text=blocks.with_banner(incident, f"{len(matches)} playbook(s) fit this incident"))
        return {"ts": ts}

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

    def person_lookup(self, payload: dict) -> dict:
        return people.look_up(self.database, self.client, payload["user_id"])

    def risk_sign_off(self, payload: dict) -> dict:
        return slack_signoff.deliver(self.database, self.client, payload, self.settings)

    def respond(self, payload: dict) -> dict:
        if not hooks.is_slack_hook(payload["response_url"], self.settings.slack_hooks_url):
            return {"status": "not sent: the response_url is not on Slack's hooks host"}
        answer = WebhookClient(payload["response_url"], timeout=self.settings.slack_timeout_seconds).send(
            text=limits.message_text(neutralise_all(payload["text"])),
            blocks=limits.enforce(neutralise_all(payload.get("blocks"))), response_type="ephemeral",
            replace_original=False)
        if answer.status_code >= 500 or answer.status_code == 429:
            raise ConnectionError(f"response_url answered {answer.status_code}")
        return {"status": answer.status_code}

    def home_publish(self, payload: dict) -> dict:
        policy = self._policy()
        who = policy.actor(payload["user_id"])  # may ask Slack for group members: before the session
        with self.database.session() as session:
            view = home_view(session, who, policy)
        self._call("views_publish", user_id=payload["user_id"], view=view)
        return {}
