"""Helpers shared by the risk tests: raw field values and a risk made through the domain."""

from __future__ import annotations

from vigil_ir.risks import service
from vigil_ir.risks.models import Risk, RiskReview
from sqlmodel import select

OWNER, ADMIN, APPROVER, OTHER = "U0OWNER", "U0ADMIN", "U0APPROVER", "U0OTHER"


def raw(**overrides) -> dict:
    values = {"title": "Laptop theft exposes customer data",
              "statement": "Because laptops travel, one may be stolen, exposing customer data.",
              "category": "security", "risk_type": "internal", "owner": OWNER,
              "inherent_likelihood": "4", "inherent_impact": "4", "residual_likelihood": "3",
              "residual_impact": "3", "treatment": "mitigate", "treatment_plan": "Full-disk encryption",
              "tsc_refs": "CC6.1, CC6.7"}
    values.update(overrides)
    return values


def make_risk(db, **overrides) -> Risk:
    with db.session() as session:
        return service.create(session, actor=overrides.pop("actor", OWNER), raw=raw(**overrides))


def open_review(db, risk: Risk) -> RiskReview:
    with db.session() as session:
        return session.exec(select(RiskReview).where(RiskReview.risk_id == risk.id, RiskReview.status == "open")
                            .order_by(RiskReview.due_on)).first()


def reload(db, risk: Risk) -> Risk:
    with db.session() as session:
        return session.get(Risk, risk.id)


RISK_CHANNEL = "C0RISKS"


def harness(db, fake_slack, settings_for, **overrides):
    """The real app (signed HTTP, fake Slack) with a risk channel and an approver configured."""
    from vigil_ir.runtime import build_runtime
    from tests.conftest import VigilHarness

    values = {"DATABASE_URL": db.url, "VIGIL_RISK_CHANNEL": RISK_CHANNEL, "VIGIL_RISK_APPROVERS": APPROVER}
    values.update(overrides)
    return VigilHarness(build_runtime(settings_for(**values), db), fake_slack)
