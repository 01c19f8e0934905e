"""Names as they were: the directory folded from the person streams, loaded once per export.

`Directory.load(session)` reads every person row and every `person:*` event in two queries; after
that each lookup is in memory (a bisect over one person's history), so an export of a million rows
asks the database nothing more. Before a person's first recorded sighting the first known values
are used: they are the earliest the record knows.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import Event
from vigil_ir.people.ids import is_user_id, replace_ids_in_text
from vigil_ir.people.models import TRACKED, Person

UNKNOWN = "name unknown"


def label_unknown(user_id: str) -> str:
    return f"{user_id} ({UNKNOWN})"


def display_of(values: dict[str, Any]) -> str | None:
    return values.get("real_name") or values.get("display_name") or values.get("name") or None


@dataclass
class History:
    """One person's tracked values after each recorded event, in time order."""

    times: list[datetime] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)
    changes: list[tuple[datetime, str, dict[str, Any]]] = field(default_factory=list)  # (when, kind, data)

    def add(self, event: Event) -> None:
        state = dict(self.states[-1]) if self.states else {}
        if event.kind == "person.first_seen":
            state.update({name: event.data.get(name) for name in TRACKED})
        else:
            state.update({name: change.get("to") for name, change in (event.data.get("changes") or {}).items()})
        self.times.append(clock.to_utc(event.occurred_at))
        self.states.append(state)
        self.changes.append((clock.to_utc(event.occurred_at), event.kind, event.data))

    def at(self, when: datetime | None) -> dict[str, Any] | None:
        if not self.states:
            return None
        if when is None:
            return self.states[-1]
        position = bisect_right(self.times, clock.to_utc(when))
        return self.states[max(position - 1, 0)]


class Directory:
    """Who each user id is now and was at any time. Build with `Directory.load(session)`."""

    def __init__(self, people: dict[str, Person], histories: dict[str, History]):
        self.people, self.histories = people, histories
        self.named: set[str] = set()  # every user id a rendering asked about (the bundle's people list)

    @classmethod
    def load(cls, session: Session) -> Directory:
        people = {person.user_id: person for person in session.exec(select(Person))}
        histories: dict[str, History] = {}
        query = (select(Event).where(Event.stream.like("person:%"), Event.kind.in_(("person.first_seen", "person.changed")))
                 .order_by(Event.stream, Event.stream_seq))
        for event in session.exec(query):
            histories.setdefault(event.stream.split(":", 1)[1], History()).add(event)
        for person in people.values():
            session.expunge(person)  # plain values from here on: an export may outlive the session
        return cls(people, histories)

    @classmethod
    def empty(cls) -> Directory:
        return cls({}, {})

    def values_at(self, user_id: str, when: datetime | None = None) -> dict[str, Any] | None:
        history = self.histories.get(user_id)
        if history is not None:
            return history.at(when)
        person = self.people.get(user_id)
        if person is not None and person.known:
            return {name: getattr(person, name) for name in TRACKED}
        return None

    def name_at(self, user_id: str | None, when: datetime | None = None) -> str | None:
        """The person's name at `when` (now when None); None when unknown or not a user id."""
        if not user_id or not is_user_id(user_id):
            return None
        self.named.add(user_id)
        values = self.values_at(user_id, when)
        return display_of(values) if values else None

    def name_column(self, user_id: str | None, when: datetime | None = None) -> str | None:
        """The `*_name` cell beside an id cell: the name, "name unknown" for an unknown person, and
        empty where the id cell holds no person (empty, or `system:worker`)."""
        if not user_id or not is_user_id(user_id):
            return None
        return self.name_at(user_id, when) or UNKNOWN

    def label(self, user_id: str | None, when: datetime | None = None) -> str | None:
        """"Dana Kim (U02LEAD)"; "U02LEAD (name unknown)"; other actors (system:worker, cli:…) as given."""
        if not user_id:
            return user_id
        if not is_user_id(user_id):
            return user_id
        name = self.name_at(user_id, when)
        return f"{name} ({user_id})" if name else label_unknown(user_id)

    def name_ids(self, text: str | None, when: datetime | None = None) -> str | None:
        """A sentence with each user id in it shown as "Name (U…)" (event summaries)."""
        if not text:
            return text
        return replace_ids_in_text(text, lambda user_id: self.label(user_id, when))

    def labels(self, user_ids, when: datetime | None = None) -> list[str]:
        return [self.label(user_id, when) for user_id in user_ids or []]

    def changes_between(self, user_id: str, start: datetime, end: datetime) -> list[tuple[datetime, str, dict]]:
        """The person's recorded events (first sighting, changes) in [start, end)."""
        history = self.histories.get(user_id)
        if history is None:
            return []
        start, end = clock.to_utc(start), clock.to_utc(end)
        return [change for change in history.changes if start <= change[0] < end]
