"""Jira Cloud (REST API v3, an API token with basic auth).

New issues carry two labels: `vigil` and the action's marker (`vigil-act-12`), so an issue whose
creation answer was lost is found again with JQL (`labels = "vigil-act-12"`). Webhooks registered by a
Jira admin with a secret are signed `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`; each
delivery has an `X-Atlassian-Webhook-Identifier`, the same on every retry of it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from urllib.parse import quote

import httpx

from vigil_ir.tickets.trackers import (NewTicket, Target, Ticket, TicketNotFound, TrackerError, Webhook,
                                       WebhookRefused, body_digest, header, iso_day, signature_matches)
from vigil_ir.tickets.transport import call

KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,49}-\d{1,12}$")
BROWSE = re.compile(r"^https?://[^/\s]+/browse/([A-Z][A-Z0-9_]{0,49}-\d{1,12})/?(?:[?#].*)?$")
FIELDS = "summary,status,assignee,duedate,updated,resolution"
# Resolutions that mean "will not be done" rather than "done" (compared in lower case).
CANCELLED_RESOLUTIONS = {"won't do", "won't fix", "wont do", "wont fix", "cancelled", "canceled", "declined",
                         "duplicate", "obsolete", "not a bug", "cannot reproduce", "incomplete"}
CANCEL_WORDS = re.compile(r"cancel|won.?t|declin|reject|obsolete", re.IGNORECASE)
EVENTS = {"jira:issue_created", "jira:issue_updated"}


def adf(text: str) -> dict:
    """Plain text as an Atlassian Document Format document: one paragraph per non-empty line."""
    lines = [line for line in text.splitlines() if line.strip()] or [" "]
    return {"type": "doc", "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": line}]} for line in lines]}


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(value, pattern)
        except ValueError:
            continue
    return None


class Jira:
    name, label = "jira", "Jira"

    def __init__(self, *, base_url: str, email: str, api_token: str, webhook_secret: str | None = None,
                 timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.webhook_secret = webhook_secret
        self.client = httpx.Client(base_url=self.base_url, auth=(email, api_token), timeout=timeout,
                                   headers={"Accept": "application/json"}, trust_env=False)

    def url_for(self, key: str) -> str:
        return f"{self.base_url}/browse/{key}"

    def ticket(self, issue: dict) -> Ticket:
        fields = issue.get("fields") or {}
        status = fields.get("status") or {}
        category = ((status.get("statusCategory") or {}).get("key") or "").lower()
        resolution = ((fields.get("resolution") or {}).get("name") or "")
        state = "open"
        if category == "done":
            state = "cancelled" if resolution.lower() in CANCELLED_RESOLUTIONS else "done"
        assignee = fields.get("assignee") or {}
        name = status.get("name") or ""
        return Ticket(key=issue["key"], url=self.url_for(issue["key"]), external_id=str(issue.get("id") or ""),
                      state=state, state_name=f"{name} ({resolution})" if resolution and name else name,
                      title=fields.get("summary") or "",
                      assignee=assignee.get("emailAddress") or assignee.get("accountId") or None,
                      due_on=iso_day(fields.get("duedate")), updated_at=_time(fields.get("updated")))

    def _account(self, email: str) -> str | None:
        users = call(self.client, "GET", "/rest/api/3/user/search", params={"query": email}, label="Jira user search")
        for user in users or []:
            if (user.get("emailAddress") or "").lower() == email.lower() and user.get("accountId"):
                return user["accountId"]
        return None

    def create(self, new: NewTicket) -> Ticket:
        fields: dict = {"project": {"key": new.target.project}, "issuetype": {"name": new.target.issue_type or "Task"},
                        "summary": new.title, "description": adf(new.description), "labels": ["vigil", new.marker]}
        if new.due_on:
            fields["duedate"] = new.due_on.isoformat()
        account = self._account(new.assignee_email) if new.assignee_email else None
        if account:
            fields["assignee"] = {"accountId": account}
        made = call(self.client, "POST", "/rest/api/3/issue", json={"fields": fields}, label="Jira create issue",
                    writes=True)
        if not isinstance(made, dict) or not made.get("key"):
            raise TrackerError(f"Jira create issue: an answer without a key ({str(made)[:100]})", retry_later=True,
                               uncertain=True)
        return Ticket(key=made["key"], url=self.url_for(made["key"]), external_id=str(made.get("id") or ""),
                      state="open", title=new.title, assignee=new.assignee_email if account else None,
                      due_on=new.due_on)

    def find_marked(self, marker: str, target: Target) -> Ticket | None:
        found = call(self.client, "GET", "/rest/api/3/search/jql", label="Jira search",
                     params={"jql": f'labels = "{marker}" ORDER BY created ASC', "fields": FIELDS, "maxResults": 5})
        issues = (found or {}).get("issues") or []
        return self.ticket(issues[0]) if issues else None

    def fetch(self, key: str) -> Ticket:
        return self.ticket(call(self.client, "GET", f"/rest/api/3/issue/{quote(key)}", params={"fields": FIELDS},
                                label=f"Jira issue {key}"))

    def close(self, key: str, *, cancelled: bool) -> None:
        found = call(self.client, "GET", f"/rest/api/3/issue/{quote(key)}/transitions", label=f"Jira transitions {key}")
        done = [t for t in (found or {}).get("transitions") or []
                if ((t.get("to") or {}).get("statusCategory") or {}).get("key") == "done"]
        if not done:
            raise TrackerError(f"Jira {key}: no transition leads to a done status from where it is")
        wanted = [t for t in done if bool(CANCEL_WORDS.search(f"{t.get('name')} {(t.get('to') or {}).get('name')}"))
                  == cancelled]
        chosen = (wanted or done)[0]
        call(self.client, "POST", f"/rest/api/3/issue/{quote(key)}/transitions", label=f"Jira transition {key}",
             json={"transition": {"id": chosen["id"]}}, writes=True)

    def comment(self, key: str, text: str) -> None:
        call(self.client, "POST", f"/rest/api/3/issue/{quote(key)}/comment", json={"body": adf(text)},
             label=f"Jira comment {key}", writes=True)

    def parse_ref(self, text: str) -> str | None:
        text = (text or "").strip().strip("<>").split("|", 1)[0]
        if KEY.match(text.upper()) and not text.startswith("http"):
            return text.upper()
        match = BROWSE.match(text)
        if match and text.lower().startswith(self.base_url.lower() + "/"):
            return match.group(1)
        return None

    def webhook(self, headers: dict[str, str], body: bytes) -> Webhook:
        if not signature_matches(self.webhook_secret, body, header(headers, "X-Hub-Signature"), "sha256="):
            raise WebhookRefused("the X-Hub-Signature does not match the Jira webhook secret")
        delivery = header(headers, "X-Atlassian-Webhook-Identifier") or body_digest(body)
        payload = json.loads(body)
        event = payload.get("webhookEvent") if isinstance(payload, dict) else None
        if event not in EVENTS or not isinstance(payload.get("issue"), dict) or not payload["issue"].get("key"):
            return Webhook(delivery, None, ignored=f"event {event!r} is not about an issue's fields")
        return Webhook(delivery, self.ticket(payload["issue"]))


__all__ = ["Jira", "TicketNotFound"]
