"""Every state table checked against the events it comes from (`vigil verify`, `vigil export bundle`).

One fold per record type (each domain's `fold` module); the incident stream feeds three of them
(the incident, its post-incident review, its playbook runs). The folds see each event once, in
stream order, and compare finished streams with their rows in batches: see vigil_ir.eventlog.folding.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from vigil_ir.eventlog.folding import BATCH, Fold, Mismatch, StateCheck, collector_paused, walk_read
from vigil_ir.followup.fold import ActionFold, PirFold
from vigil_ir.incidents.access import check_grants
from vigil_ir.incidents.fold import IncidentFold
from vigil_ir.playbooks.fold import PlaybookFold
from vigil_ir.risks.fold import RiskFold
from vigil_ir.tickets.fold import TicketFold

# Named in the verify report: what "every state row" covers.
COVERED = ("incidents (and private incidents' access), risks, risk reviews, approvals, acceptances, follow-up "
           "actions, PIRs and playbook runs")


def folds() -> list[Fold]:
    # Exercises are incident rows on `exercise:<n>` streams: the same folds, once per prefix.
    return [IncidentFold(), IncidentFold(exercise=True), PirFold(), PirFold(exercise=True), PlaybookFold(),
            PlaybookFold(exercise=True), RiskFold(), ActionFold(), TicketFold()]


def checker(session: Session, *, before: datetime | None = None, batch: int = BATCH) -> StateCheck:
    """A StateCheck to feed events to (verify feeds it the events it hashes, in the same pass)."""
    return StateCheck(session, folds(), before=before, batch=batch)


def finish(check: StateCheck, session: Session) -> list[Mismatch]:
    """The check's differences, with private incidents' access rows against their grant events."""
    check.finish()
    check.add(check_grants(session))
    return check.found


def check_state(session: Session, *, before: datetime | None = None) -> StateCheck:
    """Read the record streams and compare them with the rows; `.finish()` was called: see `.found`, `.count`.

    `before`: only records whose stream began before this time (an export's period end)."""
    with collector_paused():
        check = checker(session, before=before)
        for event in walk_read(session, check.folds):
            check.feed(event)
        finish(check, session)
    return check
