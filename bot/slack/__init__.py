"""Slack edge: the bolt app, thin listeners, block builders and outbox delivery."""
