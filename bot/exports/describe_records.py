"""Readable sentences for the risk, action, person and audit events (the incident and playbook
kinds are in vigil_ir.exports.describe, which merges these in). Derived from the event data only;
user ids are named by the caller (Directory.name_ids), so they stay ids here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vigil_ir.eventlog import Event

# Bookkeeping fields that change with every change: left out of "what changed".
_QUIET = {"version", "updated_at", "last_reviewed_at", "last_reviewed_by", "next_review_due"}


def _q(text: Any) -> str:
    return f'"{text}"' if text not in (None, "") else "(empty)"


def _value(value: Any) -> str:
    if value in (None, "", [], {}):
        return "(none)"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def changes_text(d: dict) -> str:
    changes = d.get("changes") if isinstance(d.get("changes"), dict) else {}
    parts = [f"{name.replace('_', ' ')} {_value(c.get('from'))} → {_value(c.get('to'))}"
             for name, c in changes.items() if name not in _QUIET and isinstance(c, dict)]
    return "; ".join(parts)


def _with_changes(text: str, d: dict) -> str:
    changed = changes_text(d)
    return f"{text} ({changed})" if changed else text


def _risk_created(e: Event, d: dict) -> str:
    s = d.get("state") or {}
    return (f"created {d.get('key')} {_q(s.get('title'))}: owner {s.get('owner')}, inherent "
            f"{s.get('inherent_likelihood')}×{s.get('inherent_impact')}, residual {s.get('residual_likelihood')}×"
            f"{s.get('residual_impact')}, treatment {s.get('treatment')}, first review due {s.get('next_review_due')}")


def _reviewed(e: Event, d: dict) -> str:
    timing = "on time" if d.get("on_time") else f"{d.get('days_late')} days late" if d.get("days_late") else "late"
    approval = f"; needs approval ({', '.join(d['approval_reasons'])})" if d.get("approval_reasons") else ""
    return _with_changes(f"reviewed it ({d.get('review')}, {d.get('trigger')}, {timing}): outcome "
                         f"{d.get('outcome')}, rationale {_q(d.get('rationale'))}{approval}", d)


def _action_created(e: Event, d: dict) -> str:
    s = d.get("state") or {}
    parent = f" for {d['incident']}" if d.get("incident") else ""
    return (f"created action {d.get('key')}{parent}: {_q(s.get('description'))}, owner {s.get('owner')}, due "
            f"{s.get('due_on') or 'not set'}")


def _action(verb: str) -> Callable[[Event, dict], str]:
    return lambda e, d: _with_changes(f"{verb} action {d.get('key')}", d)


def _person_first_seen(e: Event, d: dict) -> str:
    state = "deactivated" if d.get("deactivated") else "active"
    return (f"first looked up {d.get('user_id')} in Slack: {_q(d.get('real_name') or d.get('display_name') or d.get('name'))}"
            f", e-mail {d.get('email') or 'not shared'}, title {_q(d.get('title'))}, {state}")


def _signed_off(e: Event, d: dict) -> str:
    role = f" as {_q(d.get('role'))}" if d.get("role") else ""
    report = (f"; report {d.get('report_file') or 'file not kept'} sha256 {d.get('report_sha256')}"
              if d.get("report_sha256") else "; no report file")
    comment = f"; comment {_q(d.get('comment'))}" if d.get("comment") else ""
    what = "incident-response program review" if e.kind == "incidents.review_signed_off" else "risk assessment"
    return (f"{d.get('by')} signed off the {what} for {d.get('period_start')} to {d.get('period_end')} "
            f"(end exclusive){role}{report}{comment}")


DESCRIBERS: dict[str, Callable[[Event, dict], str]] = {
    "risk.created": _risk_created,
    "risk.review_opened": lambda e, d: (f"opened review {d.get('review')} ({d.get('trigger')} {d.get('trigger_ref')}), "
                                        f"due {d.get('due_on')}, reviewer {d.get('reviewer')}"),
    "risk.reviewed": _reviewed,
    "risk.review_rescheduled": lambda e, d: _with_changes(f"rescheduled the next review ({d.get('reason')})", d),
    "risk.approval_requested": lambda e, d: (f"asked for approval of review {d.get('review')} "
                                             f"({', '.join(d.get('reasons') or [])}) from "
                                             f"{', '.join(d.get('approvers') or []) or 'the approvers'}"),
    "risk.approval_granted": lambda e, d: _with_changes(
        f"approved review {d.get('review')}" + (f", creating acceptance {d['acceptance']}" if d.get("acceptance") else "")
        + (f"; comment {_q(d.get('comment'))}" if d.get("comment") else ""), d),
    "risk.approval_rejected": lambda e, d: f"rejected review {d.get('review')}: {_q(d.get('comment'))}",
    "risk.acceptance_expired": lambda e, d: _with_changes("let the risk acceptance expire", d),
    "risk.incident_linked": lambda e, d: _with_changes(f"linked incident {d.get('incident')}", d),
    "risk.reminder_sent": lambda e, d: (f"sent the {d.get('kind')} reminder for review {d.get('review')} (due "
                                        f"{d.get('due_on')}) to {d.get('recipient')}"),
    "risk.digest_sent": lambda e, d: "sent the weekly risk digest",
    "risk.treatment_action_added": lambda e, d: (f"added treatment action {d.get('action')}: "
                                                 f"{_q(d.get('description'))}, owner {d.get('owner')}, due {d.get('due_on')}"),
    "risk.assessment_signed_off": _signed_off,
    "incidents.review_signed_off": _signed_off,
    "risk.signed_report_posted": lambda e, d: (f"sent the signed report (sha256 {d.get('sha256')}) to the signer "
                                               f"as Slack file {d.get('file_id')}"),
    "action.created": _action_created,
    "action.completed": _action("completed"),
    "action.cancelled": _action("cancelled"),
    "action.reopened": _action("reopened"),
    "action.status_changed": _action("changed the status of"),
    "action.reassigned": _action("reassigned"),
    "action.due_changed": _action("changed the due date of"),
    "action.ticket_set": _action("linked a ticket to"),
    "action.evidence_added": _action("added evidence to"),
    "action.updated": _action("updated"),
    "action.reminded": lambda e, d: (f"reminded {d.get('recipient')} of action {d.get('key')} ({d.get('label')}, due "
                                     f"{d.get('due_on')})"),
    "person.first_seen": _person_first_seen,
    "person.changed": lambda e, d: _with_changes(f"recorded a change to {d.get('user_id')} from Slack", d),
    "config.recorded": lambda e, d: (f"recorded the configuration in force (sha256 {d.get('sha256')}; changed: "
                                     f"{', '.join(d.get('changed') or []) or 'first record'})"),
    "audit.bundle_exported": lambda e, d: (f"exported the evidence bundle {d.get('file')} for {d.get('period_start')} "
                                           f"to {d.get('period_end')} ({d.get('files')} files, manifest sha256 "
                                           f"{d.get('manifest_sha256')})"),
    "audit.sample_drawn": lambda e, d: (f"drew a sample of {d.get('n')} {d.get('population')} from "
                                        f"{d.get('population_size')} for {d.get('period_start')} to {d.get('period_end')} "
                                        f"(seed {d.get('seed')}; population sha256 {d.get('population_digest')})"),
    "audit.token_created": lambda e, d: f"created auditor token {_q(d.get('name'))}, expires {d.get('expires_at')}",
    "audit.token_revoked": lambda e, d: f"revoked auditor token {_q(d.get('name'))}",
    "audit.dashboard_signed_in": lambda e, d: (f"signed in to the dashboard ({d.get('method')}"
                                               + (f", as {d['role']}" if d.get("role") else "") + ")"),
    "audit.dashboard_access": lambda e, d: (f"read {d.get('path')}" + (f"?{d['query']}" if d.get("query") else "")
                                            + (f" ({', '.join(f'{k}={v}' for k, v in d['params'].items())})"
                                               if d.get("params") else "")),
    "audit.dashboard_access_summarised": lambda e, d: (f"read {d.get('further_views')} further dashboard pages from "
                                                       f"{d.get('window_start')} to {d.get('window_end')} (above the "
                                                       f"{d.get('limit')} recorded one by one)"),
    "audit.dashboard_signed_out": lambda e, d: f"signed out of the dashboard (session {d.get('session_id')})",
    "audit.dashboard_session_revoked": lambda e, d: (f"ended dashboard session {d.get('session_id')} of "
                                                     f"{d.get('user') or 'auditor token ' + str(d.get('token_id'))}"),
    "audit.dashboard_sign_in_failed": lambda e, d: (f"recorded a failed dashboard sign-in from {d.get('address')} "
                                                    f"(token {d.get('token_prefix')}…, {d.get('reason')}); further "
                                                    f"failures until {d.get('window_end')} are counted, not listed"),
}
