"""Settings from the environment (and a `.env` file): the one place configuration is read."""

from __future__ import annotations

from typing import Literal

from datetime import date

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


SUPPORTED_DATABASES = ("sqlite:", "postgresql+psycopg:")
# What pydantic's messages leave implicit, by the type of the value expected.
ACCEPTED = {"bool_parsing": "true or false", "int_parsing": "a whole number", "float_parsing": "a number"}


class SettingsError(ValueError):
    """One or more environment variables have values Vigil cannot use; one line each, naming it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _problems(invalid: ValidationError) -> list[str]:
    aliases = {name: field.alias or name for name, field in Settings.model_fields.items()}
    problems = []
    for error in invalid.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        variable = aliases.get(name, name)
        message = error["msg"].removeprefix("Value error, ")
        accepted = ACCEPTED.get(error["type"])
        given = error.get("input")
        shown = f"={given!r}" if isinstance(given, str) and variable not in SECRET_VARIABLES else ""
        problems.append(f"{variable}{shown}: {message}" + (f" (use {accepted})" if accepted else ""))
    return problems


# Never echoed back in an error line.
SECRET_VARIABLES = {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_CLIENT_SECRET",
                    "VIGIL_SESSION_SECRET", "VIGIL_METRICS_TOKEN", "DATABASE_URL",
                    "VIGIL_ALERTMANAGER_TOKEN", "VIGIL_GRAFANA_TOKEN", "VIGIL_GENERIC_ALERT_TOKEN",
                    "VIGIL_OPSGENIE_WEBHOOK_TOKEN", "VIGIL_PAGERDUTY_WEBHOOK_SECRET", "VIGIL_PAGERDUTY_SERVICES",
                    "VIGIL_OPSGENIE_API_KEY",
                    "VIGIL_JIRA_API_TOKEN", "VIGIL_JIRA_WEBHOOK_SECRET", "VIGIL_GITHUB_TOKEN",
                    "VIGIL_GITHUB_WEBHOOK_SECRET", "VIGIL_LINEAR_API_KEY", "VIGIL_LINEAR_WEBHOOK_SECRET"}


def sqlalchemy_url(url: str) -> str:
    """Heroku-style `postgres://` URLs are rejected by SQLAlchemy >= 1.4; and we ship the psycopg
    (3) driver, so name it rather than rely on SQLAlchemy's default for its version."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite:///vigil.db", alias="DATABASE_URL")
    slack_bot_token: str | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: str | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: str | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    # The only place a request's `response_url` may point (tests point it at a fake on loopback).
    slack_hooks_url: str = Field("https://hooks.slack.com/", alias="SLACK_HOOKS_URL")
    incident_feed_channel: str | None = Field(None, alias="VIGIL_INCIDENT_FEED_CHANNEL")
    risk_channel: str | None = Field(None, alias="VIGIL_RISK_CHANNEL")
    audit_channel: str | None = Field(None, alias="VIGIL_AUDIT_CHANNEL")
    # How often the chain heads' digest is published to VIGIL_AUDIT_CHANNEL (a witness).
    witness_interval: str = Field("1h", alias="VIGIL_WITNESS_INTERVAL")
    # The installation's Ed25519 key that signs evidence bundles (PKCS8 PEM, owner-only; created on
    # first use). Kept outside the database so that database access alone cannot sign.
    signing_key_file: str = Field("vigil-signing-key.pem", alias="VIGIL_SIGNING_KEY_FILE")
    # Who holds each role of the permissions policy (docs/permissions.md): comma-separated Slack user
    # ids (U…), user group ids (S…) or user group handles (@incident-commanders).
    admins: str = Field("", alias="VIGIL_ADMINS")
    commanders: str = Field("", alias="VIGIL_COMMANDERS")
    risk_approvers: str = Field("", alias="VIGIL_RISK_APPROVERS")
    register_viewers: str = Field("", alias="VIGIL_REGISTER_VIEWERS")
    # Overrides of the default rules: `action=role,role;action=…` (roles, or subjects as above).
    permissions: str = Field("", alias="VIGIL_PERMISSIONS")
    # Which incidents need a second person (a commander or admin) to approve their closing.
    close_approval: str = Field("sev1,sev2,security", alias="VIGIL_CLOSE_APPROVAL")
    # Private incidents (docs/permissions.md): incident types private by default ("none": only when the
    # form's box is ticked), what the incident feed says of one ("redacted": a line without the title,
    # "none": nothing), and who is invited to every private incident's channel besides the declarer
    # and the lead (Slack subjects as above, e.g. @security).
    private_incident_types: str = Field("security", alias="VIGIL_PRIVATE_INCIDENT_TYPES")
    private_feed: Literal["redacted", "none"] = Field("redacted", alias="VIGIL_PRIVATE_FEED")
    security_group: str = Field("", alias="VIGIL_SECURITY_GROUP")
    # How long a user group's members (usergroups.users.list) are trusted before asking Slack again.
    group_cache_seconds: float = Field(60.0, alias="VIGIL_GROUP_CACHE_SECONDS")
    host: str = Field("127.0.0.1", alias="HOST")
    port: int = Field(8000, alias="PORT", ge=1, le=65535)
    # How often the channel is reminded to post a status update, per severity ("none": never).
    update_cadence: str = Field("sev1=30m,sev2=60m,sev3=4h,sev4=none", alias="VIGIL_UPDATE_CADENCE")
    # Post-incident review due, in business days after resolution, per severity ("none": optional).
    pir_due: str = Field("sev1=5,sev2=5,sev3=10,sev4=none", alias="VIGIL_PIR_DUE")
    # While a status update stays overdue, remind again this often ("none": once per due time).
    update_reminder_repeat: str = Field("30m", alias="VIGIL_UPDATE_REMINDER_REPEAT")
    # Public holidays (YYYY-MM-DD, comma-separated) skipped when counting business days.
    holidays: str = Field("", alias="VIGIL_HOLIDAYS")
    # Folder of playbook YAML files; default: the `playbooks/` folder shipped with Vigil.
    playbooks_dir: str | None = Field(None, alias="VIGIL_PLAYBOOKS_DIR")
    # Whether `vigil serve` also sends reminders and delivers the outbox in the background. Turn it
    # off when separate `vigil worker` processes do that job, so web processes only answer Slack.
    web_runs_worker: bool = Field(True, alias="VIGIL_WEB_RUNS_WORKER")
    # Outbox delivery: how long a claim is held before another worker may take the item over.
    outbox_claim_seconds: int = Field(120, alias="VIGIL_OUTBOX_CLAIM_SECONDS")
    # Timeout for one Slack Web API call made by the outbox sender.
    slack_timeout_seconds: float = Field(10.0, alias="VIGIL_SLACK_TIMEOUT_SECONDS")
    # Dashboard sign-in (docs/dashboard.md). "Sign in with Slack" needs the client id and secret
    # and the public URL Vigil is reached at (the OpenID redirect goes to <base>/login/slack/callback).
    slack_client_id: str | None = Field(None, alias="SLACK_CLIENT_ID")
    slack_client_secret: str | None = Field(None, alias="SLACK_CLIENT_SECRET")
    base_url: str | None = Field(None, alias="VIGIL_BASE_URL")
    # Slack user ids (comma-separated) who may read the dashboard besides the admins.
    dashboard_viewers: str = Field("", alias="VIGIL_DASHBOARD_VIEWERS")
    # Let every member of the workspace (SLACK_TEAM_ID, else the bot token's team) read the dashboard.
    dashboard_allow_workspace: bool = Field(False, alias="VIGIL_DASHBOARD_ALLOW_WORKSPACE")
    slack_team_id: str | None = Field(None, alias="SLACK_TEAM_ID")
    # Signs the dashboard's session cookie; unset: a random one per process (sessions end on restart).
    session_secret: str | None = Field(None, alias="VIGIL_SESSION_SECRET")
    session_hours: float = Field(12.0, alias="VIGIL_SESSION_HOURS", gt=0)
    # Failed token sign-ins allowed per client address and per token prefix in each window; past
    # that, sign-in answers 429 until the window ends (docs/dashboard.md).
    sign_in_failure_limit: int = Field(10, alias="VIGIL_SIGN_IN_FAILURE_LIMIT", ge=1)
    sign_in_window_minutes: float = Field(15.0, alias="VIGIL_SIGN_IN_WINDOW_MINUTES", gt=0)
    # Dashboard page views recorded one by one per viewer in each window; past that, one
    # "N further views" event per window (docs/dashboard.md).
    access_log_limit: int = Field(300, alias="VIGIL_ACCESS_LOG_LIMIT", ge=1)
    access_log_window_minutes: float = Field(60.0, alias="VIGIL_ACCESS_LOG_WINDOW_MINUTES", gt=0)
    # GET /metrics: when set, scrapers must send `Authorization: Bearer <token>`; unset, it is open.
    metrics_token: str | None = Field(None, alias="VIGIL_METRICS_TOKEN")
    # Log lines: "json" or "text"; unset: text on a terminal, JSON otherwise (`vigil --log-format`).
    log_format: Literal["json", "text"] | None = Field(None, alias="VIGIL_LOG_FORMAT")
    # Where alerts that match no open incident are posted for triage (docs/integrations.md).
    triage_channel: str | None = Field(None, alias="VIGIL_TRIAGE_CHANNEL")
    # Alerts in (docs/integrations.md): each source's credential; a source without one answers 404.
    # Bearer tokens for Alertmanager, Grafana, Opsgenie and the generic shape; PagerDuty's webhook
    # subscription secret(s), comma-separated while a secret is rotated.
    alertmanager_token: str | None = Field(None, alias="VIGIL_ALERTMANAGER_TOKEN")
    grafana_token: str | None = Field(None, alias="VIGIL_GRAFANA_TOKEN")
    generic_alert_token: str | None = Field(None, alias="VIGIL_GENERIC_ALERT_TOKEN")
    opsgenie_webhook_token: str | None = Field(None, alias="VIGIL_OPSGENIE_WEBHOOK_TOKEN")
    pagerduty_webhook_secret: str | None = Field(None, alias="VIGIL_PAGERDUTY_WEBHOOK_SECRET")
    # Severities for which an incident is declared as soon as a new alert group fires ("none": never).
    alert_auto_declare: str = Field("none", alias="VIGIL_ALERT_AUTO_DECLARE")
    # Pages out (docs/integrations.md): PagerDuty services by Events API v2 routing key
    # (`name=key,…`), Opsgenie responders (`name=team:Ops+schedule:Primary,…`) and its API key.
    pagerduty_services: str = Field("", alias="VIGIL_PAGERDUTY_SERVICES")
    opsgenie_responders: str = Field("", alias="VIGIL_OPSGENIE_RESPONDERS")
    opsgenie_api_key: str | None = Field(None, alias="VIGIL_OPSGENIE_API_KEY")
    pagerduty_events_url: str = Field("https://events.pagerduty.com", alias="VIGIL_PAGERDUTY_EVENTS_URL")
    opsgenie_api_url: str = Field("https://api.opsgenie.com", alias="VIGIL_OPSGENIE_API_URL")
    paging_timeout_seconds: float = Field(10.0, alias="VIGIL_PAGING_TIMEOUT_SECONDS", gt=0)
    # Resolving (or closing) an incident resolves its open pages at the providers.
    resolve_pages_with_incident: bool = Field(True, alias="VIGIL_RESOLVE_PAGES_WITH_INCIDENT")
    # Alert webhooks larger than this are refused (413) before they are read.
    alert_max_bytes: int = Field(1024 * 1024, alias="VIGIL_ALERT_MAX_BYTES", ge=1024)
    # Ticket trackers (docs/integrations.md): follow-up actions as Jira, GitHub or Linear issues, in sync.
    # Which tracker new tickets go to when more than one is set up.
    ticket_tracker: str = Field("", alias="VIGIL_TICKET_TRACKER")
    jira_url: str | None = Field(None, alias="VIGIL_JIRA_URL")  # https://your-site.atlassian.net
    jira_email: str | None = Field(None, alias="VIGIL_JIRA_EMAIL")
    jira_api_token: str | None = Field(None, alias="VIGIL_JIRA_API_TOKEN")
    # Where new issues go: `selector=PROJECT[/Issue type]` pairs (selector: default, risk, a severity or type).
    jira_projects: str = Field("", alias="VIGIL_JIRA_PROJECTS")
    jira_webhook_secret: str | None = Field(None, alias="VIGIL_JIRA_WEBHOOK_SECRET")
    github_token: str | None = Field(None, alias="VIGIL_GITHUB_TOKEN")
    github_api_url: str = Field("https://api.github.com", alias="VIGIL_GITHUB_API_URL")
    github_repos: str = Field("", alias="VIGIL_GITHUB_REPOS")  # `selector=owner/repo` pairs
    github_webhook_secret: str | None = Field(None, alias="VIGIL_GITHUB_WEBHOOK_SECRET")
    # GitHub logins and the e-mail addresses Slack knows them by (`octocat=dana@example.com`, …).
    github_users: str = Field("", alias="VIGIL_GITHUB_USERS")
    linear_api_key: str | None = Field(None, alias="VIGIL_LINEAR_API_KEY")
    linear_api_url: str = Field("https://api.linear.app/graphql", alias="VIGIL_LINEAR_API_URL")
    linear_teams: str = Field("", alias="VIGIL_LINEAR_TEAMS")  # `selector=TEAMKEY` pairs
    linear_webhook_secret: str | None = Field(None, alias="VIGIL_LINEAR_WEBHOOK_SECRET")
    # Severities, incident types, `security` or `risk` whose actions always get a ticket.
    tickets_always: str = Field("", alias="VIGIL_TICKETS_ALWAYS")
    # What closing an action in Slack does to its open ticket: close it, comment on it, or nothing.
    tickets_on_done: str = Field("close", alias="VIGIL_TICKETS_ON_DONE")
    # How long an action and its ticket may disagree (one done, the other open) before the owner is told.
    tickets_divergence_grace: str = Field("1d", alias="VIGIL_TICKETS_DIVERGENCE_GRACE")
    # How often each linked ticket is read back from its tracker, catching webhooks that never came.
    tickets_reconcile_interval: str = Field("15m", alias="VIGIL_TICKETS_RECONCILE_INTERVAL")
    tickets_timeout_seconds: float = Field(10.0, alias="VIGIL_TICKETS_TIMEOUT_SECONDS", gt=0)

    @field_validator("database_url")
    @classmethod
    def _sqlalchemy_driver(cls, url: str) -> str:
        url = sqlalchemy_url(url.strip())
        if not url.startswith(SUPPORTED_DATABASES):
            raise ValueError("Vigil runs on SQLite (sqlite:///FILE) or PostgreSQL (postgresql://USER:PASSWORD@HOST/DB)")
        return url

    @field_validator("witness_interval")
    @classmethod
    def _witness_interval(cls, value: str) -> str:
        from vigil_ir.playbooks.durations import parse_duration

        parse_duration(value.strip())
        return value.strip()

    @field_validator("signing_key_file")
    @classmethod
    def _key_file(cls, value: str) -> str:
        return value.strip() or "vigil-signing-key.pem"

    @field_validator("private_incident_types")
    @classmethod
    def _incident_types(cls, value: str) -> str:
        from vigil_ir.incidents.models import TYPES

        wanted = {part.strip().lower() for part in value.split(",") if part.strip()} - {"none"}
        unknown = sorted(wanted - set(TYPES))
        if unknown:
            raise ValueError(f"{', '.join(unknown)} is not an incident type; give types from {', '.join(TYPES)} "
                             "separated by commas, or none")
        return ",".join(sorted(wanted))

    @field_validator("alert_auto_declare")
    @classmethod
    def _auto_declare_severities(cls, value: str) -> str:
        from vigil_ir.incidents.models import SEVERITIES

        wanted = {part.strip().lower() for part in value.split(",") if part.strip()} - {"none"}
        unknown = sorted(wanted - set(SEVERITIES))
        if unknown:
            raise ValueError(f"{', '.join(unknown)} is not a severity; give severities from sev1…sev4 separated by "
                             "commas, or none")
        return ",".join(sorted(wanted))

    @field_validator("opsgenie_responders")
    @classmethod
    def _paging_targets(cls, value: str, info) -> str:
        from vigil_ir.paging.targets import parse_targets

        parse_targets(info.data.get("pagerduty_services", ""), value)
        return value

    @field_validator("private_feed", mode="before")
    @classmethod
    def _lower_private_feed(cls, value):
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("security_group")
    @classmethod
    def _security_subjects(cls, value: str) -> str:
        from vigil_ir.permissions.subjects import parse_subjects

        return ",".join(parse_subjects(value, "VIGIL_SECURITY_GROUP"))

    @field_validator("holidays")
    @classmethod
    def _holiday_dates(cls, value: str) -> str:
        for day in (part.strip() for part in value.split(",")):
            if day:
                try:
                    date.fromisoformat(day)
                except ValueError:
                    raise ValueError(f"{day!r} is not a date; give YYYY-MM-DD dates separated by commas") from None
        return value

    @field_validator("slack_bot_token", "slack_signing_secret", "slack_app_token",
                     "incident_feed_channel", "risk_channel", "audit_channel", "slack_client_id",
                     "slack_client_secret", "base_url", "slack_team_id", "session_secret", "metrics_token",
                     "playbooks_dir", "triage_channel", "alertmanager_token", "grafana_token", "generic_alert_token",
                     "opsgenie_webhook_token", "pagerduty_webhook_secret", "opsgenie_api_key",
                     "jira_url", "jira_email", "jira_api_token", "jira_webhook_secret",
                     "github_token", "github_webhook_secret", "linear_api_key", "linear_webhook_secret")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_log_format(cls, value):
        return (value.strip().lower() or None) if isinstance(value, str) else value

    def setting(self, variable: str):
        """The value of the setting read from environment variable `variable`."""
        for name, spec in type(self).model_fields.items():
            if spec.alias == variable:
                return getattr(self, name)
        raise KeyError(variable)

    @property
    def auto_declare_severities(self) -> frozenset[str]:
        return frozenset(part for part in self.alert_auto_declare.split(",") if part)

    @property
    def admin_ids(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.admins.split(",") if part.strip())

    @property
    def private_types(self) -> frozenset[str]:
        return frozenset(part for part in self.private_incident_types.split(",") if part)

    @property
    def security_subjects(self) -> tuple[str, ...]:
        return tuple(part for part in self.security_group.split(",") if part)

    @property
    def risk_approver_ids(self) -> frozenset[str]:
        """Who may approve a risk review: admins and configured approvers (never the reviewer)."""
        extra = frozenset(part.strip() for part in self.risk_approvers.split(",") if part.strip())
        return self.admin_ids | extra

    @property
    def dashboard_viewer_ids(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.dashboard_viewers.split(",") if part.strip())

    @property
    def missing_slack_sign_in(self) -> list[str]:
        """Names of the variables "Sign in with Slack" needs and does not have."""
        return [name for name, value in (("SLACK_CLIENT_ID", self.slack_client_id),
                                         ("SLACK_CLIENT_SECRET", self.slack_client_secret),
                                         ("VIGIL_BASE_URL", self.base_url)) if not value]

    @property
    def missing_slack_credentials(self) -> list[str]:
        """Names of the variables HTTP mode needs and does not have."""
        return self.missing_credentials_for("http")

    def missing_credentials_for(self, mode: str) -> list[str]:
        """What a way of running needs and does not have: HTTP verifies Slack's signatures, Socket
        Mode opens its own connection with the app-level token instead, and a worker only calls the
        Web API."""
        needed = {"http": (("SLACK_BOT_TOKEN", self.slack_bot_token),
                           ("SLACK_SIGNING_SECRET", self.slack_signing_secret)),
                  "socket": (("SLACK_APP_TOKEN", self.slack_app_token),
                             ("SLACK_BOT_TOKEN", self.slack_bot_token)),
                  "worker": (("SLACK_BOT_TOKEN", self.slack_bot_token),)}[mode]
        return [name for name, value in needed if not value]


def load_settings(**overrides) -> Settings:
    """Read settings now (tests change the environment between app instances); SettingsError naming
    every variable whose value cannot be used."""
    try:
        return Settings(**overrides)
    except ValidationError as invalid:
        raise SettingsError(_problems(invalid)) from None
