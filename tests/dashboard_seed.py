"""A small, known dataset for the dashboard tests, written through the domain functions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from vigil_ir import clock
from vigil_ir.auth import tokens
from vigil_ir.incidents import queries, service
from vigil_ir.playbooks import runner
from vigil_ir.playbooks.loader import load_file
from tests.conftest import PLAYBOOK_FIXTURES

T0 = datetime(2025, 3, 10, 9, 0, tzinfo=timezone.utc)
HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


def seed(db) -> dict[str, str]:
    """INC-1 (sev2 availability, resolved, with a playbook and hostile text), INC-2 (sev1 security,
    open), INC-3 (sev4 other, July), and RISK-1. Returns the keys."""
    with clock.frozen(T0), db.session() as s:
        first = service.declare(s, actor="U0DECLARER", title=f"Checkout down {HOSTILE}", severity="sev2",
                                type="availability", description="Checkout API returns 500s")
    with clock.frozen(T0 + timedelta(minutes=3)), db.session() as s:
        incident = queries.by_key(s, first.key)
        service.assign_role(s, incident=incident, actor="U0DECLARER", role="lead", user="U0LEAD")
        run = runner.attach(s, incident=incident, actor="U0LEAD", file=load_file(PLAYBOOK_FIXTURES / "generic.yaml"))
        step = runner.steps_for(s, run)[0]
        runner.complete_step(s, incident=incident, run=run, step=step, actor="U0LEAD",
                             evidence=f"Summary posted {HOSTILE}")
    with clock.frozen(T0 + timedelta(minutes=9)), db.session() as s:
        incident = queries.by_key(s, first.key)
        service.add_note(s, incident=incident, actor="U0LEAD", text=f"Rolled back {HOSTILE}")
        service.set_status(s, incident=incident, actor="U0LEAD", status="monitoring")
    with clock.frozen(T0 + timedelta(minutes=30)), db.session() as s:
        service.resolve(s, incident=queries.by_key(s, first.key), actor="U0LEAD")
    with clock.frozen(datetime(2025, 5, 1, 12, tzinfo=timezone.utc)), db.session() as s:
        service.declare(s, actor="U0SEC", title="Leaked API key", severity="sev1", type="security")
    with clock.frozen(datetime(2025, 7, 1, 12, tzinfo=timezone.utc)), db.session() as s:
        service.declare(s, actor="U0DECLARER", title="Slow reports page", severity="sev4", type="other")
    with clock.frozen(datetime(2025, 2, 1, 12, tzinfo=timezone.utc)), db.session() as s:
        from vigil_ir.risks import service as risks

        risks.create(s, actor="U0OWNER", raw={
            "title": f"Vendor outage {HOSTILE}", "statement": "A payment vendor outage stops checkout",
            "category": "vendor", "risk_type": "external", "owner": "U0OWNER",
            "inherent_likelihood": "4", "inherent_impact": "5", "residual_likelihood": "2",
            "residual_impact": "4", "treatment": "mitigate", "treatment_plan": "Second vendor"})
    return {"incident": first.key}


def make_token(db, *, name: str = "Acme Audit LLP", days: float = 30, revoked: bool = False) -> tuple[int, str]:
    """(token id, secret); `days` may be negative for a token that has already expired."""
    now = clock.now()
    created = now - timedelta(days=1 - min(days, 0))  # an expired token was created before it expired
    with clock.frozen(created), db.session() as s:
        new = tokens.create(s, name=name, expires_at=now + timedelta(days=days), actor="cli:test")
        if revoked:
            tokens.revoke(s, token_id=new.token.id, actor="cli:test")
    return new.token.id, new.secret
