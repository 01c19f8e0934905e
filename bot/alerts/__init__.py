"""Alerts in: webhooks from monitoring and on-call tools, recorded, deduplicated and triaged."""
