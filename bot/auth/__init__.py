"""Who may read the dashboard: auditor tokens (stored as SHA-256 only) and the viewer policy."""
