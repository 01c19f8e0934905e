"""Slack user groups → their members, cached for a short time; changes Vigil sees are recorded.

The directory is given two callables that ask Slack (`usergroups.users.list` for one group's members,
`usergroups.list` for the handles), so this module itself knows nothing of the Slack client. A
failed look-up keeps the last known members (stale beats locking everyone out mid-incident); a
group never resolved counts as empty, so a refusal is the worst that happens (fail closed). A
failed look-up is not tried again before the TTL has passed either: requests do not each wait on a
Slack that is down, nor repeat a call Slack refuses (a missing `usergroups:read`, logged as an error
naming the scope).
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
        self._failed: dict[str, float] = {}  # group id, or "" for the handle list -> when asking failed

    def group_id(self, subject: str) -> str | None:
        """`S…` as given; an `@handle` through `usergroups.list` (cached like members)."""
        if GROUP.match(subject):
            return subject
        if not HANDLE.match(subject):
            return None
        with self._lock:
            cached = self._handles
        if (cached is None or self._now() - cached[0] >= self._ttl) and not self._failed_lately(""):
            try:
                found = {f"@{g['handle'].lower()}": g["id"] for g in self._list_groups()
                         if isinstance(g, dict) and isinstance(g.get("handle"), str) and isinstance(g.get("id"), str)}
                cached = (self._now(), found)
                with self._lock:
                    self._handles = cached
                    self._failed.pop("", None)
            except Exception as failure:  # noqa: BLE001 - Slack down: keep what we knew
                self._failure("", "usergroups.list", failure)
        if cached is None:
            return None
        return cached[1].get(subject)

    def members(self, subject: str) -> frozenset[str]:
        group = self.group_id(subject)
        if group is None:
            return frozenset()
        with self._lock:
            cached = self._members.get(group)
        if (cached is not None and self._now() - cached[0] < self._ttl) or self._failed_lately(group):
            return cached[1] if cached is not None else frozenset()
        try:
            found = frozenset(u for u in self._members_of(group) if isinstance(u, str))
        except Exception as failure:  # noqa: BLE001 - Slack down: keep what we knew
            self._failure(group, f"usergroups.users.list {group}", failure)
            return cached[1] if cached is not None else frozenset()
        with self._lock:
            self._members[group] = (self._now(), found)
            self._failed.pop(group, None)
        if self._on_members is not None and (cached is None or cached[1] != found):
            self._on_members(group, subject if subject.startswith("@") else None, found)
        return found

    def forget(self) -> None:
        """Drop the cache (the next decision asks Slack again)."""
        with self._lock:
            self._members.clear()
            self._handles = None
            self._failed.clear()

    def _failed_lately(self, key: str) -> bool:
        with self._lock:
            failed_at = self._failed.get(key)
        return failed_at is not None and self._now() - failed_at < self._ttl

    def _failure(self, key: str, call: str, failure: Exception) -> None:
        with self._lock:
            self._failed[key] = self._now()
        response = getattr(failure, "response", None)
        error = response.get("error") if hasattr(response, "get") else None
        if error == "missing_scope":  # for whoever runs Vigil: only reinstalling the app fixes it
            log.error("%s: Slack refused it for a missing scope (the app needs %s: add it in manifest.yaml and "
                      "reinstall); using what is known so far", call, response.get("needed") or "usergroups:read")
        else:
            log.warning("%s failed (%s); using what is known so far", call, failure)
