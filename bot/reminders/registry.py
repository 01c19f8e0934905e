"""The modules whose sweeps the worker runs (each registers itself with `@sweep` on import)."""

# The policy in force is recorded before the heads are published, so a day's digest includes it.
from vigil_ir.permissions import evidence as _permissions  # noqa: F401
from vigil_ir.reminders import witnesses as _witnesses  # noqa: F401
from vigil_ir.followup import action_reminders as _actions  # noqa: F401
from vigil_ir.reminders import incident_updates, playbooks  # noqa: F401
from vigil_ir.risks import reminders as _risks  # noqa: F401
from vigil_ir.people import sweeps as _people  # noqa: F401
from vigil_ir.paging import sweeps as _pages  # noqa: F401
from vigil_ir.tickets import sweeps as _tickets  # noqa: F401
