"""Slack user groups → their members, cached for a short time; changes Vigil sees are recorded.

The directory is given two callables that ask Slack (`usergroups.users.list` for one group's members,
`usergroups.list` for the handles), so this module itself knows nothing of the Slack client. A
failed look-up keeps the last known members (stale beats locking everyone out mid-incident); a
group never resolved counts as empty, so a refusal is the worst that happens (fail closed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from vigil_ir.permissions.subjects import GROUP, HANDLE

log = logging.getLogger(__name__)

MembersOf = Callable[[str], list[str]]          # group id -> user ids
ListGroups = Callable[[], list[dict]]           # [{"id": "S…", "handle": "…"}, …]
# (group id, handle or None, members) -> called when a look-up returns members that differ from
# what this process saw before; the service records it as an event (once across processes).
OnMembers = Callable[[str, str | None, frozenset[str]], None]


class GroupDirectory:
    def __init__(self, *, members_of: MembersOf, list_groups: ListGroups, ttl_seconds: float = 60.0,
                 on_members: OnMembers | None = None, monotonic: Callable[[], float] = time.monotonic):
        self._members_of, self._list_groups = members_of, list_groups
        self._ttl, self._now, self._on_members = ttl_seconds, monotonic, on_members
        self._lock = threading.Lock()
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._handles: tuple[float, dict[str, str]] | None = None

    def group_id(self, subject: str) -> str | None:
        """`S…` as given; an `@handle` through `usergroups.list` (cached like members)."""
        if GROUP.match(subject):
            return subject
        if not HANDLE.match(subject):
            return None
        with self._lock:
            cached = self._handles
        if cached is None or self._now() - cached[0] >= self._ttl:
            try:
                found = {f"@{g['handle'].lower()}": g["id"] for g in self._list_groups()
                         if isinstance(g, dict) and isinstance(g.get("handle"), str) and isinstance(g.get("id"), str)}
                cached = (self._now(), found)
                with self._lock:
                    self._handles = cached
            except Exception as failure:  # noqa: BLE001 - Slack down: keep what we knew
                log.warning("usergroups.list failed (%s); using the handles known so far", failure)
                if cached is None:
                    return None
        return cached[1].get(subject)

    def members(self, subject: str) -> frozenset[str]:
        group = self.group_id(subject)
        if group is None:
            return frozenset()
        with self._lock:
            cached = self._members.get(group)
        if cached is not None and self._now() - cached[0] < self._ttl:
            return cached[1]
        try:
            found = frozenset(u for u in self._members_of(group) if isinstance(u, str))
        except Exception as failure:  # noqa: BLE001 - Slack down: keep what we knew
            log.warning("usergroups.users.list %s failed (%s); using the members known so far", group, failure)
            return cached[1] if cached is not None else frozenset()
        with self._lock:
            self._members[group] = (self._now(), found)
        if self._on_members is not None and (cached is None or cached[1] != found):
            self._on_members(group, subject if subject.startswith("@") else None, found)
        return found

    def forget(self) -> None:
        """Drop the cache (the next decision asks Slack again)."""
        with self._lock:
            self._members.clear()
            self._handles = None
