"""The permissions policy: which roles may take which action, and the answer to "may this person?".

Pure: no database, no Slack. A rule lists *roles*. Some roles come from the record the action is
about (the incident's lead, its declarer, a note's author, a risk's owner), the rest from
configuration (admins, commanders, risk approvers, register viewers, dashboard viewers), and a
rule may also name Slack subjects directly (a user id, a user group id or `@handle`). Who holds a
configured role is worked out by `vigil_ir.permissions.service.Permissions.actor`, which resolves user
groups; `decide` then only compares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from vigil_ir.permissions.subjects import parse_subjects, render_subject


class Action(str, Enum):
    DECLARE = "declare"
    TAKE_LEAD = "take_lead"                # become lead of an incident that has none
    REPLACE_LEAD = "replace_lead"          # change a lead someone already holds
    SEVERITY_UP = "severity_up"
    SEVERITY_DOWN = "severity_down"
    CORRECT_NOTE = "correct_note"
    RESOLVE = "resolve"
    CLOSE = "close"                        # ask to close (or close, when no second person is needed)
    APPROVE_CLOSE = "approve_close"        # the second person of a close (never the one who asked)
    VIEW_PRIVATE_INCIDENT = "view_private_incident"
    INVITE_TO_INCIDENT = "invite_to_incident"  # grant someone access to a private incident
    REMOVE_FROM_INCIDENT = "remove_from_incident"  # take someone's access to a private incident away
    APPROVE_RISK_REVIEW = "approve_risk_review"
    ACCEPT_RISK = "accept_risk"            # approve a review that accepts a risk (never its owner)
    VIEW_REGISTER = "view_register"        # the whole register, beyond one's own risks
    USE_DASHBOARD = "use_dashboard"
    CLASSIFY_SECURITY = "classify_security"  # mark an incident a security incident, or not
    DECIDE_DEADLINE = "decide_deadline"      # end a playbook deadline clock by a decision
    SIGN_OFF_RISK_ASSESSMENT = "sign_off_risk_assessment"
    SIGN_OFF_PROGRAM_REVIEW = "sign_off_program_review"  # the incident-response program review (CC7.4)
    ATTACH_ALERT = "attach_alert"            # link alerts waiting for triage to an open incident
    DISMISS_ALERT = "dismiss_alert"          # decide, with a reason, that alerts need no incident
    PAGE = "page"                            # page a service or team through PagerDuty / Opsgenie
    LINK_TICKET = "link_ticket"            # create or link a follow-up action's ticket in a tracker
    CHANGE_ACTION = "change_action"        # complete, update or reassign a follow-up action


# Roles held because of the record acted on; the caller names who holds them (`decide(..., lead=…)`).
RECORD_ROLES = {
    "lead": "the incident lead",
    "declarer": "the person who declared it",
    "note_author": "the note's author",
    "risk_owner": "the risk owner",
    "member": "a member of the incident",
    "action_owner": "the action's owner",
}
# Roles held through configuration (settings variable, how a holder is called in a refusal).
CONFIGURED_ROLES = {
    "admins": ("VIGIL_ADMINS", "an admin"),
    "commanders": ("VIGIL_COMMANDERS", "a commander"),
    "risk_approvers": ("VIGIL_RISK_APPROVERS", "a risk approver"),
    "register_viewers": ("VIGIL_REGISTER_VIEWERS", "a register viewer"),
    "dashboard_viewers": ("VIGIL_DASHBOARD_VIEWERS", "a dashboard viewer"),
}
ANYONE = "anyone"
ROLE_NAMES = set(RECORD_ROLES) | set(CONFIGURED_ROLES) | {ANYONE}

# Admins and commanders may do anything; the current lead controls the lead role.
DEFAULT_RULES: dict[Action, tuple[str, ...]] = {
    Action.DECLARE: (ANYONE,),
    Action.TAKE_LEAD: (ANYONE,),
    Action.REPLACE_LEAD: ("lead", "commanders", "admins"),
    Action.SEVERITY_UP: (ANYONE,),
    Action.SEVERITY_DOWN: ("lead", "commanders", "admins"),
    Action.CORRECT_NOTE: ("note_author", "lead", "commanders", "admins"),
    Action.RESOLVE: ("lead", "declarer", "commanders", "admins"),
    Action.CLOSE: ("lead", "commanders", "admins"),
    Action.APPROVE_CLOSE: ("commanders", "admins"),
    Action.VIEW_PRIVATE_INCIDENT: ("member", "commanders", "admins"),
    Action.INVITE_TO_INCIDENT: ("lead", "commanders", "admins"),
    Action.REMOVE_FROM_INCIDENT: ("lead", "commanders", "admins"),
    Action.APPROVE_RISK_REVIEW: ("risk_approvers", "commanders", "admins"),
    Action.ACCEPT_RISK: ("risk_approvers", "commanders", "admins"),
    Action.VIEW_REGISTER: ("register_viewers", "risk_approvers", "commanders", "admins"),
    Action.USE_DASHBOARD: ("dashboard_viewers", "commanders", "admins"),
    Action.CLASSIFY_SECURITY: ("lead", "commanders", "admins"),
    Action.DECIDE_DEADLINE: ("lead", "commanders", "admins"),
    Action.SIGN_OFF_RISK_ASSESSMENT: ("risk_approvers", "commanders", "admins"),
    Action.SIGN_OFF_PROGRAM_REVIEW: ("commanders", "admins"),
    Action.ATTACH_ALERT: (ANYONE,),
    Action.DISMISS_ALERT: (ANYONE,),
    Action.PAGE: (ANYONE,),
    Action.LINK_TICKET: ("action_owner", "lead", "risk_owner", "commanders", "admins"),
    # Follow-up work is shared (a colleague may finish it; the owner is told of every change by
    # someone else): anyone by default, a stricter rule with VIGIL_PERMISSIONS="change_action=…".
    Action.CHANGE_ACTION: (ANYONE,),
}

# What a refusal says the person tried to do: "Only … may <this>."
DOING = {
    Action.DECLARE: "declare an incident",
    Action.TAKE_LEAD: "take the lead",
    Action.REPLACE_LEAD: "replace the current lead",
    Action.SEVERITY_UP: "raise the severity",
    Action.SEVERITY_DOWN: "downgrade severity",
    Action.CORRECT_NOTE: "correct this note",
    Action.RESOLVE: "resolve this incident",
    Action.CLOSE: "close this incident",
    Action.APPROVE_CLOSE: "approve closing this incident",
    Action.VIEW_PRIVATE_INCIDENT: "see this private incident",
    Action.INVITE_TO_INCIDENT: "invite people to this private incident",
    Action.REMOVE_FROM_INCIDENT: "remove people from this private incident",
    Action.APPROVE_RISK_REVIEW: "approve or reject a risk review",
    Action.ACCEPT_RISK: "approve accepting this risk",
    Action.VIEW_REGISTER: "see the whole risk register",
    Action.USE_DASHBOARD: "use the dashboard",
    Action.CLASSIFY_SECURITY: "change whether this is a security incident",
    Action.DECIDE_DEADLINE: "decide this deadline",
    Action.SIGN_OFF_RISK_ASSESSMENT: "sign off the risk assessment",
    Action.SIGN_OFF_PROGRAM_REVIEW: "sign off the incident-response program review",
    Action.ATTACH_ALERT: "attach these alerts to an incident",
    Action.DISMISS_ALERT: "dismiss these alerts",
    Action.PAGE: "page for this incident",
    Action.LINK_TICKET: "create or link this action's ticket",
    Action.CHANGE_ACTION: "change this follow-up action",
}


class PolicyError(ValueError):
    """A policy setting that cannot be read; the message names the variable and the entry."""


@dataclass(frozen=True)
class Actor:
    """A Slack user and what they hold: configured roles and the subjects (groups) they belong to."""

    user: str
    roles: frozenset[str] = frozenset()
    subjects: frozenset[str] = frozenset()  # their own id, the group ids and @handles they are in


@dataclass(frozen=True)
class Decision:
    action: Action
    allowed: bool
    who_may: str  # "the incident lead (<@U1>), a commander (@incident-commanders) or an admin (<@U9>)"
    reason: str = ""  # set when the refusal is not about roles (a second person is needed)

    @property
    def message(self) -> str:
        if self.allowed:
            return ""
        if self.reason:
            return f"{self.reason} Instead: {self.who_may}."
        return f"Only {self.who_may} may {DOING[self.action]}."

    def __bool__(self) -> bool:
        return self.allowed


class Refused(PermissionError):
    """Raised by `require`: the decision says who may instead."""

    def __init__(self, decision: Decision):
        super().__init__(decision.message)
        self.decision = decision


@dataclass(frozen=True)
class Policy:
    rules: Mapping[Action, tuple[str, ...]]
    configured: Mapping[str, tuple[str, ...]]  # configured role -> its subjects (user ids, S ids, @handles)
    close_approval: frozenset[str] = field(default_factory=frozenset)  # severities and/or "security"

    def direct_subjects(self) -> set[str]:
        """Subjects rules name directly (not through a role): they are resolved like role members."""
        return {entry for roles in self.rules.values() for entry in roles if entry not in ROLE_NAMES}

    def needs_second_person(self, *, severity_reached: str, security: bool) -> bool:
        """Whether closing needs someone other than the requester, from the worst severity reached."""
        return (security and "security" in self.close_approval) or severity_reached in self.close_approval

    def describe(self) -> dict:
        """The policy in force, as recorded evidence (JSON)."""
        return {"rules": {action.value: list(roles) for action, roles in self.rules.items()},
                "roles": {role: list(subjects) for role, subjects in self.configured.items()},
                "close_approval": sorted(self.close_approval)}


Holder = str | frozenset[str] | set[str] | None  # one person, or several (an incident's members)


def decide(policy: Policy, action: Action, actor: Actor, *, excluded: str | None = None,
           excluded_reason: str = "", **holders: Holder) -> Decision:
    """May `actor` take `action`? `holders` name who holds record roles (`lead="U1"`, or a set such
    as `member={"U1", "U2"}`); `excluded` is someone who may not, whatever their roles (the
    requester of a close, the owner of a risk)."""
    unknown = set(holders) - set(RECORD_ROLES)
    if unknown:
        raise ValueError(f"unknown record roles {sorted(unknown)}")
    rules = policy.rules[action]
    who_may = describe_holders(policy, rules, holders, excluded)
    if excluded is not None and actor.user == excluded:
        return Decision(action, False, who_may, excluded_reason or "You cannot do this yourself.")
    allowed = any(_holds(actor, role, holders) for role in rules)
    return Decision(action, allowed, who_may)


def _holds(actor: Actor, entry: str, holders: Mapping[str, str | None]) -> bool:
    if entry == ANYONE:
        return True
    if entry in RECORD_ROLES:
        holder = holders.get(entry)
        if isinstance(holder, (set, frozenset)):
            return actor.user in holder
        return holder is not None and holder == actor.user
    if entry in CONFIGURED_ROLES:
        return entry in actor.roles
    return entry in actor.subjects


def describe_holders(policy: Policy, rules: tuple[str, ...], holders: Mapping[str, str | None],
                     excluded: str | None = None) -> str:
    """"the incident lead (<@U1>), a commander (@incident-commanders) or an admin (<@U9>)"."""
    parts = []
    for entry in rules:
        if entry == ANYONE:
            parts.append("anyone")
        elif entry in RECORD_ROLES:
            holder = holders.get(entry)
            if isinstance(holder, (set, frozenset)):
                parts.append(RECORD_ROLES[entry])  # "a member of the incident": not listed one by one
            elif holder is None and entry in holders and entry == "lead":
                parts.append(f"{RECORD_ROLES[entry]} (none yet)")
            elif holder is not None and holder != excluded:
                parts.append(f"{RECORD_ROLES[entry]} ({render_subject(holder)})")
        elif entry in CONFIGURED_ROLES:
            variable, called = CONFIGURED_ROLES[entry]
            subjects = policy.configured.get(entry, ())
            named = _listing([render_subject(s) for s in subjects if s != excluded][:5])
            parts.append(f"{called} ({named})" if named else f"{called} (none is set: {variable})")
        else:
            parts.append(render_subject(entry))
    named = _listing(parts) or "no one (check VIGIL_PERMISSIONS)"
    return f"{named}, other than {render_subject(excluded)}" if excluded is not None else named


def _listing(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def build_policy(*, configured: Mapping[str, str], overrides: str = "", close_approval: str = "") -> Policy:
    """The policy from settings text: each configured role's subjects, `VIGIL_PERMISSIONS` overrides
    (`action=role,role;action=…`), and which incidents need a second person to close."""
    roles = {role: tuple(parse_subjects(configured.get(role, ""), CONFIGURED_ROLES[role][0]))
             for role in CONFIGURED_ROLES}
    rules = dict(DEFAULT_RULES)
    for chunk in (part.strip() for part in overrides.split(";")):
        if not chunk:
            continue
        name, sep, entries = chunk.partition("=")
        try:
            action = Action(name.strip().lower())
        except ValueError:
            raise PolicyError(f"VIGIL_PERMISSIONS: `{name.strip()}` is not an action; actions are "
                              f"{', '.join(a.value for a in Action)}.") from None
        if not sep:
            raise PolicyError(f"VIGIL_PERMISSIONS: write `{action.value}=role,role` (got `{chunk}`).")
        listed = [entry.strip() for entry in entries.split(",") if entry.strip()]
        rule = []
        for entry in listed:
            if entry.lower() in ROLE_NAMES:
                rule.append(entry.lower())
            else:
                rule += parse_subjects(entry, "VIGIL_PERMISSIONS")
        if not rule:
            raise PolicyError(f"VIGIL_PERMISSIONS: `{action.value}` names no one; use `anyone` or roles.")
        rules[action] = tuple(rule)
    wanted = {part.strip().lower() for part in close_approval.split(",") if part.strip()}
    allowed = {"sev1", "sev2", "sev3", "sev4", "security", "none"}
    if wanted - allowed:
        raise PolicyError(f"VIGIL_CLOSE_APPROVAL: {', '.join(sorted(wanted - allowed))} is not a severity "
                          "(sev1…sev4), `security` or `none`.")
    return Policy(rules=rules, configured=roles, close_approval=frozenset(wanted - {"none"}))
