"""The person table: the directory's current view of each Slack user Vigil has seen.

The row is a cache of the latest `users.info` answer; its history is the `person:<id>` stream.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

# The fields whose every change is recorded as an event (tz and bot-ness are kept, not evidenced).
TRACKED = ("name", "real_name", "display_name", "email", "title", "deactivated")


class Person(SQLModel, table=True):
    __tablename__ = "person"

    user_id: str = Field(primary_key=True, max_length=32)
    name: str | None = Field(default=None, max_length=255)          # Slack handle (`name`)
    real_name: str | None = Field(default=None, max_length=255)
    display_name: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, max_length=320, index=True)
    title: str | None = Field(default=None, max_length=255)
    deactivated: bool = False
    is_bot: bool = False
    tz: str | None = Field(default=None, max_length=64)
    first_seen: datetime                                              # first sighting in a record
    refreshed_at: datetime | None = Field(default=None, index=True)   # last answer from Slack
    updated_at: datetime | None = None                                # last recorded change
    lookup_error: str | None = Field(default=None, max_length=255)   # e.g. user_not_found

    @property
    def known(self) -> bool:
        return bool(self.real_name or self.display_name or self.name)

    @property
    def display(self) -> str | None:
        """The name people know them by: real name, else display name, else handle."""
        return self.real_name or self.display_name or self.name or None
