"""Pages out: paging a service or team from an incident through PagerDuty or Opsgenie, sent once
through the outbox, and what the providers say back (acknowledged, escalated, resolved)."""
