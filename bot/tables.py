"""Imports every table module so `SQLModel.metadata` is complete (migrations, tests)."""

from sqlmodel import SQLModel

from bot.auth import models as _auth  # noqa: F401
from bot.eventlog import models as _eventlog  # noqa: F401
from bot.followup import models as _followup  # noqa: F401
from bot.idempotency import ProcessedKey  # noqa: F401
from bot.incidents import models as _incidents  # noqa: F401
from bot.keys import KeyCounter  # noqa: F401
from bot.outbox import models as _outbox  # noqa: F401
from bot.playbooks import models as _playbooks  # noqa: F401
from bot.risks import models as _risks  # noqa: F401

metadata = SQLModel.metadata
