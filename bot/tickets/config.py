"""Ticket settings, read and checked once: which trackers are set up, where new tickets go, and the
sync policy (always-create, what closing an action does to its ticket, divergence grace, reconcile).

Routes are `selector=target` pairs: the selector is `default`, an incident type, a severity or `risk`
(risk treatment actions); the target is a Jira project with an optional issue type (`OPS/Task`), a
GitHub repository (`acme/ops`) or a Linear team key (`ENG`). An incident's type is tried first, then
its severity, then `default`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from vigil_ir.tickets.trackers import Target, Tracker

if TYPE_CHECKING:
    from vigil_ir.config import Settings
    from vigil_ir.incidents.models import Incident

ON_DONE = ("close", "comment", "none")
SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
JIRA_PROJECT = re.compile(r"^([A-Z][A-Z0-9_]{0,49})(?:/(.{1,60}))?$")
GITHUB_REPO = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
LINEAR_TEAM = re.compile(r"^[A-Z][A-Z0-9]{0,9}$")
ROUTE_VARIABLES = {"jira": "VIGIL_JIRA_PROJECTS", "github": "VIGIL_GITHUB_REPOS", "linear": "VIGIL_LINEAR_TEAMS"}


class TicketSettingsError(ValueError):
    """A ticket setting Vigil cannot use; the message names the variable."""


def _selectors() -> set[str]:
    from vigil_ir.incidents.models import TYPES

    return {"default", "risk", *SEVERITIES, *TYPES}


def _pairs(text: str, variable: str) -> dict[str, str]:
    found = {}
    for chunk in (part.strip() for part in (text or "").split(",")):
        if not chunk:
            continue
        name, sep, value = chunk.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise TicketSettingsError(f"{variable}: write `selector=value` pairs separated by commas (got `{chunk}`)")
        found[name.strip()] = value.strip()
    return found


def parse_routes(tracker: str, text: str) -> dict[str, Target]:
    variable = ROUTE_VARIABLES[tracker]
    routes = {}
    for selector, value in _pairs(text, variable).items():
        selector = selector.lower()
        if selector not in _selectors():
            raise TicketSettingsError(f"{variable}: `{selector}` is not `default`, `risk`, a severity (sev1…sev4) or "
                                      "an incident type")
        if tracker == "jira":
            match = JIRA_PROJECT.match(value)
            if not match:
                raise TicketSettingsError(f"{variable}: `{value}` is not a Jira project key, optionally with an issue "
                                          "type (OPS or OPS/Task)")
            routes[selector] = Target(match.group(1), (match.group(2) or "").strip() or None)
        elif tracker == "github":
            if not GITHUB_REPO.match(value):
                raise TicketSettingsError(f"{variable}: `{value}` is not a GitHub repository (owner/name)")
            routes[selector] = Target(value)
        else:
            if not LINEAR_TEAM.match(value):
                raise TicketSettingsError(f"{variable}: `{value}` is not a Linear team key (e.g. ENG)")
            routes[selector] = Target(value)
    return routes


@dataclass
class TicketConfig:
    trackers: dict[str, Tracker] = field(default_factory=dict)
    default: str | None = None
    routes: dict[str, dict[str, Target]] = field(default_factory=dict)
    always: frozenset[str] = frozenset()
    on_done: str = "close"
    grace: timedelta = timedelta(days=1)
    reconcile_every: timedelta = timedelta(minutes=15)

    @property
    def enabled(self) -> bool:
        return bool(self.trackers)

    def describe(self) -> dict:
        """The ticket policy in force, as recorded evidence (no credentials)."""
        return {"trackers": sorted(self.trackers), "new_tickets_in": self.default,
                "routes": {name: {selector: target.project + (f"/{target.issue_type}" if target.issue_type else "")
                                  for selector, target in sorted(routes.items())}
                           for name, routes in sorted(self.routes.items()) if routes},
                "always_for": sorted(self.always), "on_action_closed": self.on_done,
                "divergence_grace": str(self.grace), "reconcile_interval": str(self.reconcile_every)}

    def tracker(self, name: str | None = None) -> Tracker | None:
        return self.trackers.get(name or self.default or "")

    def selectors(self, incident: Incident | None, risk: bool) -> list[str]:
        if risk:
            return ["risk", "default"]
        if incident is None:
            return ["default"]
        return [incident.type, incident.severity, "default"]

    def target_for(self, tracker: str, incident: Incident | None, risk: bool = False) -> Target | None:
        routes = self.routes.get(tracker, {})
        return next((routes[s] for s in self.selectors(incident, risk) if s in routes), None)

    def always_for(self, incident: Incident | None, risk: bool = False) -> str | None:
        """The setting entry that makes a ticket compulsory for this action's parent, if any."""
        if not self.enabled:
            return None
        if risk:
            return "risk" if "risk" in self.always else None
        if incident is None:
            return None
        if incident.security and "security" in self.always:
            return "security"
        return next((s for s in (incident.severity, incident.type) if s in self.always), None)

    def parse_ref(self, text: str) -> tuple[str, str] | None:
        """(tracker, key) for a ticket URL of any configured tracker, or a bare key of the default one."""
        text = (text or "").strip()
        if text.lower().startswith(("http://", "https://", "<http")):
            for name, tracker in self.trackers.items():
                key = tracker.parse_ref(text)
                if key:
                    return name, key
            return None
        tracker = self.tracker()
        key = tracker.parse_ref(text) if tracker else None
        if key:
            return tracker.name, key
        for name, other in self.trackers.items():  # owner/repo#7 is GitHub's whatever the default
            if name == "github" and (key := other.parse_ref(text)):
                return name, key
        return None


_CACHE: dict[tuple, TicketConfig] = {}
FIELDS = ("ticket_tracker", "jira_url", "jira_email", "jira_api_token", "jira_projects", "jira_webhook_secret",
          "github_token", "github_api_url", "github_repos", "github_webhook_secret", "github_users",
          "linear_api_key", "linear_api_url", "linear_teams", "linear_webhook_secret", "tickets_always",
          "tickets_on_done", "tickets_divergence_grace", "tickets_reconcile_interval", "tickets_timeout_seconds")


def config_for(settings: Settings) -> TicketConfig:
    """The ticket configuration of these settings (built once per distinct set of values)."""
    values = tuple(getattr(settings, name) for name in FIELDS)
    if values not in _CACHE:
        _CACHE[values] = build(settings)
    return _CACHE[values]


def build(settings: Settings) -> TicketConfig:
    from vigil_ir.playbooks.durations import parse_duration
    from vigil_ir.tickets.github import GitHub
    from vigil_ir.tickets.jira import Jira
    from vigil_ir.tickets.linear import Linear

    timeout = settings.tickets_timeout_seconds
    trackers: dict[str, Tracker] = {}
    jira_parts = {"VIGIL_JIRA_URL": settings.jira_url, "VIGIL_JIRA_EMAIL": settings.jira_email,
                  "VIGIL_JIRA_API_TOKEN": settings.jira_api_token}
    if any(jira_parts.values()):
        missing = [name for name, value in jira_parts.items() if not value]
        if missing:
            raise TicketSettingsError(f"Jira needs {', '.join(jira_parts)} together; {' and '.join(missing)} "
                                      f"{'is' if len(missing) == 1 else 'are'} not set")
        trackers["jira"] = Jira(base_url=settings.jira_url, email=settings.jira_email, timeout=timeout,
                                api_token=settings.jira_api_token, webhook_secret=settings.jira_webhook_secret)
    if settings.github_token:
        logins = _pairs(settings.github_users, "VIGIL_GITHUB_USERS")
        for login, email in logins.items():
            if "@" not in email:
                raise TicketSettingsError(f"VIGIL_GITHUB_USERS: `{login}={email}`: give the person's e-mail address")
        trackers["github"] = GitHub(token=settings.github_token, api_url=settings.github_api_url, timeout=timeout,
                                    webhook_secret=settings.github_webhook_secret, logins=logins)
    if settings.linear_api_key:
        trackers["linear"] = Linear(api_key=settings.linear_api_key, api_url=settings.linear_api_url,
                                    webhook_secret=settings.linear_webhook_secret, timeout=timeout)
    routes = {"jira": parse_routes("jira", settings.jira_projects),
              "github": parse_routes("github", settings.github_repos),
              "linear": parse_routes("linear", settings.linear_teams)}
    for name, variable in ROUTE_VARIABLES.items():
        if routes[name] and name not in trackers:
            raise TicketSettingsError(f"{variable} is set but {_credentials(name)} is not")
    default = (settings.ticket_tracker or "").strip().lower() or None
    if default and default not in trackers:
        raise TicketSettingsError(f"VIGIL_TICKET_TRACKER={default}: "
                                  + (f"{_credentials(default)} is not set" if default in ROUTE_VARIABLES
                                     else "choose jira, github or linear"))
    if default is None and len(trackers) > 1:
        raise TicketSettingsError(f"VIGIL_TICKET_TRACKER: {' and '.join(trackers)} are both set up; say which one "
                                  "new tickets go to")
    default = default or next(iter(trackers), None)
    always = {part.strip().lower() for part in settings.tickets_always.split(",") if part.strip()} - {"none"}
    unknown = always - _selectors() - {"security"}
    if unknown:
        raise TicketSettingsError(f"VIGIL_TICKETS_ALWAYS: {', '.join(sorted(unknown))} is not a severity, an incident "
                                  "type, `security` or `risk`")
    on_done = settings.tickets_on_done.strip().lower()
    if on_done not in ON_DONE:
        raise TicketSettingsError(f"VIGIL_TICKETS_ON_DONE={on_done}: choose close, comment or none")
    durations = {}
    for variable, text in (("VIGIL_TICKETS_DIVERGENCE_GRACE", settings.tickets_divergence_grace),
                           ("VIGIL_TICKETS_RECONCILE_INTERVAL", settings.tickets_reconcile_interval)):
        try:
            durations[variable] = parse_duration(text.strip())
        except ValueError as problem:
            raise TicketSettingsError(f"{variable}: {problem}") from None
    return TicketConfig(trackers=trackers, default=default, routes=routes, always=frozenset(always), on_done=on_done,
                        grace=durations["VIGIL_TICKETS_DIVERGENCE_GRACE"],
                        reconcile_every=durations["VIGIL_TICKETS_RECONCILE_INTERVAL"])


def _credentials(tracker: str) -> str:
    return {"jira": "VIGIL_JIRA_URL/VIGIL_JIRA_EMAIL/VIGIL_JIRA_API_TOKEN", "github": "VIGIL_GITHUB_TOKEN",
            "linear": "VIGIL_LINEAR_API_KEY"}[tracker]
