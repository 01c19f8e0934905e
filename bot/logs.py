"""Logging set-up for the `vigil` command: JSON lines or text on stderr, a request id, redaction.

`setup()` installs one handler on the root logger; uvicorn's error and access loggers propagate to
it (`vigil serve` passes `log_config=None`), so every line has the same shape. The request id is a
context variable set by the web middleware (bot/web/metrics.py); Starlette's `run_in_threadpool`
copies the context, so lines logged by bolt listeners carry it too. `bind()` adds fields (e.g.
`worker`) to every line logged later in the same thread or task.

Secrets must not be logged in the first place; redaction is a safety net: Slack tokens, auditor
tokens, bearer credentials, URL passwords and OAuth codes in query strings, and the literal values
of the configured secrets.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import datetime, timezone

from sqlalchemy.engine import make_url

request_id: ContextVar[str | None] = ContextVar("vigil_request_id", default=None)
_fields: ContextVar[dict | None] = ContextVar("vigil_log_fields", default=None)

REDACTED = "[REDACTED]"
_PATTERNS = [
    (re.compile(r"\b(xox[abeprs](?:\.xox[abeprs])?|xapp)-[A-Za-z0-9-]+"), rf"\1-{REDACTED}"),
    (re.compile(r"\bvigil_at_[A-Za-z0-9_-]+"), f"vigil_at_{REDACTED}"),
    (re.compile(r"(\bBearer\s+)[^\s\"',]+", re.IGNORECASE), rf"\1{REDACTED}"),
    (re.compile(r"(://[^:/@\s]*:)[^@\s/]+@"), rf"\1{REDACTED}@"),  # scheme://user:password@host
    (re.compile(r"((?:^|[?&\s])(?:code|state|token)=)[^&\s\"']+"), rf"\1{REDACTED}"),  # query and form bodies
    (re.compile(r"(\"token\"\s*:\s*\")[^\"]*"), rf"\1{REDACTED}"),  # Slack's legacy verification token in JSON
    (re.compile(r"(%22token%22%3A(?:%20)?%22)[^%&]*", re.IGNORECASE), rf"\1{REDACTED}"),  # … URL-encoded
]
# Cheap first look: only text containing one of these goes through the patterns above.
_MAYBE = re.compile(r"xox|xapp-|vigil_at_|bearer|://|code=|state=|token", re.IGNORECASE)
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message", "taskName"}


class Redactor:
    def __init__(self, secrets=()):
        # Short values (e.g. test placeholders) would redact ordinary words.
        self.literals = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for literal in self.literals:
            if literal in text:
                text = text.replace(literal, REDACTED)
        if _MAYBE.search(text):
            for pattern, replacement in _PATTERNS:
                text = pattern.sub(replacement, text)
        return text


def secrets_of(settings) -> list[str]:
    """The configured secret values (literal redaction); [] without settings."""
    if settings is None:
        return []
    values = [settings.slack_bot_token, settings.slack_signing_secret, settings.slack_app_token,
              settings.slack_client_secret, settings.session_secret, settings.metrics_token]
    try:
        values.append(make_url(settings.database_url).password)
    except Exception:  # noqa: BLE001 - an unparsable URL has no password to find
        pass
    return [value for value in values if value]


def bind(**fields) -> None:
    """Add fields to every record logged afterwards in this thread (or task)."""
    _fields.set({**(_fields.get() or {}), **fields})


def context() -> dict:
    """The request id and bound fields of the current context."""
    found = dict(_fields.get() or {})
    if (current := request_id.get()) is not None:
        found["request_id"] = current
    return found


def _timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, bound fields, extras, exc."""

    def __init__(self, redact: Redactor | None = None):
        super().__init__()
        self.redact = redact or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        entry = {"message": record.getMessage(), **context()}
        entry.update({key: value for key, value in vars(record).items()
                      if key not in _STANDARD and not key.startswith("_")})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps({"ts": _timestamp(record.created), "level": record.levelname, "logger": record.name,
                           **{key: self._clean(value) for key, value in entry.items()}}, ensure_ascii=False)

    def _clean(self, value):
        if value is None or isinstance(value, (bool, int, float)):
            return value
        return self.redact(value if isinstance(value, str) else str(value))


class TextFormatter(logging.Formatter):
    def __init__(self, redact: Redactor | None = None):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redact = redact or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if fields := context():
            head, newline, rest = line.partition("\n")  # after the message, before any traceback
            line = head + " [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]" + newline + rest
        return self.redact(line)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (click's test runner and pytest swap it)."""

    vigil = True

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def choose_format(requested: str | None) -> str:
    """`json` or `text`; unset: text on a terminal, JSON otherwise (a service manager, a container)."""
    if requested:
        return requested.lower()
    return "text" if sys.stderr.isatty() else "json"


def setup(requested: str | None = None, *, verbose: bool = False, secrets=()) -> str:
    """Install the handler on the root logger (replacing a previous one of ours); returns the format."""
    chosen = choose_format(requested)
    redact = Redactor(secrets)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter(redact) if chosen == "json" else TextFormatter(redact))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "vigil", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    return chosen
