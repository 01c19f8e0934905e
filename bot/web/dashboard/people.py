"""The people directory (/people): everyone Vigil has seen in a record, as Slack described them,
every recorded change (`person:<id>` streams), and the roles they hold now, directly or through a
Slack user group: the answers `people.csv` gives for a period, for the whole history."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from vigil_ir import clock
from vigil_ir.config_evidence import all_versions
from vigil_ir.people import Directory
from vigil_ir.people.directory import UNKNOWN, display_of
from vigil_ir.people.roles import by_subject, through_groups
from vigil_ir.permissions import policy_from_settings
from vigil_ir.web.dashboard.context import dashboard
from vigil_ir.web.dashboard.views import page


def _change(when, kind: str, data: dict) -> str:
    if kind == "person.first_seen":
        return f"{clock.iso(when)} first seen as {display_of(data) or UNKNOWN}"
    return f"{clock.iso(when)} " + ", ".join(f"{name}: {change.get('from')!r} → {change.get('to')!r}"
                                              for name, change in (data.get("changes") or {}).items())


def people_page(request: Request) -> Response:
    board = dashboard(request)
    now = clock.now()
    with board.database.read_session() as session:
        people = Directory.load(session)
        versions = all_versions(session)
        # The roles as last recorded (what the controls ran under), else the settings in force.
        recorded = (versions[-1].document.get("roles") if versions else None) \
            or policy_from_settings(board.settings).describe()["roles"]
        held = by_subject(recorded)
        through, _ = through_groups(session, held, end=now)
    rows = []
    for user_id, person in sorted(people.people.items(), key=lambda item: ((item[1].display or "").lower(), item[0])):
        values = people.values_at(user_id) or {}
        history = people.histories.get(user_id)
        rows.append({"label": people.label(user_id), "email": values.get("email"), "title": values.get("title"),
                     "status": ("deactivated" if values.get("deactivated") else "active") if values else "unknown",
                     "roles": [*held.get(user_id, []), *through.get(user_id, [])],
                     "first_seen": person.first_seen, "looked_up": person.refreshed_at,
                     "history": [_change(*change) for change in history.changes] if history else []})
    return page(request, "people.html", rows=rows,
                roles_source=(f"configuration recorded {clock.iso(versions[-1].recorded_at)}" if versions
                              else "the settings in force (no configuration recorded yet)"))


ROUTES = [("/people", people_page, ["GET"], False)]
