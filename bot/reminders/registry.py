"""The modules whose sweeps the worker runs (each registers itself with `@sweep` on import)."""

from bot.eventlog import witness  # noqa: F401
