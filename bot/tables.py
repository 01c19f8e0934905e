"""Imports every table module so `SQLModel.metadata` is complete (migrations, tests)."""

from sqlmodel import SQLModel

from vigil_ir.auth import models as _auth  # noqa: F401
from vigil_ir.eventlog import models as _eventlog  # noqa: F401
from vigil_ir.followup import models as _followup  # noqa: F401
from vigil_ir.idempotency import ProcessedKey  # noqa: F401
from vigil_ir.incidents import models as _incidents  # noqa: F401
from vigil_ir.keys import KeyCounter  # noqa: F401
from vigil_ir.outbox import models as _outbox  # noqa: F401
from vigil_ir.people import models as _people  # noqa: F401
from vigil_ir.playbooks import models as _playbooks  # noqa: F401
from vigil_ir.risks import models as _risks  # noqa: F401
from vigil_ir.risks import signed_reports as _signed_reports  # noqa: F401
from vigil_ir.alerts import models as _alerts  # noqa: F401
from vigil_ir.paging import models as _paging  # noqa: F401
from vigil_ir.tickets import models as _tickets  # noqa: F401

metadata = SQLModel.metadata
