"""The register as it stood at the end of a date, rebuilt from the events alone (E7).

`risk.created` carries the full state and every later change carries from/to values
(vigil_ir.risks.history), so folding each `risk:<n>` stream up to a moment gives the risk as it was
then. The live register goes through the same row function, so the two can be compared.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import Text, cast
from sqlmodel import Session, select

from vigil_ir.people import Directory
from vigil_ir.people.columns import PersonColumn, name_cell, parse_when, with_name_columns
from vigil_ir.eventlog import Event
from vigil_ir.eventlog.canonical import canonical_json
from vigil_ir.jsontext import parse_json
from vigil_ir.risks import cadence as cadences
from vigil_ir.risks import history
from vigil_ir.risks.models import Risk
from vigil_ir.risks.queries import review_state
from vigil_ir.risks.scoring import methodology

BASE_COLUMNS = ("as_of", "risk_ref", "title", "statement", "description", "category", "risk_type", "tsc_refs",
           "source", "owner", "inherent_likelihood", "inherent_impact", "inherent_score", "inherent_level",
           "residual_likelihood", "residual_impact", "residual_score", "residual_level", "treatment",
           "treatment_plan", "treatment_due_at", "acceptance_expires_at", "status", "closure_reason",
           "review_cadence", "next_review_due_at", "review_state", "last_reviewed_at", "last_reviewed_by",
           "linked_incident_refs", "methodology_version", "created_at", "created_by", "updated_at", "version",
           "record_hash")
# The owner as named at the end of the period, the reviewer when they reviewed, the creator when they created.
PEOPLE = (PersonColumn("owner", at="as_of"), PersonColumn("last_reviewed_by", at="last_reviewed_at"),
          PersonColumn("created_by", at="created_at"))
COLUMNS = with_name_columns(BASE_COLUMNS, PEOPLE)
ROWS_PER_FETCH = 500


def end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, timezone.utc)


def states_as_of(session: Session, end: datetime) -> dict[int, dict[str, Any]]:
    """Each risk's snapshot (JSON form) after its last event recorded before `end`.

    Events are fetched in pages (yield_per), so a year of a large register never sits in memory
    at once: only the folded states do."""
    table = Event.__table__
    # The risk streams also as a range of stream names, which the (stream, seq) index serves: SQLite
    # matches LIKE case-insensitively, so it cannot use the index for it and read every event's key.
    # The range compares bytes (collation "C" on PostgreSQL, whose locale order may skip punctuation).
    name = table.c.stream.collate("C") if session.get_bind().dialect.name == "postgresql" else table.c.stream
    # `data` as its stored text, parsed by parse_json (a third of json.loads's time, the same values).
    query = (select(table.c.stream, table.c.kind, cast(table.c.data, Text))
             .where(table.c.stream.like("risk:%"), name >= "risk:", name < "risk;", table.c.recorded_at < end)
             .order_by(table.c.stream, table.c.stream_seq).execution_options(yield_per=ROWS_PER_FETCH))
    states: dict[int, dict[str, Any]] = {}
    for stream, kind, data in session.connection().execute(query):
        number = int(stream.split(":")[1])
        state = history.replay(states.get(number), kind, parse_json(data))
        if state is not None:
            states[number] = state
    return states


def live_states(session: Session) -> dict[int, dict[str, Any]]:
    return {risk.number: history.snapshot(risk) for risk in session.exec(select(Risk))}


def row(state: dict[str, Any], as_of: date, people: Directory) -> dict[str, Any]:
    m = methodology(state["methodology"])
    inherent_score, inherent_level = m.rate(state["inherent_likelihood"], state["inherent_impact"])
    residual_score, residual_level = m.rate(state["residual_likelihood"], state["residual_impact"])
    next_due = history.from_json("next_review_due", state["next_review_due"])
    owner, reviewer, creator = state["owner"], state["last_reviewed_by"], state["created_by"]
    # The people's names (PEOPLE, each as at its act) set as the row is built, each after its id
    # column, as add_names would set them: rebuilding the row for them cost more than naming.
    return {
        "as_of": as_of.isoformat(), "risk_ref": f"RISK-{state['number']}", "title": state["title"],
        "statement": state["statement"], "description": state["description"], "category": state["category"],
        "risk_type": state["risk_type"], "tsc_refs": ";".join(state["tsc_refs"]), "source": state["source"],
        "owner": owner, "owner_name": name_cell(people, owner, parse_when(as_of) if owner else None),
        "inherent_likelihood": state["inherent_likelihood"],
        "inherent_impact": state["inherent_impact"], "inherent_score": inherent_score,
        "inherent_level": inherent_level, "residual_likelihood": state["residual_likelihood"],
        "residual_impact": state["residual_impact"], "residual_score": residual_score,
        "residual_level": residual_level, "treatment": state["treatment"], "treatment_plan": state["treatment_plan"],
        "treatment_due_at": state["treatment_due"], "acceptance_expires_at": state["acceptance_expires"],
        "status": state["status"], "closure_reason": state["closure_reason"],
        "review_cadence": cadences.effective(state["cadence"], inherent_level, m.default_cadence),
        "next_review_due_at": state["next_review_due"],
        "review_state": review_state(next_due, state["status"], as_of),
        "last_reviewed_at": state["last_reviewed_at"], "last_reviewed_by": reviewer,
        "last_reviewed_by_name": name_cell(people, reviewer,
                                           parse_when(state["last_reviewed_at"]) if reviewer else None),
        "linked_incident_refs": ";".join(state["linked_incidents"]), "methodology_version": state["methodology"],
        "created_at": state["created_at"], "created_by": creator,
        "created_by_name": name_cell(people, creator, parse_when(state["created_at"]) if creator else None),
        "updated_at": state["updated_at"],
        "version": state["version"],
        "record_hash": hashlib.sha256(canonical_json(state).encode("utf-8")).hexdigest(),
    }


def register(session: Session, as_of: date | None = None, *, today: date | None = None) -> list[dict[str, Any]]:
    """E7 rows: from the events when `as_of` is given, else the live tables (as of `today`)."""
    if as_of is None:
        states, on = live_states(session), today
    else:
        states, on = states_as_of(session, end_of(as_of)), as_of
    people = Directory.load(session)
    return [row(states[number], on, people) for number in sorted(states)]
