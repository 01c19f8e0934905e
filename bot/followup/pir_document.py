"""The post-incident review document: the review, the metrics and the full timeline, in Markdown."""

from __future__ import annotations

from sqlmodel import Session, select

from bot.exports.describe import when
from bot.exports.render import render
from bot.exports.timeline import load_timeline
from bot.followup import pir
from bot.followup.models import ActionItem
from bot.incidents.models import Incident


def render_pir(session: Session, incident: Incident) -> str:
    timeline = load_timeline(session, incident)
    context = timeline.report_context()
    review = pir.for_incident(session, incident)
    actions = list(session.exec(select(ActionItem).where(ActionItem.incident_id == incident.id)
                                .order_by(ActionItem.number)))
    return render("md", "pir.md.j2", **context, review=review, actions=actions)


def document_name(incident: Incident) -> str:
    return f"{incident.key}-post-incident-review.md"


__all__ = ["render_pir", "document_name", "when"]
