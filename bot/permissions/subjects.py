"""Slack subjects in settings: user ids (`U…`, `W…`), user group ids (`S…`) and group `@handles`."""

from __future__ import annotations

import re

USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
HANDLE = re.compile(r"^@[a-z0-9][a-z0-9._-]{0,79}$")
# A mention pasted from Slack: <@U123|name> or <!subteam^S123|@handle>.
PASTED = re.compile(r"^<(?:@([UW][A-Z0-9]+)|!subteam\^(S[A-Z0-9]+))(?:\|[^>]*)?>$")


def parse_subjects(text: str, variable: str) -> list[str]:
    """Comma-separated subjects; raises ValueError naming the variable and the bad entry."""
    found = []
    for raw in (part.strip() for part in (text or "").split(",")):
        if not raw:
            continue
        pasted = PASTED.match(raw)
        entry = (pasted.group(1) or pasted.group(2)) if pasted else raw
        entry = entry.lower() if entry.startswith("@") else entry
        if not (USER.match(entry) or GROUP.match(entry) or HANDLE.match(entry)):
            from vigil_ir.permissions.policy import PolicyError

            raise PolicyError(f"{variable}: `{raw}` is not a Slack user id (U…), a user group id (S…) or "
                              "a user group handle (@name).")
        found.append(entry)
    return found


def is_group(subject: str) -> bool:
    return bool(GROUP.match(subject) or HANDLE.match(subject))


def render_subject(subject: str) -> str:
    """How a refusal names a subject in Slack text (a group by handle or id; no one is pinged)."""
    if USER.match(subject):
        return f"<@{subject}>"
    if GROUP.match(subject):
        return f"<!subteam^{subject}>"
    return subject
