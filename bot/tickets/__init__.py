"""Two-way sync of follow-up actions with ticket trackers (Jira Cloud, GitHub Issues, Linear)."""
