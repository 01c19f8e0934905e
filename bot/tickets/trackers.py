"""The one interface every tracker adapter implements, and the values that cross it.

An adapter turns Vigil's few wishes (create, find by marker, fetch, close, comment) into its tracker's
API calls, and a webhook's body into a `Ticket`. It knows nothing of actions, the database or Slack.
Ticket states are reduced to three: `open`, `done`, `cancelled`; the tracker's own name for the state
(`In Review`, `closed (not planned)`) travels beside it in `state_name`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

STATES = ("open", "done", "cancelled")


@dataclass(frozen=True)
class Target:
    """Where a new ticket goes: a Jira project (and issue type), a GitHub repository, a Linear team."""

    project: str
    issue_type: str | None = None


@dataclass(frozen=True)
class Ticket:
    """A ticket as its tracker says it is now."""

    key: str                     # OPS-12, acme/ops#7, ENG-42
    url: str
    external_id: str             # the tracker's own id: stays when a Jira issue moves project
    state: str                   # open | done | cancelled
    state_name: str = ""
    title: str = ""
    assignee: str | None = None  # the tracker's user, as an e-mail address when it gives one
    due_on: date | None = None
    updated_at: datetime | None = None  # the tracker's own clock: orders webhooks that arrive out of order


@dataclass(frozen=True)
class NewTicket:
    title: str
    description: str
    target: Target
    marker: str                  # vigil-act-12: found again after an answer that was lost
    due_on: date | None = None
    assignee_email: str | None = None


class TrackerError(Exception):
    """A call the tracker refused or that did not complete.

    `retry_later`: an outage (5xx, 429, timeout, dropped connection), retried for as long as it lasts.
    `uncertain`: the tracker may have carried the call out although we got no answer (a 5xx after the
    write, a timeout, a dropped connection), so a create must look for its marker before trying again.
    """

    def __init__(self, message: str, *, retry_later: bool = False, uncertain: bool = False,
                 retry_after: float | None = None):
        super().__init__(message)
        self.retry_later, self.uncertain, self.retry_after = retry_later, uncertain, retry_after


class TicketNotFound(TrackerError):
    """No such ticket (or not visible to Vigil's credentials)."""


@dataclass
class Webhook:
    """What a verified webhook delivery says: its delivery id and the ticket, if it is about one."""

    delivery: str
    ticket: Ticket | None
    ignored: str = ""            # why nothing is to be done (another event type, a ping)
    extra: dict = field(default_factory=dict)


class WebhookRefused(Exception):
    """A delivery that is not signed with our secret, or too old: answered 401, nothing written."""


class Tracker(Protocol):
    name: str            # jira | github | linear
    label: str           # Jira | GitHub | Linear

    def create(self, new: NewTicket) -> Ticket: ...

    def find_marked(self, marker: str, target: Target) -> Ticket | None: ...

    def fetch(self, key: str) -> Ticket: ...

    def close(self, key: str, *, cancelled: bool) -> None: ...

    def comment(self, key: str, text: str) -> None: ...

    def parse_ref(self, text: str) -> str | None: ...

    def url_for(self, key: str) -> str: ...

    def webhook(self, headers: dict[str, str], body: bytes) -> Webhook: ...


def hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str | None, body: bytes, given: str | None, prefix: str = "") -> bool:
    """Constant-time check of `prefix + hex(HMAC-SHA256(secret, body))`; never true without a secret."""
    if not secret or not given:
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), (prefix + hmac_hex(secret, body)).encode("utf-8"))


def header(headers: dict[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def body_digest(body: bytes) -> str:
    """A delivery id for a delivery that carries none: the same body is the same delivery."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def iso_time(value: str | None) -> datetime | None:
    """A tracker's ISO 8601 time (`Z` or an offset); None when absent or unreadable."""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def iso_day(value: str | None) -> date | None:
    """A tracker's due date (`YYYY-MM-DD`); None when absent or unreadable."""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None
