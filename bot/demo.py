"""`vigil demo`: a clearly labelled sample quarter in an empty database, so a newcomer has something
to look at (the dashboard, the exports, a verifying bundle) before connecting Slack.

Everything is made through the same domain functions Slack and the CLI use, at the times it
"happened" (the clock is set for each step), so the events, chains and exports are real. Every
title starts with "[Demo]" and every person is a "(demo)" person with an example.com address.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.auth import tokens
from vigil_ir.config import Settings
from vigil_ir.db import Database
from vigil_ir.followup import actions, pir
from vigil_ir.followup.models import ActionItem
from vigil_ir.followup.policy import Policy
from vigil_ir.incidents import queries, service
from vigil_ir.incidents.models import Incident
from vigil_ir.people.service import Profile, record_profile
from vigil_ir.playbooks import runner
from vigil_ir.risks import approvals, reviews
from vigil_ir.risks import service as risks
from vigil_ir.risks.models import Risk

LABEL = "[Demo]"
PEOPLE = {
    "U0DEMOLEAD": ("Dana Kim", "Incident commander"),
    "U0DEMOSRE": ("Sam Ortiz", "Site reliability engineer"),
    "U0DEMOSEC": ("Priya Nair", "Security lead"),
    "U0DEMOCOMMS": ("Lee Wong", "Support manager"),
    "U0DEMOCISO": ("Morgan Blake", "Chief information security officer"),
}
LEAD, SRE, SEC, COMMS, CISO = PEOPLE
DEMO_ADMIN = CISO  # approves the acceptance (a second person, never the risk owner)


class DemoRefused(Exception):
    """The database already holds records; the demo only fills an empty one."""


@dataclass(frozen=True)
class DemoResult:
    period_start: date
    period_end: date
    incidents: list[str]
    risks: list[str]
    token: str
    token_expires: datetime


def demo_quarter(today: date) -> tuple[date, date]:
    """The last full calendar quarter before `today`."""
    first_of_this = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    last = first_of_this - timedelta(days=1)
    return date(last.year, 3 * ((last.month - 1) // 3) + 1, 1), last


class Quarter:
    """One transaction for the whole demo (a failure leaves the database empty), with the clock set
    to when each step "happened"."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @contextmanager
    def at(self, moment: datetime) -> Iterator[Session]:
        with clock.frozen(moment):
            yield self.session
            self.session.flush()


def fill(database: Database, settings: Settings, library: dict, *, token_days: int = 30) -> DemoResult:
    """Fill an empty database, attaching playbooks from `library`; DemoRefused (writing nothing) if
    it holds any incident, risk or action."""
    with database.read_session() as session:
        # Start-up's own records (the configuration in force, an export receipt) don't count.
        if any(session.exec(select(func.count()).select_from(table)).one() for table in (Incident, Risk, ActionItem)):
            raise DemoRefused("The database already holds incidents, risks or actions; `vigil demo` only fills an "
                              "empty one (point DATABASE_URL at a new SQLite file, e.g. sqlite:///demo.db).")
    policy = Policy.from_settings(settings)
    start, end = demo_quarter(clock.now().date())

    def day(n: int, hour: int = 9, minute: int = 0) -> datetime:
        """`hour:minute` UTC on the quarter's day `n` (0 = its first day)."""
        return datetime.combine(start + timedelta(days=n), time(hour, minute), tzinfo=timezone.utc)

    with database.session() as session:
        q = Quarter(session)
        _people(q, day)
        incidents = [_outage(q, library, policy, day), _leaked_key(q, library, policy, day), _slow_search(q, day)]
        risk_keys = _register(q, day)
        new = tokens.create(session, name="Demo auditor", expires_at=clock.now() + timedelta(days=token_days),
                            actor="cli:demo")
        secret, expires = new.secret, new.token.expires_at
    return DemoResult(start, end, incidents, risk_keys, secret, expires)


def _people(q: Quarter, day) -> None:
    with q.at(day(0, 8)) as session:
        for user_id, (name, title) in PEOPLE.items():
            record_profile(session, user_id=user_id, actor="cli:demo", profile=Profile(
                name=name.split()[0].lower(), real_name=f"{name} (demo)", display_name=name.split()[0],
                email=f"{name.split()[0].lower()}@example.com", title=title, tz="Europe/London"))


def _steps_done(session: Session, incident: Incident, run, actor: str, evidence: str) -> None:
    for step in runner.steps_for(session, run):
        if step.status == "open":
            given = (f"https://tickets.example.com/demo/{incident.key}/{step.step_id}" if step.evidence == "link"
                     else f"{evidence}: {step.title}")
            runner.complete_step(session, incident=incident, run=run, step=step, actor=actor, evidence=given)


def _close(session: Session, incident: Incident, actor: str, **form) -> None:
    """As the close form does: close, then one follow-up action per line."""
    open_items = runner.close_blockers(session, incident)
    service.close(session, incident=incident, actor=actor, admins=frozenset(), open_items=open_items,
                  override_reason="Demo data: remaining items tracked as follow-up actions" if open_items else "",
                  **form)
    actions.create_from_lines(session, incident=incident, actor=actor, lines=incident.follow_ups)


def _outage(q: Quarter, library, policy: Policy, day) -> str:
    with q.at(day(12, 14, 2)) as session:
        declared = service.declare(session, actor=SRE, title=f"{LABEL} Checkout API returning 500s",
                                   severity="sev2", type="availability",
                                   description="Error rate on /checkout above 30 % since 13:55 UTC.")
        key = declared.key
    with q.at(day(12, 14, 6)) as session:
        incident = queries.by_key(session, key)
        service.assign_role(session, incident=incident, actor=SRE, role="lead", user=LEAD)
        service.assign_role(session, incident=incident, actor=LEAD, role="comms", user=COMMS)
        run = runner.attach(session, incident=incident, actor=LEAD, file=library["service-outage"])
    with q.at(day(12, 14, 20)) as session:
        incident = queries.by_key(session, key)
        service.add_note(session, incident=incident, actor=SRE,
                         text="Deploy 2024.7.3 raised the DB pool size; connections exhausted.")
        service.set_status(session, incident=incident, actor=LEAD, status="identified")
        service.post_update(session, incident=incident, actor=COMMS, status="identified",
                            summary="Checkout failing for some customers; cause found, rollback under way.")
    with q.at(day(12, 14, 41)) as session:
        incident = queries.by_key(session, key)
        service.set_status(session, incident=incident, actor=LEAD, status="monitoring")
        _steps_done(session, incident, runner.runs_for(session, incident)[0], LEAD, "Done during the rollback")
    with q.at(day(12, 15, 10)) as session:
        service.resolve(session, incident=queries.by_key(session, key), actor=LEAD)
    with q.at(day(14, 10)) as session:
        incident = queries.by_key(session, key)
        pir.complete(session, incident=incident, actor=LEAD, policy=policy, held_at=day(14, 10),
                     attendees=[LEAD, SRE, COMMS], plan_change_needed=False, values={
                         "summary": "A configuration change shipped with a deploy exhausted the DB pool.",
                         "root_cause": "Pool size is not validated against the database's connection limit.",
                         "went_well": "Rollback in 20 minutes; customers told within 15.",
                         "went_poorly": "The alert fired 6 minutes after errors began."})
        _close(session, incident, LEAD, customer_impact="About 4 % of checkouts failed for 47 minutes.",
               cause_category="change",
               root_cause="DB connection pool exhausted after a configuration change.",
               lessons_learned="Validate pool settings in CI.",
               follow_ups=[f"{(day(40).date()).isoformat()} Validate DB pool size against max_connections in CI"])
    with q.at(day(30, 11)) as session:
        incident = queries.by_key(session, key)
        (action,) = actions.listing(session, "open", incident=incident)
        actions.complete(session, action=action, actor=LEAD, evidence="CI check merged (PR 1234, demo)")
    return key


def _leaked_key(q: Quarter, library, policy: Policy, day) -> str:
    with q.at(day(41, 9, 15)) as session:
        key = service.declare(session, actor=SEC, title=f"{LABEL} Cloud access key pushed to a public repository",
                              severity="sev1", type="security",
                              description="Secret scanning flagged an access key in a public repository.").key
    with q.at(day(41, 9, 17)) as session:
        incident = queries.by_key(session, key)
        service.assign_role(session, incident=incident, actor=SEC, role="lead", user=SEC)
        runner.attach(session, incident=incident, actor=SEC, file=library["leaked-credential"])
    with q.at(day(41, 9, 40)) as session:
        incident = queries.by_key(session, key)
        service.add_note(session, incident=incident, actor=SEC, text="Key revoked; CloudTrail shows no use of it.")
        _steps_done(session, incident, runner.runs_for(session, incident)[0], SEC, "Checked and recorded")
        service.set_status(session, incident=incident, actor=SEC, status="monitoring")
    with q.at(day(41, 12)) as session:
        service.resolve(session, incident=queries.by_key(session, key), actor=SEC)
    with q.at(day(43, 15)) as session:
        incident = queries.by_key(session, key)
        pir.complete(session, incident=incident, actor=SEC, policy=policy, held_at=day(43, 15),
                     attendees=[SEC, CISO, SRE], plan_change_needed=True, values={
                         "summary": "A developer committed a key to a public fork; revoked within 25 minutes.",
                         "root_cause": "Long-lived access keys on developer machines.",
                         "went_well": "Secret scanning caught it within minutes.",
                         "went_poorly": "Nobody knew which team owned the key."})
        _close(session, incident, SEC, customer_impact="None: the key was never used.", cause_category="access",
               root_cause="A long-lived access key on a developer machine.",
               lessons_learned="Move developers to short-lived credentials.",
               follow_ups=[f"{(day(80).date()).isoformat()} Replace long-lived developer keys with SSO sessions"])
    return key


def _slow_search(q: Quarter, day) -> str:
    with q.at(day(85, 16, 30)) as session:
        key = service.declare(session, actor=COMMS, title=f"{LABEL} Search results slow for EU customers",
                              severity="sev3", type="availability").key
    with q.at(day(85, 16, 45)) as session:
        incident = queries.by_key(session, key)
        service.assign_role(session, incident=incident, actor=COMMS, role="lead", user=SRE)
        service.add_note(session, incident=incident, actor=SRE, text="Index rebuild running in eu-west.")
        service.set_status(session, incident=incident, actor=SRE, status="monitoring")
    return key


def _register(q: Quarter, day) -> list[str]:
    risks_made = []
    for raw in (
        {"title": f"{LABEL} Payment provider outage", "statement": "If the payment provider is down, checkout stops.",
         "category": "vendor", "risk_type": "external", "owner": LEAD, "inherent_likelihood": "3",
         "inherent_impact": "5", "residual_likelihood": "2", "residual_impact": "4", "treatment": "mitigate",
         "treatment_plan": "Add a second payment provider with automatic failover.", "tsc_refs": "CC9.2, A1.2, A.5.22"},
        {"title": f"{LABEL} Leaked long-lived credentials", "statement": "A leaked key gives an attacker cloud access.",
         "category": "security", "risk_type": "internal", "owner": SEC, "inherent_likelihood": "4",
         "inherent_impact": "5", "residual_likelihood": "2", "residual_impact": "5", "treatment": "mitigate",
         "treatment_plan": "Secret scanning; short-lived credentials.", "tsc_refs": "CC6.1, A.5.17"},
        {"title": f"{LABEL} Office Wi-Fi without network segmentation", "statement":
         "A compromised guest device could reach office printers.", "category": "security",
         "risk_type": "internal", "owner": SRE, "inherent_likelihood": "2", "inherent_impact": "2",
         "residual_likelihood": "2", "residual_impact": "2", "treatment": "mitigate",
         "treatment_plan": "Separate guest network.", "tsc_refs": "CC6.6, A.8.22"},
    ):
        with q.at(day(2, 10)) as session:
            risks_made.append(risks.create(session, actor=raw["owner"], raw=raw).key)
    payment, credentials, wifi = risks_made
    with q.at(day(20, 11)) as session:
        risk = session.exec(select(Risk).where(Risk.number == int(payment.split("-")[1]))).one()
        reviews.complete(session, risk=risk, review=risks.open_reviews(session, risk)[0], actor=LEAD,
                         approvers=frozenset({DEMO_ADMIN}), given={
                             "outcome": "no_change", "rationale": "Failover tested in the outage game day; "
                                                                  "scores still right."})
    with q.at(day(50, 11)) as session:
        risk = session.exec(select(Risk).where(Risk.number == int(credentials.split("-")[1]))).one()
        reviews.complete(session, risk=risk, review=risks.open_reviews(session, risk)[0], actor=SEC,
                         approvers=frozenset({DEMO_ADMIN}), given={
                             "outcome": "treatment_changed", "rationale": "After the leaked key incident we move "
                                                                          "to SSO sessions for developers.",
                             "treatment_plan": "SSO sessions for developers; secret scanning on every repo."})
    with q.at(day(60, 11)) as session:
        risk = session.exec(select(Risk).where(Risk.number == int(wifi.split("-")[1]))).one()
        done = reviews.complete(session, risk=risk, review=risks.open_reviews(session, risk)[0], actor=SRE,
                                approvers=frozenset({DEMO_ADMIN}), given={
                                    "outcome": "acceptance_requested", "treatment": "accept",
                                    "rationale": "Low score; segmentation costs more than the risk for now.",
                                    "acceptance_expires": (day(60).date() + timedelta(days=180)).isoformat()})
    with q.at(day(61, 9)) as session:
        approvals.approve(session, approval=session.get(type(done.approval), done.approval.id), actor=DEMO_ADMIN,
                          approvers=frozenset({DEMO_ADMIN}), comment="Accepted until the office move.")
    return risks_made
