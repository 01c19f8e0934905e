"""Durable outbox: Slack side effects written with the change, delivered later, each once."""
