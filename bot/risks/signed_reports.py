"""The report files that management signed, kept whole so a recorded SHA-256 can be checked
against a file that is there (the evidence bundle carries each one)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel


class SignedReport(SQLModel, table=True):
    __tablename__ = "signed_report"

    id: int | None = Field(default=None, primary_key=True)
    period_start: datetime = Field(index=True)
    period_end: datetime
    filename: str = Field(max_length=255)
    media_type: str = Field(max_length=100)
    sha256: str = Field(max_length=64, index=True)
    size: int
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    stored_at: datetime
    stored_by: str = Field(max_length=64)
