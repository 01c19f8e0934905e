"""Creating risks and the changes made outside reviews. Each function changes state and appends
the event in the caller's transaction; it raises `RiskError` (fit to show the user) before
changing anything.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.incidents.models import Incident
from vigil_ir.keys import next_number
from vigil_ir.risks import cadence as cadences
from vigil_ir.risks import history
from vigil_ir.risks.models import Risk, RiskReview, status_for
from vigil_ir.risks.scoring import CURRENT, methodology
from vigil_ir.risks.validation import check_risk


class RiskError(ValueError):
    """A request that cannot be carried out; `field` names the input at fault when there is one."""

    def __init__(self, message: str, field: str | None = None, errors: dict[str, str] | None = None):
        super().__init__(message)
        self.field = field
        self.errors = errors or ({field: message} if field else {})


def today() -> date:
    return clock.to_utc(clock.now()).date()


def levels(risk: Risk) -> tuple[str, str]:
    m = methodology(risk.methodology)
    return (m.level(m.score(risk.inherent_likelihood, risk.inherent_impact)),
            m.level(m.score(risk.residual_likelihood, risk.residual_impact)))


def effective_cadence(risk: Risk) -> str:
    return cadences.effective(risk.cadence, levels(risk)[0], methodology(risk.methodology).default_cadence)


def next_due(risk: Risk, after: date) -> date:
    found = cadences.next_after(effective_cadence(risk), clock.to_utc(risk.created_at).date(), after)
    if found is None:  # validated on entry; an expired UNTIL still must not leave a risk unreviewed
        found = cadences.next_after(methodology(risk.methodology).default_cadence[levels(risk)[0]],
                                    clock.to_utc(risk.created_at).date(), after)
    return found


def missing_incidents(session: Session, keys: list[str]) -> list[str]:
    numbers = {int(key.split("-")[1]) for key in keys}
    found = set(session.exec(select(Incident.number).where(Incident.number.in_(numbers),
                                                            Incident.exercise.is_(False)))) if numbers else set()
    return [key for key in keys if int(key.split("-")[1]) not in found]


def validate_new(session: Session, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    values, errors = check_risk(raw, today=today())
    if "incidents" not in errors and (missing := missing_incidents(session, values["incidents"])):
        errors["incidents"] = f"No incident {', '.join(missing)} in Vigil."
    return values, errors


def create(session: Session, *, actor: str, raw: dict[str, Any], source: str = "manual") -> Risk:
    """Add a risk from raw field values (see vigil_ir.risks.validation) and schedule its first review."""
    values, errors = validate_new(session, raw)
    if errors:
        raise RiskError(" ".join(errors.values()), errors=errors)
    now = clock.to_utc(clock.now())
    risk = Risk(number=next_number(session, "risk"), title=values["title"], statement=values["statement"],
                description=values["description"], category=values["category"], risk_type=values["risk_type"],
                owner=values["owner"], methodology=CURRENT.version,
                inherent_likelihood=values["inherent_likelihood"], inherent_impact=values["inherent_impact"],
                residual_likelihood=values["residual_likelihood"], residual_impact=values["residual_impact"],
                treatment=values["treatment"], treatment_plan=values["treatment_plan"],
                treatment_due=values["treatment_due"], status=status_for(values["treatment"]),
                cadence=values["cadence"], tsc_refs=values["tsc_refs"], linked_incidents=values["incidents"],
                source=source, created_at=now, created_by=actor, updated_at=now, version=1)
    risk.next_review_due = values.get("next_review_due") or next_due(risk, now.date())
    history.create_event(session, risk, actor, {"key": risk.key})
    from vigil_ir.risks.reviews import open_review  # reviews builds on this module

    open_review(session, risk, trigger="scheduled", trigger_ref=risk.next_review_due.isoformat(),
                due_on=risk.next_review_due, actor=actor)
    return risk


def link_incident(session: Session, *, risk: Risk, actor: str, incident_key: str) -> Risk:
    if risk.status == "closed":
        raise RiskError(f"{risk.key} is closed; its record can no longer change.")
    if missing_incidents(session, [incident_key]):
        raise RiskError(f"There is no incident {incident_key} in Vigil.")
    if incident_key in risk.linked_incidents:
        raise RiskError(f"{incident_key} is already linked to {risk.key}.")
    before = history.snapshot(risk)
    risk.linked_incidents = [*risk.linked_incidents, incident_key]
    history.record(session, risk, "risk.incident_linked", actor, before, {"incident": incident_key})
    return risk


def open_reviews(session: Session, risk: Risk) -> list[RiskReview]:
    return list(session.exec(select(RiskReview).where(RiskReview.risk_id == risk.id, RiskReview.status == "open")
                             .order_by(RiskReview.due_on, RiskReview.id)))


def can_review(risk: Risk, user: str, privileged: frozenset[str]) -> bool:
    """The owner reviews their risk; admins and approvers may too (their review then needs approval)."""
    return user == risk.owner or user in privileged
