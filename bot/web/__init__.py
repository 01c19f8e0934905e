"""HTTP front: Slack endpoint and health check."""
