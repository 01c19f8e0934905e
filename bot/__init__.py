"""Vigil: Slack-native incident response and risk register with audit-grade records."""

__version__ = "0.1.0"
