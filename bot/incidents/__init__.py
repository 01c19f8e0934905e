"""Incidents: records, lifecycle commands and derived milestones."""
