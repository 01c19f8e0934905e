"""Worker sweeps for the risk register: review reminders and escalation, the weekly digest,
acceptance expiry, and ad-hoc reviews after incidents close.

Exactly once, whatever the number of workers: a review's candidates are claimed with `FOR UPDATE
SKIP LOCKED` (PostgreSQL), the reminder level is raised by compare-and-set (`reminder_rank <
new`, one winner on both databases), and the Slack message carries a deterministic outbox
dedupe key as a backstop. Catching up after downtime sends only the most recent reminder due:
the levels are ordered and only the highest reached is sent. Each reminder sent is an event on
the risk's stream (the notification log).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, union_all, update
from sqlmodel import Session, select

from vigil_ir.config import Settings
from vigil_ir.eventlog import Event, append
from vigil_ir.eventlog.service import append_many
from vigil_ir.outbox.service import enqueue_many, is_queued
from vigil_ir.incidents.models import Incident
from vigil_ir.reminders.scheduler import sweep
from vigil_ir.risks import approvals, queries
from vigil_ir.risks.models import INCIDENT_TYPE_CATEGORY, Risk, RiskReview
from vigil_ir.risks.reviews import open_review
from vigil_ir.slack import risk_notify

ACTOR = "system:worker"
# (kind, days relative to the due date); the position + 1 is the kind's rank.
KINDS = (("due_in_14", -14), ("due_in_7", -7), ("due_in_1", -1), ("due", 0), ("overdue_3", 3), ("escalation_7", 7))
ESCALATION = "escalation_7"
OVERDUE_RANK = 5  # overdue_3
REMINDER_BATCH = 50  # reviews locked and reminded per transaction
INCIDENT_LOOKBACK_DAYS = 30
ADHOC_DUE_DAYS = 14


def latest_due(review: RiskReview, today) -> tuple[int, str] | None:
    """The highest-ranked reminder whose day has come, as (rank, kind)."""
    reached = [(rank, kind) for rank, (kind, offset) in enumerate(KINDS, 1)
               if today >= review.due_on + timedelta(days=offset)]
    return reached[-1] if reached else None


@sweep("risks.acceptance_expiry")
def acceptance_expiry(session: Session, now: datetime, settings: Settings) -> int:
    return len(approvals.expire_acceptances(session, on=now.date(), actor=ACTOR))


@sweep("risks.incident_reviews")
def incident_reviews(session: Session, now: datetime, settings: Settings) -> int:
    """A closed incident linked to a risk, or of a type mapped to its category, asks for a review."""
    closes = list(session.exec(select(Event).where(Event.kind == "incident.closed",
                                                   Event.recorded_at >= now - timedelta(days=INCIDENT_LOOKBACK_DAYS))))
    if not closes:
        return 0
    risks = list(session.exec(select(Risk).where(Risk.status != "closed")))
    opened = 0
    for close in closes:
        if not close.stream.startswith("incident:"):  # an exercise's close tests the response, not the risk
            continue
        number = int(close.stream.split(":")[1])
        incident = session.exec(select(Incident).where(Incident.number == number,
                                                       Incident.exercise.is_(False))).first()
        key, category = f"INC-{number}", INCIDENT_TYPE_CATEGORY.get(incident.type if incident else "")
        for risk in risks:
            mapped = risk.category == category and risk.created_at <= close.recorded_at
            if key in risk.linked_incidents or mapped:
                review = open_review(session, risk, trigger="incident", trigger_ref=key, actor=ACTOR,
                                     due_on=close.recorded_at.date() + timedelta(days=ADHOC_DUE_DAYS))
                opened += review is not None
    return opened


def _needs_reminder(today, dialect: str):
    """SQL: the open review's next reminder after the one last sent has come (so every candidate
    fetched has work, and a batch cannot fill up with reviews that are waiting for a later day):
    one range of the (status, reminder_rank, due_on) index per rank.

    SQLite scans every open review for the ranges written as one OR (20-35 ms a batch at 100,000
    risks), so there they are joined with UNION ALL; PostgreSQL reads the OR as a bitmap of the
    ranges, and may plan the UNION as a subquery run per row (one worker then waited a minute)."""
    ranges = [(RiskReview.reminder_rank == rank, RiskReview.due_on <= today - timedelta(days=offset))
              for rank, (_, offset) in enumerate(KINDS)]
    if dialect == "sqlite":
        return RiskReview.id.in_(union_all(*(select(RiskReview.id).where(RiskReview.status == "open", *bounds)
                                             for bounds in ranges)))
    return and_(RiskReview.status == "open", or_(*(and_(*bounds) for bounds in ranges)))


@dataclass(frozen=True)
class Reminder:
    """A review's reminder worked out from a read: the rank to raise it to, and what to send."""

    review_id: int
    to_rank: int
    messages: tuple[tuple[str, str, dict[str, Any]], ...]  # (kind, recipient, outbox item)
    event_data: tuple[dict[str, Any], ...]  # one risk.reminder_sent per message, in the same order
    stream: str


def due_reminders(session: Session, now: datetime, settings: Settings) -> list[Reminder]:
    """The first REMINDER_BATCH open reviews whose next reminder has come, with their messages built.

    Only reads: on SQLite it runs outside the write lock (vigil_ir.reminders.scheduler)."""
    today = now.date()
    candidates = list(session.exec(select(RiskReview).where(_needs_reminder(today, session.get_bind().dialect.name))
                                   .order_by(RiskReview.id).limit(REMINDER_BATCH).with_for_update(skip_locked=True)))
    if not candidates:
        return []
    risks = {risk.id: risk for risk in session.exec(select(Risk).where(Risk.id.in_({r.risk_id for r in candidates})))}
    planned = []
    for review in candidates:
        risk = risks[review.risk_id]
        rank, latest = latest_due(review, today)
        messages, events = [], []
        for kind in reminders_to_send(review, latest, escalate_to=settings.risk_channel):
            if kind == ESCALATION:
                item = risk_notify.escalation(settings.risk_channel, risk, review, kind, today)
                recipient = settings.risk_channel
            else:
                item, recipient = risk_notify.owner_reminder(risk, review, kind, today), review.reviewer
            messages.append((kind, recipient, item))
            events.append({"review": review.ref, "kind": kind, "recipient": recipient,
                           "due_on": review.due_on.isoformat(),
                           "scheduled_for": (review.due_on + timedelta(days=dict(KINDS)[kind])).isoformat(),
                           "outbox_key": item["dedupe_key"]})
        planned.append(Reminder(review.id, rank, tuple(messages), tuple(events), risk.stream))
    return planned


@sweep("risks.review_reminders", batch=REMINDER_BATCH, prepare=due_reminders)
def review_reminders(session: Session, now: datetime, settings: Settings, planned: list[Reminder]) -> int:
    """Send one batch of due reminders (`due_reminders` read them). The scheduler runs it again,
    each time in a new transaction, while the batch is full: rows are locked for one batch only, and
    several workers share the work (on PostgreSQL SKIP LOCKED hands each one different reviews).

    Set-based: a batch costs the same few statements however many reminders it sends (a
    compare-and-set per rank change, one insert of the outbox items, the events appended together);
    one statement per reminder made 100,000 risks a 22-second sweep. A review changed since it was
    read (completed, or reminded by another worker) loses its compare-and-set and sends nothing."""
    won = _raise_ranks(session, planned)
    sending = [reminder for reminder in planned if reminder.review_id in won]
    queued = enqueue_many(session, [item for reminder in sending for *_, item in reminder.messages])
    append_many(session, [{"stream": reminder.stream, "kind": "risk.reminder_sent", "actor": ACTOR, "data": data}
                          for reminder in sending for (*_, item), data in zip(reminder.messages, reminder.event_data)
                          if item["dedupe_key"] in queued])  # a key queued before is skipped
    return sum(item["dedupe_key"] in queued for reminder in sending for *_, item in reminder.messages)


def _raise_ranks(session: Session, planned: list[Reminder]) -> set[int]:
    """Raise each open review's reminder rank to its new one, where it is still lower (compare-and-set:
    of two workers only one raises a review to a rank, and a review completed since the read is left
    alone); the ids raised. A message another worker queued meanwhile is not queued twice: its outbox
    key is taken. One statement per distinct (rank, reminders) pair: at most a dozen however large the
    batch."""
    table = RiskReview.__table__
    groups: dict[tuple[int, int], list[int]] = {}
    for reminder in planned:
        groups.setdefault((reminder.to_rank, len(reminder.messages)), []).append(reminder.review_id)
    raised = set()
    for (rank, count), ids in groups.items():
        raised.update(session.execute(
            # `status || ''`: found by id, not by the reminder index (SQLite would scan its range instead)
            update(table).where(table.c.id.in_(ids), table.c.status.concat("") == "open", table.c.reminder_rank < rank)
            .values(reminder_rank=rank, reminders_sent=table.c.reminders_sent + count).returning(table.c.id)).scalars())
    return raised


def reminders_to_send(review: RiskReview, kind: str, *, escalate_to: str | None) -> list[str]:
    """What one sweep sends for the latest reminder due. The owner is always told directly (a DM
    with the Review button) before or with an escalation: a review first seen 7 or more days
    overdue (imported late, or after downtime) gets the owner's overdue DM and the escalation, once
    each; without a risk channel there is nowhere to escalate, so only the DM."""
    if kind != ESCALATION:
        return [kind]
    owner_told = review.reminder_rank >= OVERDUE_RANK
    return ([] if owner_told else [KINDS[OVERDUE_RANK - 1][0]]) + ([ESCALATION] if escalate_to else [])


@sweep("risks.weekly_digest")
def weekly_digest(session: Session, now: datetime, settings: Settings) -> int:
    if not settings.risk_channel:
        return 0
    year, week, _ = now.date().isocalendar()
    label = f"{year}-W{week:02d}"
    if is_queued(session, risk_notify.digest_key(label)):  # this week's is queued: load nothing
        return 0
    overdue, pending = queries.overdue_reviews(session, now.date()), queries.pending_approvals(session)
    item = risk_notify.digest(session, settings.risk_channel, label, overdue, pending, now.date())
    if item is None:
        return 0
    append(session, stream="risk-register", kind="risk.digest_sent", actor=ACTOR, data={
        "week": label, "channel": settings.risk_channel, "overdue_reviews": [r.ref for r, _ in overdue],
        "pending_approvals": [a.id for a, _ in pending], "outbox_key": item.dedupe_key})
    return 1
