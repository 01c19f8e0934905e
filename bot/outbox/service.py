"""Enqueue, claim, complete and reschedule outbox items.

Claiming is a compare-and-set `UPDATE … WHERE claim is free` on both databases; on PostgreSQL
the candidate query also uses `FOR UPDATE SKIP LOCKED` so concurrent workers do not even contend.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, insert, or_, select as sa_select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.db import insert_if_absent
from vigil_ir.outbox.models import OutboxItem

_ITEMS = OutboxItem.__table__
_c = _ITEMS.c
# Built once: every write request queues at least one item (Core, not an ORM flush, on the hot path).
# The sender's statements are Core too (plain UPDATEs, no ORM synchronisation of loaded items).
_INSERT = insert(_ITEMS).returning(_c.id)


def enqueue(session: Session, *, kind: str, subject: str, payload: dict[str, Any] | None = None,
            dedupe_key: str | None = None, coalesce: bool = False, merge: bool = False) -> OutboxItem | None:
    """Add an item in the caller's transaction.

    `dedupe_key`: at most one item ever with that key. `coalesce`: skip if an undelivered item of
    the same kind and subject is waiting and not yet claimed (it will render the latest state anyway);
    with `merge`, `payload`'s keys are also written into the waiting item (the latest wish wins, e.g.
    which page of a message to show).
    """
    if coalesce:
        waiting = session.exec(select(OutboxItem.id, OutboxItem.payload).where(
            OutboxItem.kind == kind, OutboxItem.subject == subject, OutboxItem.status == "pending",
            OutboxItem.claimed_by.is_(None))).first()
        if waiting and not merge:
            return None
        # Only while still unclaimed: a sender that took it meanwhile renders the old wish, so queue anew.
        if waiting and session.execute(update(OutboxItem).where(
                OutboxItem.id == waiting[0], OutboxItem.status == "pending", OutboxItem.claimed_by.is_(None))
                .values(payload={**waiting[1], **(payload or {})})).rowcount == 1:
            return None
    now = clock.now()
    values = {"kind": kind, "subject": subject, "payload": payload or {}, "dedupe_key": dedupe_key,
              "available_at": now, "created_at": now, "status": "pending", "attempts": 0, "result": {}}
    if dedupe_key:
        # Race-free: of two concurrent sweeps or deliveries with the same key, one inserts.
        if not insert_if_absent(session, OutboxItem, values, ["dedupe_key"]):
            return None
        return session.exec(select(OutboxItem).where(OutboxItem.dedupe_key == dedupe_key)).one()
    return OutboxItem(id=session.execute(_INSERT, values).scalar_one(), **values)


def is_queued(session: Session, dedupe_key: str) -> bool:
    """Whether an item with this key was ever queued: a sweep's marker that today's (this week's) post is
    done, checked before it computes one."""
    return session.execute(sa_select(_c.id).where(_c.dedupe_key == dedupe_key)).first() is not None


def enqueue_many(session: Session, items: list[dict[str, Any]]) -> dict[str, int]:
    """Add several items, each with its own `dedupe_key`, in one statement; {dedupe_key: id} of those
    inserted (a key queued before is left out, as `enqueue` returns None for it). Each item has
    `kind`, `subject`, `payload` and `dedupe_key`. For set-based sweeps."""
    if not items:
        return {}
    now = clock.now()
    insert_ = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # An executemany, which SQLAlchemy sends as multi-row INSERTs ("insertmanyvalues"), compiled once.
    statement = insert_(_ITEMS).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(_c.dedupe_key, _c.id)
    rows = session.execute(statement, [
        {"kind": item["kind"], "subject": item["subject"], "payload": item.get("payload") or {},
         "dedupe_key": item["dedupe_key"], "available_at": now, "created_at": now, "status": "pending",
         "attempts": 0, "result": {}} for item in items]).all()
    return {key: item_id for key, item_id in rows}


def _claimable(now):
    return (_c.status == "pending", _c.available_at <= now, or_(_c.claimed_until.is_(None), _c.claimed_until < now))


def last_result(session: Session, *, kind: str, subject: str) -> dict[str, Any]:
    """The result of the latest delivered item of this kind and subject ({} if none)."""
    result = session.exec(select(OutboxItem.result).where(OutboxItem.kind == kind, OutboxItem.subject == subject,
                                                          OutboxItem.status == "done")
                          .order_by(OutboxItem.id.desc()).limit(1)).first()
    return result or {}


# What a sender needs of a claimed item, returned by the claim itself (no re-select per item).
_CLAIMED_COLUMNS = (_c.id, _c.kind, _c.subject, _c.payload, _c.dedupe_key, _c.status, _c.attempts,
                    _c.available_at, _c.claimed_by, _c.claimed_until, _c.created_at)


def claim_due(session: Session, *, worker: str, limit: int = 20, hold_seconds: int = 120) -> list[OutboxItem]:
    """Claim up to `limit` due items for `worker` in one statement and commit the claims.

    `WITH candidates AS MATERIALIZED (due ids … LIMIT n FOR UPDATE SKIP LOCKED) UPDATE … FROM
    candidates WHERE the claim is still free … RETURNING`. The candidates are chosen once: as a plain
    `IN (subquery)` PostgreSQL may run the subquery again for each row it scans, and with SKIP LOCKED
    each run can pick other rows, so more than `limit` items were claimed. The outer condition is
    re-checked on each row as it is after any concurrent claim committed, so of two workers one wins
    each item; on SQLite writers take turns. The items returned are plain copies of the claimed rows,
    oldest first.
    """
    now = clock.now()
    candidates = (sa_select(_c.id.label("candidate")).where(*_claimable(now)).order_by(_c.id).limit(limit)
                  .with_for_update(skip_locked=True).cte("candidates")
                  .prefix_with("MATERIALIZED", dialect="postgresql"))
    rows = session.execute(update(_ITEMS).where(_c.id == candidates.c.candidate, *_claimable(now))
                           .values(claimed_by=worker, claimed_until=now + timedelta(seconds=hold_seconds),
                                   attempts=_c.attempts + 1)
                           .returning(*_CLAIMED_COLUMNS)).all()
    session.commit()
    return sorted((OutboxItem(**row._mapping) for row in rows), key=lambda item: item.id)


def _mine(item_id: int, worker: str):
    return (_c.id == item_id, _c.claimed_by == worker, _c.status == "pending")


def extend_claims(session: Session, *, item_ids: list[int], worker: str, hold_seconds: int) -> set[int]:
    """Extend our unexpired claims on `item_ids` (one statement); the ids still ours.

    A batch is claimed at once but sent one item after another, and Slack can be slow: the sender
    extends the rest of its batch when less than half the claim is left, so no item is sent after
    its claim ran out (when another worker may have taken it over and sent it too).
    """
    now = clock.now()
    rows = session.execute(update(_ITEMS).where(
        _c.id.in_(item_ids), _c.claimed_by == worker, _c.status == "pending", _c.claimed_until > now)
        .values(claimed_until=now + timedelta(seconds=hold_seconds)).returning(_c.id)).all()
    return {row[0] for row in rows}


# Built once: every delivered item runs it.
_COMPLETE = update(_ITEMS).where(_c.id == bindparam("item_id"), _c.claimed_by == bindparam("worker"),
                                 _c.status == "pending").values(
    status="done", result=bindparam("item_result"), done_at=bindparam("at"), claimed_until=None, last_error=None)


def complete(session: Session, *, item_id: int, worker: str, result: dict[str, Any] | None = None) -> bool:
    """Mark delivered; False if the claim was lost (another worker took over an expired claim)."""
    return session.execute(_COMPLETE, {"item_id": item_id, "worker": worker, "item_result": result or {},
                                       "at": clock.now()}).rowcount == 1


def reschedule(session: Session, *, item_id: int, worker: str, delay_seconds: float, error: str | None,
               count_attempt: bool = True) -> None:
    """Release the claim and make the item due again after `delay_seconds`."""
    values: dict[str, Any] = {"claimed_by": None, "claimed_until": None,
                              "available_at": clock.now() + timedelta(seconds=delay_seconds),
                              "last_error": error}
    if not count_attempt:
        values["attempts"] = _c.attempts - 1
    session.execute(update(_ITEMS).where(*_mine(item_id, worker)).values(**values))


def release_claims(session: Session, *, worker: str) -> int:
    """Hand back every pending item `worker` still holds, undoing the attempt its claim counted.

    For a worker that lost track of its claims: the database went away while it was claiming, after
    the claims may have been committed. Without this they would wait for their claims to expire.
    """
    return session.execute(update(_ITEMS).where(_c.claimed_by == worker, _c.status == "pending")
                           .values(claimed_by=None, claimed_until=None, attempts=_c.attempts - 1)).rowcount


def pending_count(session: Session) -> int:
    return len(list(session.exec(select(OutboxItem.id).where(OutboxItem.status == "pending"))))


def dead_letter(session: Session, *, item_id: int, worker: str, error: str) -> None:
    """Stop retrying an item that cannot succeed as it is: visible in `vigil outbox list --dead` and
    /metrics until someone fixes the cause and retries it."""
    session.execute(update(_ITEMS).where(*_mine(item_id, worker)).values(
        status="dead", claimed_by=None, claimed_until=None, last_error=error))


def retry_dead(session: Session, *, item_id: int | None = None) -> int:
    """Put dead items (one, or all when `item_id` is None) back in line, attempts counted afresh."""
    query = update(OutboxItem).where(OutboxItem.status == "dead")
    if item_id is not None:
        query = query.where(OutboxItem.id == item_id)
    return session.execute(query.values(status="pending", attempts=0, available_at=clock.now())).rowcount
