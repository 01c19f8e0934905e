"""The modules whose sweeps the worker runs (each registers itself with `@sweep` on import)."""

from bot.eventlog import witness  # noqa: F401
from bot.followup import action_reminders as _actions  # noqa: F401
from bot.reminders import incident_updates, playbooks  # noqa: F401
from bot.risks import reminders as _risks  # noqa: F401
