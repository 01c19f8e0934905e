"""Playbooks: runbook files, their schema and lint, and running them on an incident."""
