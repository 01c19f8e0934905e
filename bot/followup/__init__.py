"""After the fire: status-update cadence, post-incident reviews, follow-up actions."""
