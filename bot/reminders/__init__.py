"""Due-item sweeps: find what is due (overdue steps, reviews, updates) and queue reminders once."""
