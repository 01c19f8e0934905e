"""Checking risk fields as people type them (modal, CSV): typed values plus errors keyed by field.

Field names double as the modal's block ids and the CSV's column names, so an error can be shown
next to the field that caused it.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from vigil_ir import criteria
from vigil_ir.risks import cadence as cadences
from vigil_ir.risks.models import CATEGORIES, RISK_TYPES, TREATMENTS
from vigil_ir.risks.scoring import CURRENT

TITLE_MAX, STATEMENT_MAX, TEXT_MAX = 120, 2000, 3000
RATINGS = ("inherent_likelihood", "inherent_impact", "residual_likelihood", "residual_impact")
PLAN_NEEDED = ("mitigate", "transfer", "avoid")
_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_INCIDENT = re.compile(r"^(?:INC-)?(\d+)$", re.IGNORECASE)
_SPLIT = re.compile(r"[\s,;]+")


def text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def rating(value: Any, axis: str) -> int:
    """1–5, given as a number or as the scale's label (`Likely`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raw = text(value)
        scale = CURRENT.likelihood if axis.endswith("likelihood") else CURRENT.impact
        by_label = {s.label.lower(): s.value for s in scale}
        number = by_label.get(raw.lower()) or (int(raw) if raw.isdigit() else 0)
    if not 1 <= number <= 5:
        labels = CURRENT.likelihood if axis.endswith("likelihood") else CURRENT.impact
        raise ValueError(f"must be 1–5 or a label ({', '.join(s.label for s in labels)}); got “{text(value)}”")
    return number


def parse_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    raw = text(value)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"must be a date as YYYY-MM-DD; got “{raw}”") from None


def parse_list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [text(v) for v in value if text(v)]
    return [part for part in _SPLIT.split(text(value)) if part]


def tsc_refs(value: Any) -> list[str]:
    """Criteria references, each one in a shipped catalogue (SOC 2 TSC or ISO/IEC 27001 Annex A)."""
    refs = [criteria.normalise(ref) for ref in parse_list(value)]
    bad = criteria.unknown(refs)
    if bad:
        hint = "".join(dict.fromkeys(criteria.suggestion(ref) for ref in bad))
        raise ValueError(f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not in the SOC 2 Trust Services "
                         f"Criteria or ISO/IEC 27001 Annex A (e.g. CC6.1, A1.2, A.5.24; `vigil criteria list` "
                         f"shows them all){hint}")
    return sorted(set(refs), key=refs.index)


def incident_keys(value: Any) -> list[str]:
    keys = []
    for part in parse_list(value):
        match = _INCIDENT.match(part)
        if not match:
            raise ValueError(f"“{part}” is not an incident key such as INC-12")
        keys.append(f"INC-{int(match.group(1))}")
    return sorted(set(keys), key=keys.index)


def check_risk(raw: dict[str, Any], *, today: date) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed values and errors ({field: message}) for a new risk."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    title = text(raw.get("title"))
    if not title:
        errors["title"] = "Give the risk a short title."
    elif len(title) > TITLE_MAX:
        errors["title"] = f"Keep the title under {TITLE_MAX} characters (it has {len(title)})."
    values["title"] = title
    for name, limit, required in (("statement", STATEMENT_MAX, True), ("description", TEXT_MAX, False),
                                  ("treatment_plan", TEXT_MAX, False)):
        values[name] = text(raw.get(name))
        if required and not values[name]:
            errors[name] = "Say what could happen: because of <cause>, <event> may occur, resulting in <impact>."
        elif len(values[name]) > limit:
            errors[name] = f"Keep this under {limit} characters (it has {len(values[name])})."
    values["category"] = text(raw.get("category")).lower()
    if values["category"] not in CATEGORIES:
        errors["category"] = f"Choose a category: {', '.join(CATEGORIES)}."
    values["risk_type"] = text(raw.get("risk_type")).lower()
    if values["risk_type"] not in RISK_TYPES:
        errors["risk_type"] = f"Choose a type: {', '.join(RISK_TYPES)}."
    values["owner"] = text(raw.get("owner"))
    if not _USER.match(values["owner"]):
        errors["owner"] = "Choose the owner: one accountable person (a Slack user)."
    for name in RATINGS:
        given = raw.get(name)
        if name.startswith("residual") and not text(given):
            values[name] = None
            continue
        try:
            values[name] = rating(given, name)
        except ValueError as problem:
            errors[name] = f"{name.replace('_', ' ').capitalize()} {problem}."
    for name in RATINGS[2:]:
        if values.get(name) is None and name not in errors:
            values[name] = values.get(name.replace("residual", "inherent"))
    if not errors.keys() & set(RATINGS) and (values["residual_likelihood"] * values["residual_impact"]
                                            > values["inherent_likelihood"] * values["inherent_impact"]):
        errors["residual_likelihood"] = "Residual risk (after controls) cannot score above inherent risk."
    values["treatment"] = text(raw.get("treatment")).lower() or "untreated"
    if values["treatment"] == "accept":
        errors["treatment"] = ("Accepting a risk needs a second person's approval: add it, then request "
                               "acceptance in a review.")
    elif values["treatment"] not in TREATMENTS:
        errors["treatment"] = f"Choose a treatment: {', '.join(t for t in TREATMENTS if t != 'accept')}."
    elif values["treatment"] in PLAN_NEEDED and not values["treatment_plan"] and "treatment_plan" not in errors:
        errors["treatment_plan"] = f"Describe the plan to {values['treatment']} this risk."
    for name in ("treatment_due", "next_review_due"):
        try:
            values[name] = parse_date(raw.get(name))
        except ValueError as problem:
            errors[name] = f"{name.replace('_', ' ').capitalize()} {problem}."
    if values.get("treatment_due") and values["treatment_due"] < today:
        errors["treatment_due"] = "The treatment due date is in the past."
    try:
        values["cadence"] = cadences.validate(raw.get("cadence"), today)
    except cadences.CadenceError as problem:
        errors["cadence"] = str(problem)
    for name, parse in (("tsc_refs", tsc_refs), ("incidents", incident_keys)):
        try:
            values[name] = parse(raw.get(name))
        except ValueError as problem:
            errors[name] = f"{problem}."
    return values, errors
