"""The dashboard's access log: one `audit.dashboard_access` event per page view, bounded.

Each event names the route, the path (capped) and only the query parameters the dashboard knows,
each value capped: never the raw query string, so a 10 kB query cannot bloat the hash-chained log.

Per viewer (an auditor token or a Slack user) at most `limit` views are recorded per window, across
every process. Views above that are counted in the viewer's `dashboard_view_count` row (in the
database, so a restart or another process loses nothing) and recorded as one
`audit.dashboard_access_summarised` event ("N further views") when the viewer signs out, or when the
next view after the window ends is recorded, by anyone. The last recorded event of a window says
`limit_reached`, so a reader knows more came. A view above the limit writes nothing but that count.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.auth.models import DashboardViewCount
from vigil_ir.auth.principal import Principal
from vigil_ir.auth.throttle import window_start
from vigil_ir.db import insert_if_absent
from vigil_ir.eventlog import append

STREAM = "audit"
# Every query parameter a dashboard page or download reads; anything else is counted, not kept.
KNOWN_PARAMETERS = ("from", "to", "as_of", "severity", "type", "security", "status", "page", "next", "reason")
MAX_VALUE = 64
MAX_PATH = 200
SUMMARIES_PER_VIEW = 20  # other viewers' finished windows summarised by one view (the rest by the next)


def parameters(query_params) -> tuple[dict[str, str], int]:
    """(known parameters, first value each, capped; how many other names were dropped)."""
    kept = {name: str(query_params.get(name))[:MAX_VALUE] for name in KNOWN_PARAMETERS if name in query_params}
    dropped = len({name for name in query_params.keys() if name not in KNOWN_PARAMETERS})
    return kept, dropped


class AccessLog:
    """Decides which views are recorded and writes the events (in the caller's transaction)."""

    def __init__(self, *, limit: int, window: timedelta):
        self.limit, self.window = limit, window

    def start(self, session: Session, actor: str) -> None:
        """The viewer's counter row, made at sign-in, so a page view only ever updates it."""
        start = window_start(clock.now(), self.window)
        insert_if_absent(session, DashboardViewCount, {"actor": actor, "window_start": start, "recorded": 0,
                                                       "further": 0}, ["actor"])

    def record(self, session: Session, principal: Principal, *, session_id: int, route: str, path: str,
               query_params) -> bool:
        """Record this view if the viewer is under the limit (True), else only count it (False)."""
        now = clock.now()
        start = window_start(now, self.window)
        self._summarise_finished(session, start, principal.actor)
        count = self._locked(session, principal.actor, start)
        if clock.to_utc(count.window_start) != start:  # a new window: the old one's overflow first
            if count.further:
                self._summarise(session, count)
            count.window_start, count.recorded, count.further = start, 0, 0
        recorded = count.recorded < self.limit
        if recorded:
            count.recorded += 1
        else:
            count.further += 1
        session.add(count)
        session.flush()
        if not recorded:
            return False
        kept, dropped = parameters(query_params)
        data = {"session_id": session_id, "route": route, "path": path[:MAX_PATH], "params": kept,
                "name": principal.name}
        data["token_id" if principal.kind == "token" else "user"] = (int(principal.id) if principal.kind == "token"
                                                                     else principal.id)
        if dropped:
            data["other_parameters"] = dropped
        if count.recorded == self.limit:
            data["limit_reached"] = {"limit": self.limit, "window_end": clock.iso(start + self.window)}
        append(session, stream=STREAM, kind="audit.dashboard_access", actor=principal.actor, data=data)
        return True

    def flush(self, session: Session, actor: str) -> None:
        """Write the viewer's pending "N further views" now (signing out). The window's recorded
        views stay counted: signing out and in again does not start a new allowance."""
        count = session.exec(select(DashboardViewCount).where(DashboardViewCount.actor == actor)
                             .with_for_update()).first()
        if count is not None and count.further:
            self._summarise(session, count)
            count.further = 0
            session.add(count)

    def _locked(self, session: Session, actor: str, start: datetime) -> DashboardViewCount:
        insert_if_absent(session, DashboardViewCount, {"actor": actor, "window_start": start, "recorded": 0,
                                                       "further": 0}, ["actor"])
        return session.exec(select(DashboardViewCount).where(DashboardViewCount.actor == actor)
                            .with_for_update()).one()

    def _summarise_finished(self, session: Session, start: datetime, viewer: str) -> None:
        """Other viewers' finished windows with views above the limit: their summaries, once (the
        row's overflow is cleared with it; on PostgreSQL rows another view holds are skipped)."""
        finished = session.exec(select(DashboardViewCount).where(
            DashboardViewCount.window_start < start, DashboardViewCount.further > 0,
            DashboardViewCount.actor != viewer).order_by(DashboardViewCount.actor).limit(SUMMARIES_PER_VIEW)
            .with_for_update(skip_locked=True)).all()
        for count in finished:
            self._summarise(session, count)
            count.further = 0
            session.add(count)

    def _summarise(self, session: Session, count: DashboardViewCount) -> None:
        window = clock.to_utc(count.window_start)
        append(session, stream=STREAM, kind="audit.dashboard_access_summarised", actor=count.actor,
               data={"further_views": count.further, "recorded_views": count.recorded, "limit": self.limit,
                     "window_start": clock.iso(window), "window_end": clock.iso(window + self.window)})
