"""`Permissions`: the policy from settings plus user-group resolution, and what it records.

Listeners call `actor(user)` *before* opening their transaction (it may ask Slack for a group's
members and record a membership change in a short transaction of its own), then `decide` or
`require` with the record's role holders. The policy in force is recorded once per distinct
policy (`permissions.policy_in_force` on the `audit` stream), and so is each change of a group's
membership Vigil sees (`permissions.group_members_changed`).
"""

from __future__ import annotations

import hashlib
import json
import logging

from vigil_ir.eventlog import append
from vigil_ir.idempotency import first_time, previous_result, remember_result
from vigil_ir.permissions.groups import GroupDirectory
from vigil_ir.permissions.policy import (CONFIGURED_ROLES, Action, Actor, Decision, Policy, Refused, build_policy,
                                     decide)
from vigil_ir.permissions.subjects import USER, is_group

log = logging.getLogger(__name__)
STREAM = "audit"


def policy_from_settings(settings) -> Policy:
    """Raises PolicyError naming the variable when a setting cannot be read (checked at start-up)."""
    configured = {"admins": settings.admins, "commanders": settings.commanders,
                  "risk_approvers": settings.risk_approvers, "register_viewers": settings.register_viewers,
                  "dashboard_viewers": settings.dashboard_viewers}
    return build_policy(configured=configured, overrides=settings.permissions,
                        close_approval=settings.close_approval)


class Permissions:
    def __init__(self, policy: Policy, *, directory: GroupDirectory | None = None, database=None):
        self.policy, self.directory, self.database = policy, directory, database

    # ---- who someone is --------------------------------------------------------------------
    def actor(self, user: str | Actor) -> Actor:
        """The user with the configured roles and groups they hold (groups asked of Slack, cached)."""
        if isinstance(user, Actor):
            return user
        subjects = {user}
        for subject in self._subjects_in_use():
            if subject == user or (is_group(subject) and user in self._members(subject)):
                subjects.add(subject)
        roles = frozenset(role for role, listed in self.policy.configured.items() if subjects & set(listed))
        return Actor(user=user, roles=roles, subjects=frozenset(subjects))

    def members(self, *roles: str) -> frozenset[str]:
        """The user ids who hold any of these configured roles now (groups expanded)."""
        found: set[str] = set()
        for role in roles:
            for subject in self.policy.configured.get(role, ()):
                found |= {subject} if USER.match(subject) else self._members(subject)
        return frozenset(found)

    def expand(self, subjects) -> frozenset[str]:
        """The user ids these subjects name (user ids as given, user groups expanded)."""
        found: set[str] = set()
        for subject in subjects:
            found |= {subject} if USER.match(subject) else self._members(subject)
        return frozenset(found)

    def holders_of(self, action: Action) -> frozenset[str]:
        """The user ids who may take `action` through configured roles or named subjects (not
        through record roles such as the lead): e.g. whom to ask for a second approval."""
        rules = self.policy.rules[action]
        found = set(self.members(*(r for r in rules if r in CONFIGURED_ROLES)))
        for subject in (r for r in rules if r not in CONFIGURED_ROLES):
            if USER.match(subject):
                found.add(subject)
            elif is_group(subject):
                found |= self._members(subject)
        return frozenset(found)

    # ---- decisions -------------------------------------------------------------------------
    def decide(self, action: Action, actor: str | Actor, **context) -> Decision:
        return decide(self.policy, action, self.actor(actor), **context)

    def allows(self, action: Action, actor: str | Actor, **context) -> bool:
        return self.decide(action, actor, **context).allowed

    def require(self, action: Action, actor: str | Actor, **context) -> None:
        decision = self.decide(action, actor, **context)
        if not decision.allowed:
            raise Refused(decision)

    # ---- evidence --------------------------------------------------------------------------
    def record_policy(self, session) -> bool:
        """Record the policy in force once per distinct policy (True when this call recorded it)."""
        described = self.policy.describe()
        digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
        if not first_time(session, f"permissions-policy:{digest}"):
            return False
        append(session, stream=STREAM, kind="permissions.policy_in_force", actor="system:vigil",
               data={**described, "sha256": digest})
        return True

    def record_members(self, group: str, handle: str | None, members: frozenset[str]) -> None:
        """Called by the directory when a look-up differs from what this process knew: record the
        change if the database has not seen it yet (another process may have)."""
        if self.database is None:
            return
        key = f"group-members:{group}"
        try:
            with self.database.session() as session:
                before = previous_result(session, key)
                known = set(before.get("members", [])) if before is not None else None
                if known == set(members):
                    return
                state = {"members": sorted(members), "handle": handle}
                if before is None:
                    first_time(session, key, state)
                else:
                    remember_result(session, key, state)
                append(session, stream=STREAM, kind="permissions.group_members_changed", actor="system:vigil",
                       data={"group": group, "handle": handle, "members": sorted(members),
                             "added": sorted(set(members) - (known or set())),
                             "removed": sorted((known or set()) - set(members)), "first_seen": known is None})
        except Exception:  # noqa: BLE001 - evidence is retried at the next look-up; the decision stands
            log.exception("could not record the membership of %s", group)

    # ---- internals -------------------------------------------------------------------------
    def _subjects_in_use(self) -> set[str]:
        return {s for listed in self.policy.configured.values() for s in listed} | self.policy.direct_subjects()

    def _members(self, subject: str) -> frozenset[str]:
        if self.directory is None:
            return frozenset()
        return self.directory.members(subject)


def slack_directory(client, *, ttl_seconds: float, on_members=None) -> GroupDirectory:
    """A directory asking Slack through `client` (needs the `usergroups:read` scope)."""
    def members_of(group: str) -> list[str]:
        return list(client.usergroups_users_list(usergroup=group).get("users") or [])

    def list_groups() -> list[dict]:
        return list(client.usergroups_list().get("usergroups") or [])

    return GroupDirectory(members_of=members_of, list_groups=list_groups, ttl_seconds=ttl_seconds,
                          on_members=on_members)


def build_permissions(settings, *, client=None, database=None) -> Permissions:
    permissions = Permissions(policy_from_settings(settings), database=database)
    if client is not None:
        permissions.directory = slack_directory(client, ttl_seconds=settings.group_cache_seconds,
                                                on_members=permissions.record_members)
    return permissions
