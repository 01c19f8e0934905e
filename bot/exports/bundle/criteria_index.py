"""The bundle's criteria index: start from a criterion, find the files that evidence it.

Two kinds of row, both per (criterion, file):
- `mapping`: the documented table below says what a file is evidence of (the incident population
  for CC7.3/CC7.4, the review log for CC3.2/CC4.1…); `rows` is the file's row count.
- `references`: records in the bundle that name the criterion themselves: risks in the register
  (their criteria field) and playbook steps (`criteria:` in the playbook file); `rows` counts them.
Only criteria with evidence in the bundle are listed; each is in a shipped catalogue
(vigil_ir.criteria), whose name and version the row carries.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from vigil_ir import criteria
from vigil_ir.exports.bundle.context import Context


COLUMNS = ("criterion", "title", "catalogue", "catalogue_version", "file", "rows", "basis", "why")
PACKETS = "incidents/INC-<n>/"

# (file pattern, criteria, why). Patterns match the bundle's paths; a table's CSV and JSON twins are
# one row (the CSV is named). docs/audit-evidence.md prints this table; a test keeps them equal.
MAPPING: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("incidents.csv", ("CC7.3", "CC7.4", "A.5.25", "A.5.26"),
     "every incident of the period, classified (type, severity, security flag) and how it was handled"),
    ("security_incidents.csv", ("CC7.3", "CC7.4", "A.5.24", "A.5.26"),
     "the security incidents, selected by the documented rule in the manifest"),
    ("incidents_carried_over.csv", ("CC7.4", "A.5.26"), "incidents declared earlier and handled in the period"),
    ("incident_events.csv", ("CC7.4", "A.5.28", "A.8.15"), "every recorded action on the period's incidents, by whom and when"),
    ("incidents_carried_over_events.csv", ("CC7.4", "A.5.28", "A.8.15"),
     "every recorded action on the carried-over incidents"),
    (PACKETS, ("CC7.4", "CC7.5", "A.5.26", "A.5.27", "A.5.28"),
     "per incident: roles, checklists followed, decisions and overrides, review, actions, timeline"),
    ("update_cadence.csv", ("CC2.2", "CC2.3", "CC7.4"), "status updates posted on the cadence in force, and reminders"),
    ("notifications.csv", ("CC2.2", "CC2.3"), "every message Vigil sent about incidents and risks, and its delivery"),
    ("pirs.csv", ("CC7.4", "CC7.5", "A.5.27"), "post-incident reviews: required or not, held, on time, who recorded them"),
    ("pirs_carried_over.csv", ("CC7.4", "CC7.5", "A.5.27"), "post-incident reviews of earlier incidents"),
    ("action_items.csv", ("CC4.2", "CC7.5", "A.5.27"), "corrective actions raised to prevent recurrence, and their closure"),
    ("exercises.csv", ("CC7.5", "A.5.24", "A.5.29", "A.5.30"),
     "the response plans tested: each exercise held, its scenario, participants, playbook followed, findings, actions"),
    ("exercise_events.csv", ("CC7.5", "A.8.15"), "every recorded action of each exercise, by whom and when"),
    ("risk_register_*.csv", ("CC3.1", "CC3.2", "CC9.1"), "the risk register at the period end: owners, scores, treatment"),
    ("risk_reviews.csv", ("CC3.2", "CC4.1"), "each risk review due or done in the period, and its timeliness"),
    ("risk_acceptances.csv", ("CC3.2", "CC9.1"), "risks accepted, by whom (never the owner), until when"),
    ("risk_assessment/report.html", ("CC3.1", "CC3.2", "CC3.3", "CC3.4"),
     "the periodic risk assessment: methodology, changes, fraud and vendor risks, above-appetite risks"),
    ("risk_signoffs.csv", ("CC2.2", "CC3.2"), "management's sign-off of the risk assessment, with the report signed"),
    ("incident_review/report.html", ("CC4.1", "CC7.4", "CC7.5", "A.5.27"),
     "the periodic review of the incident-response program: volumes, timings and trend, cadence, reviews, actions"),
    ("incident_review_signoffs.csv", ("CC2.2", "CC7.4"), "management's sign-off of the program review, with the report signed"),
    ("risk_methodology.json", ("CC3.2",), "the scoring method and appetite in force"),
    ("people.csv", ("CC1.3", "CC6.2", "CC6.3", "A.5.2", "A.5.3", "A.5.18"),
     "who acted, and who held which role (admins, commanders, approvers) and when that changed"),
    ("policy/config_versions.json", ("CC1.3", "CC5.3", "A.5.1", "A.5.3", "A.5.37"),
     "the configuration in force: cadences, review due rules, severity definitions, permissions policy"),
    ("policy/playbook_versions.csv", ("CC5.3", "CC7.4", "A.5.24", "A.5.37"),
     "the runbooks followed, each version's full text"),
    ("audit_log.csv", ("CC4.1", "A.8.15"),
     "every event recorded in the period on a stream not given whole in an incident or exercise event log"),
    ("chain_heads.csv", ("A.5.33", "A.8.15"), "the hash-chain heads that make any later change to a record detectable"),
)


def _rows_of(ctx: Context, pattern: str) -> list[tuple[str, int | None]]:
    """(file, rows) for each bundle file matching `pattern` (packets: one entry, counting folders)."""
    if pattern == PACKETS:
        folders = {entry.path.split("/")[1] for entry in ctx.sink.files if entry.path.startswith("incidents/INC-")}
        return [(PACKETS, len(folders))] if folders else []
    return [(entry.path, entry.rows) for entry in ctx.sink.files if fnmatch.fnmatch(entry.path, pattern)]


def write(ctx: Context) -> None:
    """After every evidence file is written (it indexes them), before the README and manifest."""
    found: list[tuple[str, str, int | None, str, str]] = []  # (criterion, file, rows, basis, why)
    for pattern, ids, why in MAPPING:
        for path, rows in _rows_of(ctx, pattern):
            found += [(ident, path, rows, "mapping", why) for ident in ids]
    for path, counts in ctx.criteria_references.items():
        what = "playbook steps" if path.startswith("policy/playbooks/") else "risks"
        found += [(ident, path, count, "references", f"{what} in this file that name the criterion")
                  for ident, count in counts.items()]
    table = ctx.table("criteria_index", COLUMNS, section="criteria",
                      description="Criterion → the files of this bundle that evidence it, with row counts: by the "
                                  "documented mapping, and where records name the criterion themselves",
                      query="the mapping in vigil_ir.exports.bundle.criteria_index (docs/audit-evidence.md) over this "
                            "bundle's files; risks' criteria and playbook steps' criteria")
    order = {c.id: position for position, c in enumerate(c for catalogue in criteria.catalogues()
                                                         for c in catalogue.criteria)}
    for ident, path, rows, basis, why in sorted(found, key=lambda f: (order.get(f[0], len(order)), f[0], f[3], f[1])):
        criterion = criteria.find(ident)
        table.write({"criterion": ident, "title": criterion.title if criterion else None,
                     "catalogue": criterion.catalogue if criterion else "not in the shipped catalogues",
                     "catalogue_version": criterion.version if criterion else None,
                     "file": path, "rows": rows, "basis": basis, "why": why})
    table.finish(ctx.sink)


def note_references(ctx: Context, path: str, refs_per_record) -> None:
    """Count, for the index, the records of `path` naming each criterion (an iterable of id lists)."""
    counts = ctx.criteria_references.setdefault(path, Counter())
    for refs in refs_per_record:
        counts.update({criteria.normalise(ref) for ref in refs if ref})  # a record counts once per criterion
