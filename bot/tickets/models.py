"""An action's ticket in a tracker: at most one per action. History: events on the action's stream.

The columns events set (FOLDED) are rebuilt from the stream by `vigil verify`. The rest are the
sync's own bookkeeping: when Vigil last read the ticket, when a create call was started whose
outcome is not known yet, and since when the action and the ticket have disagreed.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

FOLDED = ("tracker", "project", "issue_type", "marker", "key", "url", "external_id", "state", "state_name", "title",
          "assignee", "due_on", "ticket_updated_at", "divergence", "requested_by")


class ActionTicket(SQLModel, table=True):
    __tablename__ = "action_ticket"
    __table_args__ = (UniqueConstraint("tracker", "key", name="uq_action_ticket_key"),)

    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(foreign_key="action_item.id", unique=True)
    tracker: str = Field(max_length=16)
    project: str = Field(default="", max_length=255)     # Jira project, GitHub repository, Linear team
    issue_type: str | None = Field(default=None, max_length=64)
    marker: str = Field(max_length=64)                   # vigil-act-<n>
    key: str | None = Field(default=None, max_length=255)  # none until the tracker has created it
    url: str = ""
    external_id: str | None = Field(default=None, max_length=255, index=True)
    # pending (creation queued) | unknown (linked, not read yet) | open | done | cancelled
    # | missing (the tracker no longer finds it: deleted, moved out of reach, or access withdrawn)
    state: str = Field(default="pending", max_length=16)
    state_name: str = Field(default="", max_length=255)
    title: str = ""
    assignee: str | None = Field(default=None, max_length=320)
    due_on: date | None = None
    ticket_updated_at: datetime | None = None            # the tracker's clock, of the last change applied
    # ticket_done: the ticket is closed while the action is open; action_done: the reverse (flagged, after grace)
    divergence: str = Field(default="", max_length=32)
    requested_by: str = Field(max_length=64)
    created_at: datetime
    synced_at: datetime | None = Field(default=None, index=True)
    create_started_at: datetime | None = None            # a create call whose outcome is not known
    disagree_since: datetime | None = None
