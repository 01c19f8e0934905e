"""Risk register: risks, scoring methodology, review cadence, reviews, approvals, import/export."""
