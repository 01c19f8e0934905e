"""A risk's rows as its `risk:<n>` stream says they are: the risk, its reviews, approvals and acceptances.

The risk itself is replayed with vigil_ir.risks.history (the same replay as the register as of a
date). Reviews, approvals and acceptances have no stream of their own: their life is told by the
risk's events (review opened, reviewed, rescheduled, approval requested/granted/rejected, acceptance
expired), which carry their refs (`RRV-<id>`, the approval id, `RAC-<id>`). Not compared, because
they are not evidence: a review's reminder counters (`reminder_rank`, `reminders_sent`), which the
reminder sweep keeps to send each reminder once (the reminders themselves are `risk.reminder_sent`
events).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Date, bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from vigil_ir.eventlog.folding import (Mismatch, dicts_where_in, differences, json_text, read_column, rows_where_in,
                                      streams_without, times_agree)
from vigil_ir.risks import history
from vigil_ir.risks.models import Risk, RiskAcceptance, RiskApproval, RiskReview
from vigil_ir.risks.scoring import methodology

STREAM_PREFIX = "risk:"
REVIEW_FIELDS = ("trigger", "trigger_ref", "due_on", "reviewer", "status", "completed_by", "outcome", "rationale",
                 "before", "after", "changed_fields", "on_time", "days_late", "requires_approval", "approval_state",
                 "cancelled_reason")
APPROVAL_FIELDS = ("review_id", "reasons", "proposal", "approvers", "requested_by", "state", "decided_by", "comment")
ACCEPTANCE_FIELDS = ("review_id", "requested_by", "approved_by", "justification", "residual_level", "expires_on",
                     "state")
# The rows a risk's events tell of besides the risk: their compared fields, then their clock readings
# (the row's own times, compared with their events' within CLOCK_SKEW).
CHILDREN = (("review", RiskReview, REVIEW_FIELDS, ("created_at", "completed_at")),
            ("approval", RiskApproval, APPROVAL_FIELDS, ("requested_at", "decided_at")),
            ("acceptance", RiskAcceptance, ACCEPTANCE_FIELDS, ("approved_at", "ended_at")))
LABELS = {"review": "RRV-{} of ", "approval": "approval {} of ", "acceptance": "RAC-{} of "}
# The positions of the date columns among each one's compared fields.
DATED = {name: tuple(index for index, field in enumerate(fields) if isinstance(model.__table__.c[field].type, Date))
         for name, model, fields, _ in CHILDREN}
# What a review may propose (vigil_ir.risks.reviews.evaluate): the fields of its `after`.
PROPOSABLE = ("inherent_likelihood", "inherent_impact", "residual_likelihood", "residual_impact", "treatment",
              "treatment_plan", "treatment_due", "status", "acceptance_expires", "closure_reason")


def ref_id(ref: str | int) -> int:
    return ref if isinstance(ref, int) else int(str(ref).rpartition("-")[2])


def proposal_applied(before: dict[str, Any], after: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The proposal of a review applied at once (its event records the changes, not the proposal):
    the proposable fields that changed, plus the status and cleared expiry that evaluate() always adds
    to a treatment change, even when they equal the current values."""
    proposal = {name: changes[name]["to"] for name in PROPOSABLE if name in changes}
    if "treatment" in changes:
        proposal.setdefault("status", after["status"])
        if before["treatment"] == "accept":
            proposal.setdefault("acceptance_expires", None)
    return proposal


def residual_level(state: dict[str, Any]) -> str:
    m = methodology(state["methodology"])
    return m.level(m.score(state["residual_likelihood"], state["residual_impact"]))


class RiskFold:
    prefix = STREAM_PREFIX
    kinds = None  # the risk itself is replayed from every event on its stream

    def new(self, stream: str) -> dict[str, Any]:
        return {"risk": None, "reviews": {}, "approvals": {}, "acceptances": {}, "times": {}}

    def apply(self, state: dict[str, Any], event: Any) -> None:
        kind, data, at = event.kind, event.data or {}, event.recorded_at
        before = state["risk"]
        if before is None and kind != "risk.created":
            return  # nothing replays onto a risk its stream never created: `compare` reports that alone
        after = state["risk"] = history.replay(before, kind, data)
        changes = data.get("changes") or {}
        reviews, approvals, acceptances, times = (state["reviews"], state["approvals"], state["acceptances"],
                                                  state["times"])
        if kind == "risk.review_opened":
            review = ref_id(data["review"])
            reviews[review] = {
                "trigger": data["trigger"], "trigger_ref": data["trigger_ref"], "due_on": data["due_on"],
                "reviewer": data["reviewer"], "status": "open", "completed_by": None, "outcome": None,
                "rationale": None, "before": None, "after": None, "changed_fields": [], "on_time": None,
                "days_late": None, "requires_approval": False, "approval_state": None, "cancelled_reason": None}
            times[("review", review)] = {"created_at": at, "completed_at": None}
        elif kind == "risk.reviewed":
            review = ref_id(data["review"])
            reasons = data.get("approval_reasons") or []
            proposal = data.get("proposal") or {} if reasons else proposal_applied(before, after, changes)
            reviews.setdefault(review, {}).update(
                status="completed", completed_by=event.actor, outcome=data["outcome"], rationale=data["rationale"],
                before=before, after={**before, **proposal}, changed_fields=sorted(proposal), on_time=data["on_time"],
                days_late=data["days_late"], requires_approval=bool(reasons),
                approval_state="pending" if reasons else None)
            times.setdefault(("review", review), {"created_at": None})["completed_at"] = at
        elif kind == "risk.review_rescheduled":
            sooner = changes["next_review_due"]["to"]
            for review in reviews.values():
                if review.get("status") == "open" and review.get("trigger") == "scheduled":
                    review.update(status="cancelled", cancelled_reason=f"rescheduled to {sooner}")
        elif kind == "risk.approval_requested":
            approval = data["approval"]
            approvals[approval] = {
                "review_id": ref_id(data["review"]), "reasons": data["reasons"], "proposal": data["proposal"],
                "approvers": data["approvers"], "requested_by": event.actor, "state": "pending", "decided_by": None,
                "comment": None}
            times[("approval", approval)] = {"requested_at": at, "decided_at": None}
        elif kind in ("risk.approval_granted", "risk.approval_rejected"):
            decided = "approved" if kind == "risk.approval_granted" else "rejected"
            approval = approvals.setdefault(data["approval"], {})
            approval.update(state=decided, decided_by=event.actor, comment=data.get("comment"))
            times.setdefault(("approval", data["approval"]), {"requested_at": None})["decided_at"] = at
            reviews.setdefault(ref_id(data["review"]), {})["approval_state"] = decided
        elif kind == "risk.acceptance_expired":
            acceptance = ref_id(data["acceptance"])
            acceptances.setdefault(acceptance, {})["state"] = "expired"
            times.setdefault(("acceptance", acceptance), {"approved_at": None})["ended_at"] = at
        if kind in ("risk.reviewed", "risk.approval_granted"):
            self._after_proposal(state, event.actor, data, at, before, after)

    def _after_proposal(self, state: dict[str, Any], actor: str, data: dict[str, Any], at: Any,
                        before: dict[str, Any], after: dict[str, Any]) -> None:
        """What applying a proposal does besides the risk (vigil_ir.risks.reviews.apply_proposal and
        approvals.approve): leaving `accept` or a renewal ends the active acceptance, closing cancels
        the open reviews, an approved acceptance request creates the acceptance. `data` and `at` are
        the event's, parsed once by `apply`."""
        times = state["times"]

        def end_active() -> None:
            for number, acceptance in state["acceptances"].items():
                if acceptance.get("state") == "active":
                    acceptance["state"] = "ended"
                    times[("acceptance", number)]["ended_at"] = at

        if before["treatment"] == "accept" and after["treatment"] != "accept":
            end_active()
        if after["status"] == "closed" and before["status"] != "closed":
            for review in state["reviews"].values():
                if review.get("status") == "open":
                    review.update(status="cancelled", cancelled_reason="risk closed")
        if data.get("acceptance"):
            end_active()
            number = ref_id(data["acceptance"])
            review = state["reviews"].get(ref_id(data["review"]), {})
            state["acceptances"][number] = {
                "review_id": ref_id(data["review"]),
                "requested_by": state["approvals"].get(data["approval"], {}).get("requested_by"),
                "approved_by": actor, "justification": review.get("rationale"),
                "residual_level": residual_level(after), "expires_on": after["acceptance_expires"], "state": "active"}
            times[("acceptance", number)] = {"approved_at": at, "ended_at": None}

    def compare(self, session: Session, finished: dict[str, dict[str, Any]]) -> Iterable[Mismatch]:
        numbers = [int(stream.removeprefix(STREAM_PREFIX)) for stream in finished]
        dialect = session.get_bind().dialect.name
        risks = {row[0]: row for row in session.execute(_risks_as_json(dialect), {"numbers": numbers})}
        ids = [row[1] for row in risks.values()]
        # Each child row as the tuple of its compared fields then its clock readings (CHILDREN), by risk
        # and id: the year's 25,000 reviews are compared as one list each, a dict per row built only
        # for one that differs, to name what does.
        children: dict[str, dict[int, dict[int, tuple]]] = {}
        for name, model, fields, clocks in CHILDREN:
            rows = children[name] = {}
            for row in rows_where_in(session, model, "risk_id", ids, ("risk_id", "id", *fields, *clocks)):
                rows.setdefault(row[0], {})[row[1]] = row[2:]
        for stream, state in finished.items():
            key = f"RISK-{stream.removeprefix(STREAM_PREFIX)}"
            risk = risks.get(int(stream.removeprefix(STREAM_PREFIX)))
            if risk is None:
                yield Mismatch(key, "row", "a risk row", "none (the row was removed)")
                continue
            if state["risk"] is None:  # its reviews, approvals and acceptances were not replayed either
                yield Mismatch(key, "created", "a risk.created event", "none in its stream")
                continue
            if dict(zip(history.FIELDS, risk[2:])) != state["risk"]:  # one comparison in C
                # Field by field, to name what differs, from the row read with its columns' types (the
                # text the database gives of a date or time may be written another way).
                typed = dicts_where_in(session, Risk, "number", [risk[0]])[0]
                yield from differences(key, state["risk"], history.snapshot_of_row(typed))
            for name, _, fields, clocks in CHILDREN:
                label = LABELS[name] + key
                rows = children[name].get(risk[1], {})
                for number, expected in state[name + "s"].items():
                    values = rows.pop(number, None)
                    if values is None:
                        article = "an" if name[0] in "aeiou" else "a"
                        yield Mismatch(label.format(number), "row", f"{article} {name} row",
                                       "none (the row was removed)")
                        continue
                    # The row's values as they are, but its dates in their JSON form: the only
                    # compared columns whose type JSON lacks (clock readings are compared as times).
                    found = list(values[:len(fields)])
                    for index in DATED[name]:
                        found[index] = history.to_json(found[index])
                    readings = dict(zip(clocks, values[len(fields):]))
                    times = state["times"].get((name, number), {})
                    if found != list(map(expected.get, fields)) or not times_agree(times, readings):
                        yield from differences(label.format(number), {field: expected.get(field) for field in fields},
                                               {**dict(zip(fields, found)), **readings}, times)
                for number in rows:
                    yield Mismatch(label.format(number), "events", f"the {name} in {key}'s events",
                                   "none (a row no event mentions)")

    def rows_without_events(self, session: Session) -> Iterable[Mismatch]:
        for number in session.exec(select(Risk.number).where(streams_without(Risk.number, STREAM_PREFIX))):
            yield Mismatch(f"RISK-{number}", "events", "its event stream", "none (a row without any event)")


@functools.cache
def _risks_as_json(dialect: str) -> Any:
    """The risks numbered :numbers, as (number, id, *history.FIELDS) in their snapshot's JSON form: the
    dates and times as the database writes them out (`json_text`), so that a row agreeing with its
    fold is compared with no conversion (formatting the year's 15,000 times was a tenth of its compare)."""
    table = Risk.__table__
    return (sa_select(table.c.number, table.c.id, *(json_text(table.c[name], dialect).label(name)
                                                    if name in history.TYPED_FIELDS else read_column(table.c[name])
                                                    for name in history.FIELDS))
            .where(table.c.number.in_(bindparam("numbers", expanding=True))))
