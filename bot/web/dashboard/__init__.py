"""The read-only auditor dashboard: server-rendered pages behind sign-in (docs/dashboard.md)."""

from bot.web.dashboard.app import create_dashboard

__all__ = ["create_dashboard"]
