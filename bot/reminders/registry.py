"""The modules whose sweeps the worker runs (each registers itself with `@sweep` on import)."""

from vigil_ir.eventlog import witness  # noqa: F401
from vigil_ir.followup import action_reminders as _actions  # noqa: F401
from vigil_ir.reminders import incident_updates, playbooks  # noqa: F401
from vigil_ir.risks import reminders as _risks  # noqa: F401
from vigil_ir.people import sweeps as _people  # noqa: F401
