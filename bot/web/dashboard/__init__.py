"""The read-only auditor dashboard: server-rendered pages behind sign-in (docs/dashboard.md)."""
