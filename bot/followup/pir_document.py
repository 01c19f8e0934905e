"""The post-incident review document: the review, the metrics and the full timeline, in Markdown."""

from __future__ import annotations

from sqlmodel import Session

from vigil_ir.exports.render import render
from vigil_ir.exports.timeline import load_timeline
from vigil_ir.incidents.models import Incident
from vigil_ir.people import Directory


def render_pir(session: Session, incident: Incident, people: Directory | None = None) -> str:
    """The same data as the timeline export (review, actions, milestones, events), as a review document;
    people by name as they were then (`people`: a directory already loaded, e.g. by the bundle)."""
    return render("md", "pir.md.j2", **load_timeline(session, incident, people).report_context())


def document_name(incident: Incident) -> str:
    return f"{incident.key}-post-incident-review.md"
