"""The `policy/` part of a bundle: the configuration in force during the period, version by version,
and the full text of every playbook version followed in it.

`policy/config_versions.json` holds each recorded configuration in force at some time in the period
(vigil_ir.config_evidence): from when, until when, what changed, and the whole document (update
cadence, PIR due policy, severity and milestone definitions, the security flag rule, roles,
reminder schedules, risk methodology). `policy/playbooks/` holds each playbook file exactly as
attached (its SHA-256 is in the packets and in `playbook_versions`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.config_evidence import versions_in_force
from vigil_ir.exports.bundle.context import Context
from vigil_ir.exports.bundle.criteria_index import note_references
from vigil_ir.exports.bundle.files import json_line
from vigil_ir.incidents.models import Incident, key_of
from vigil_ir.playbooks.loader import PlaybookError, parse_playbook
from vigil_ir.playbooks.models import PlaybookRun
from vigil_ir.people.roles import role_label


PLAYBOOK_COLUMNS = ("playbook_id", "version", "sha256", "file", "incidents", "first_attached_at")


def write(ctx: Context) -> None:
    versions = versions_in_force(ctx.session, ctx.start, ctx.end)
    ctx.config_versions = versions
    records = [{"in_force_from": clock.iso(v.recorded_at), "in_force_until": clock.iso(v.until),
                "sha256": v.sha256, "changed": v.changed, "event_hash": v.event_hash, "document": v.document}
               for v in versions]
    ctx.sink.add("policy/config_versions.json", "[\n" + ",\n".join(json_line(r) for r in records) + "\n]\n"
                 if records else "[]\n", section="policy",
                 description="Configuration in force during the period, each version with when it was in force: "
                             "update cadence, PIR due policy, severity and milestone definitions, the security flag "
                             "rule, roles, reminder schedules, risk methodology",
                 query=f"config.recorded events (stream config) recorded before {ctx.iso_end} and not replaced "
                       f"before {ctx.iso_start}", rows=len(records))
    if not records:
        from vigil_ir.exports.manifest import Note

        ctx.manifest.notes.append(Note("policy", "missing", "No configuration was recorded in force during the "
                                       "period (it is recorded when `vigil serve` or `vigil worker` starts)."))
    _playbooks(ctx)


def _step_criteria(content: str) -> list[list[str]]:
    """The criteria each step of a stored playbook names (none for a text today's schema refuses)."""
    try:
        playbook = parse_playbook(content)
    except PlaybookError:
        return []
    return [step.criteria for _, step in playbook.iter_steps()]


def _playbooks(ctx: Context) -> None:
    # The population's runs, and every run attached in the period (an exercise's too: the version it tested).
    population = select(Incident.id).where(Incident.declared_at >= ctx.start, Incident.declared_at < ctx.end,
                                           Incident.exercise.is_(False))
    runs = ctx.session.exec(select(PlaybookRun, Incident.number, Incident.exercise).join(Incident, Incident.id == PlaybookRun.incident_id)
                            .where(or_(PlaybookRun.incident_id.in_(population),
                                       (PlaybookRun.attached_at >= ctx.start) & (PlaybookRun.attached_at < ctx.end)))
                            .order_by(PlaybookRun.attached_at, PlaybookRun.id))
    seen: dict[str, dict[str, Any]] = {}
    for run, number, exercise in runs:
        entry = seen.get(run.sha256)
        if entry is None:
            path = f"policy/playbooks/{run.playbook_id}-v{run.version}-{run.sha256[:12]}.yaml"
            ctx.sink.add(path, run.content, section="policy",
                         description=f"Playbook {run.playbook_id} version {run.version}, the exact text followed "
                                     f"(sha256 {run.sha256})", query=f"playbook_run content with sha256 {run.sha256}")
            note_references(ctx, path, _step_criteria(run.content))
            entry = seen[run.sha256] = {"playbook_id": run.playbook_id, "version": run.version, "sha256": run.sha256,
                                        "file": path, "incidents": [], "first_attached_at": clock.iso(run.attached_at)}
        if key_of(number, exercise) not in entry["incidents"]:
            entry["incidents"].append(key_of(number, exercise))
    table = ctx.table("policy/playbook_versions", PLAYBOOK_COLUMNS, section="policy",
                      description="Every playbook version followed in the period, with the incidents it was attached to "
                                  "and the file holding its full text",
                      query=f"playbook_run rows of incidents with {ctx.period_text('declared_at')} or with "
                            f"{ctx.period_text('attached_at')}; one row per distinct sha256")
    for entry in seen.values():
        table.write({**entry, "incidents": ";".join(entry["incidents"])})
    table.finish(ctx.sink)


def role_changes(versions, user_id: str, start, end) -> list[str]:
    """When the person's configured roles changed during [start, end), from the recorded versions."""
    changes = []
    for before, after in zip(versions, versions[1:]):
        if not (clock.to_utc(start) <= after.recorded_at < clock.to_utc(end)):
            continue
        roles_before, roles_after = before.document.get("roles") or {}, after.document.get("roles") or {}
        for key in sorted(set(roles_before) | set(roles_after)):
            role = role_label(key)
            was, now = user_id in (roles_before.get(key) or []), user_id in (roles_after.get(key) or [])
            if was != now:
                changes.append(f"{clock.iso(after.recorded_at)} {'became' if now else 'no longer'} {role}")
    return changes
