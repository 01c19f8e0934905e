"""The dashboard's access log: one `audit.dashboard_access` event per page view, bounded.

Each event names the route, the path (capped) and only the query parameters the dashboard knows,
each value capped: never the raw query string, so a 10 kB query cannot bloat the hash-chained log.

Per viewer (an auditor token or a Slack user) at most `limit` views are recorded per window. Views
above that are counted in this process and recorded as one `audit.dashboard_access_summarised`
event ("N further views") when the next view is recorded after the window ends, by anyone, or
when the viewer signs out here. A process that stops before then loses that count (not the views'
answers); the last recorded event of a window says `limit_reached` so a reader knows more came.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from vigil_ir import clock
from vigil_ir.auth.principal import Principal
from vigil_ir.auth.throttle import window_start
from vigil_ir.eventlog import append

STREAM = "audit"
# Every query parameter a dashboard page or download reads; anything else is counted, not kept.
KNOWN_PARAMETERS = ("from", "to", "as_of", "severity", "type", "security", "status", "page", "next", "reason")
MAX_VALUE = 64
MAX_PATH = 200


def parameters(query_params) -> tuple[dict[str, str], int]:
    """(known parameters, first value each, capped; how many other names were dropped)."""
    kept = {name: str(query_params.get(name))[:MAX_VALUE] for name in KNOWN_PARAMETERS if name in query_params}
    dropped = len({name for name in query_params.keys() if name not in KNOWN_PARAMETERS})
    return kept, dropped


@dataclass
class _Count:
    window: datetime
    recorded: int = 0
    further: int = 0


class AccessLog:
    """Decides which views are recorded and writes the events (in the caller's transaction)."""

    def __init__(self, *, limit: int, window: timedelta):
        self.limit, self.window = limit, window
        self._counts: dict[str, _Count] = {}
        self._lock = threading.Lock()

    def record(self, session: Session, principal: Principal, *, session_id: int, route: str, path: str,
               query_params) -> bool:
        """Record this view if the viewer is under the limit (True), else only count it (False:
        nothing is written)."""
        now = clock.now()
        start = window_start(now, self.window)
        with self._lock:
            due = self._take_finished(start)
            count = self._counts.setdefault(principal.actor, _Count(start))
            if count.recorded >= self.limit:
                count.further += 1
                recorded = False
            else:
                count.recorded += 1
                recorded = True
                last = count.recorded == self.limit
        for actor, finished in due:
            self._summarise(session, actor, finished)
        if not recorded:
            return False
        kept, dropped = parameters(query_params)
        data = {"session_id": session_id, "route": route, "path": path[:MAX_PATH], "params": kept,
                "name": principal.name}
        data["token_id" if principal.kind == "token" else "user"] = (int(principal.id) if principal.kind == "token"
                                                                     else principal.id)
        if dropped:
            data["other_parameters"] = dropped
        if last:
            data["limit_reached"] = {"limit": self.limit, "window_end": clock.iso(start + self.window)}
        append(session, stream=STREAM, kind="audit.dashboard_access", actor=principal.actor, data=data)
        return True

    def flush(self, session: Session, actor: str) -> None:
        """Write the viewer's pending "N further views" now (signing out)."""
        with self._lock:
            count = self._counts.pop(actor, None)
        if count is not None and count.further:
            self._summarise(session, actor, count)

    def _take_finished(self, start: datetime) -> list[tuple[str, _Count]]:
        finished = [(actor, count) for actor, count in self._counts.items() if count.window < start]
        for actor, _ in finished:
            del self._counts[actor]
        return [(actor, count) for actor, count in finished if count.further]

    def _summarise(self, session: Session, actor: str, count: _Count) -> None:
        append(session, stream=STREAM, kind="audit.dashboard_access_summarised", actor=actor,
               data={"further_views": count.further, "recorded_views": count.recorded, "limit": self.limit,
                     "window_start": clock.iso(count.window), "window_end": clock.iso(count.window + self.window)})
