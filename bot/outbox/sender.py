"""Deliver due outbox items: claim, call the handler, store the result or reschedule.

Used by `vigil worker` and by the web process's background thread; several can run at once.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import socket
import threading
from collections.abc import Callable
from datetime import timedelta

from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from vigil_ir import clock
from vigil_ir.db import Database, is_unreachable
from vigil_ir.metrics import OUTBOX_DELIVERIES
from vigil_ir.outbox import service
from vigil_ir.outbox.models import OutboxItem

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 900
# A failure retrying cannot fix is tried this many times (a minute or so of backoff), then dead-lettered.
DEAD_AFTER_ATTEMPTS = 5
NOT_READY_DELAY_SECONDS = 2


def worker_name(role: str) -> str:
    return f"{role}:{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


def retry_delay(item: OutboxItem, failure: Exception) -> float:
    """Honour Slack's Retry-After on 429; otherwise back off exponentially, capped at 15 min."""
    if isinstance(failure, SlackApiError) and failure.response.status_code == 429:
        return float(failure.response.headers.get("Retry-After", failure.response.headers.get("retry-after", 1)))
    if getattr(failure, "retry_after", None) is not None:  # another service's Retry-After (a ticket tracker, a paging provider)
        return float(failure.retry_after)
    return min(2 ** max(item.attempts - 1, 0), MAX_BACKOFF_SECONDS) * (1 + random.random() / 4)


def describe_failure(failure: Exception) -> str:
    if isinstance(failure, SlackApiError):
        needed = failure.response.get("needed")  # missing_scope names the scope the call needs
        scope = f" (the app needs the {needed} scope: add it in manifest.yaml and reinstall)" if needed else ""
        return f"slack {failure.response.status_code}: {failure.response.get('error')}{scope}"
    return f"{type(failure).__name__}: {failure}"[:500]


# Slack's answers that say "try again later"; every other `ok: false` is an answer about the call itself.
TRANSIENT_SLACK_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
# Answers only a person can fix (the app reinstalled with the scope Slack names): no retry at all, a
# dead letter at once, put back with `vigil outbox retry` after the fix.
NEEDS_A_PERSON = {"missing_scope"}


def can_succeed_later(failure: Exception) -> bool:
    """True for outages (network, timeouts, Slack 5xx and 429, the database): retried for as long as
    they last. False for a failure retrying cannot fix (a missing scope, a refused payload, a bug):
    after DEAD_AFTER_ATTEMPTS such an item goes to the dead letters instead of looping forever."""
    if isinstance(failure, SlackApiError):
        status = failure.response.status_code
        return status >= 500 or status == 429 or failure.response.get("error") in TRANSIENT_SLACK_ERRORS
    if getattr(failure, "retry_later", False):  # another service's outage (a ticket tracker's 5xx, 429)
        return True
    return isinstance(failure, (OSError, TimeoutError, ConnectionError)) or is_unreachable(failure)


def needs_a_person(failure: Exception) -> bool:
    """A missing scope: repeating the call gets the same answer until someone reinstalls the app."""
    return isinstance(failure, SlackApiError) and failure.response.get("error") in NEEDS_A_PERSON


class OutboxSender:
    def __init__(self, database: Database, handle: Callable[[str, dict], dict], *, worker: str,
                 hold_seconds: int = 120, not_ready: type[Exception] | tuple = (),
                 dead_after: int = DEAD_AFTER_ATTEMPTS):
        self.database, self.handle, self.worker, self.dead_after = database, handle, worker, dead_after
        self.hold_seconds, self.not_ready = hold_seconds, not_ready
        # Outcomes (done / retry later / hand back) the database could not take when they happened,
        # oldest first; written before anything else once it is back.
        self._unwritten: list[Callable[[Session], object]] = []

    def run_once(self, limit: int = 20) -> int:
        """Deliver what is due now; returns how many items were delivered.

        One statement claims the batch and returns its items. Each item's outcome is committed right
        after its Slack call, before the next one: a crash (kill -9) mid-batch then repeats at most
        the one call in flight, never the posts already made (docs/architecture.md, "The narrow window").
        """
        self._write_outcomes()
        try:
            with self.database.session() as session:
                items = service.claim_due(session, worker=self.worker, limit=limit, hold_seconds=self.hold_seconds)
        except Exception:
            # The claims may be committed even though we never got the items: hand back all we hold.
            self._unwritten.append(lambda session: service.release_claims(session, worker=self.worker))
            raise
        prepare = getattr(self.handle, "prepare_batch", None)
        if items and prepare is not None:  # the handler reads what the whole batch needs at once
            prepare([(item.kind, item.payload) for item in items])
        delivered = 0
        for position, item in enumerate(items):
            try:
                delivered += self._deliver(item, items[position + 1:])
            except Exception:
                # The database went away mid-batch: hand the rest back as soon as it returns, instead
                # of leaving them claimed (and late) until the claim expires.
                self._unwritten += [functools.partial(self._hand_back, rest.id) for rest in items[position + 1:]]
                raise
        return delivered

    def _claim_holds(self, item: OutboxItem, rest: list[OutboxItem]) -> bool:
        """True if at least half of `item`'s claim is left, after extending the claims of it and the
        rest of the batch (one statement) when less was. Most batches never need the statement."""
        if item.claimed_until is None:  # lost when an earlier item extended the batch
            return False
        if clock.to_utc(item.claimed_until) - clock.now() >= timedelta(seconds=self.hold_seconds / 2):
            return True
        waiting = [item, *(other for other in rest if other.claimed_until is not None)]
        until = clock.now() + timedelta(seconds=self.hold_seconds)  # no later than what the database records
        try:
            with self.database.transaction() as connection:
                kept = service.extend_claims(connection, item_ids=[w.id for w in waiting], worker=self.worker,
                                             hold_seconds=self.hold_seconds)
        except Exception:
            self._unwritten.append(functools.partial(self._hand_back, item.id))
            raise
        for other in waiting:
            other.claimed_until = until if other.id in kept else None
        return item.id in kept

    def _record(self, write: Callable[[Session], object]) -> None:
        """Write an item's outcome; if the database cannot take it now, keep it for later and raise.

        A delivered item whose `done` is lost would stay claimed, and be sent again when the claim
        expires: a database outage must not turn into duplicate Slack messages.
        """
        self._unwritten.append(write)
        self._write_outcomes()

    def _write_outcomes(self) -> None:
        while self._unwritten:
            with self.database.transaction() as connection:
                self._unwritten[0](connection)
            self._unwritten.pop(0)

    def _hand_back(self, item_id: int, session: Session) -> None:
        service.reschedule(session, item_id=item_id, worker=self.worker, delay_seconds=0,
                           error="database unreachable before sending", count_attempt=False)

    def _complete(self, item_id: int, result: dict, session: Session) -> None:
        if not service.complete(session, item_id=item_id, worker=self.worker, result=result):
            log.warning("outbox item %s was delivered after its claim expired", item_id)

    def _deliver(self, item: OutboxItem, rest: list[OutboxItem] = ()) -> int:
        if not self._claim_holds(item, list(rest)):
            log.warning("outbox item %s: claim expired before it could be sent; left to the next claim", item.id)
            return 0
        try:
            result = self.handle(item.kind, item.payload)
        except self.not_ready as waiting:
            OUTBOX_DELIVERIES.labels(item.kind, "not_ready").inc()
            self._record(functools.partial(service.reschedule, item_id=item.id, worker=self.worker,
                                           delay_seconds=NOT_READY_DELAY_SECONDS, error=str(waiting),
                                           count_attempt=False))
            return 0
        except Exception as failure:  # noqa: BLE001 - retried later, or kept as a dead letter: never lost
            if (item.attempts >= self.dead_after or needs_a_person(failure)) and not can_succeed_later(failure):
                OUTBOX_DELIVERIES.labels(item.kind, "dead").inc()
                log.error("outbox item %s (%s) failed %s times and will not be retried until someone does "
                          "(`vigil outbox list --dead`, `vigil outbox retry %s`): %s", item.id, item.kind,
                          item.attempts, item.id, describe_failure(failure),
                          extra={"outbox_item": item.id, "subject": item.subject})
                self._record(functools.partial(service.dead_letter, item_id=item.id, worker=self.worker,
                                               error=describe_failure(failure)))
                return 0
            delay = retry_delay(item, failure)
            OUTBOX_DELIVERIES.labels(item.kind, "failed").inc()
            log.warning("outbox item %s (%s) failed, attempt %s, retry in %.0fs: %s", item.id, item.kind,
                        item.attempts, delay, describe_failure(failure),
                        extra={"outbox_item": item.id, "subject": item.subject})
            self._record(functools.partial(service.reschedule, item_id=item.id, worker=self.worker,
                                           delay_seconds=delay, error=describe_failure(failure)))
            return 0
        OUTBOX_DELIVERIES.labels(item.kind, "delivered").inc()
        self._record(functools.partial(self._complete, item.id, result))
        return 1
