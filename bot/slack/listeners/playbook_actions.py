"""Playbook buttons and modals: attach, per step Done / Skip / Assign / Undo / Instructions, checklist pages."""

from __future__ import annotations

import re

from vigil_ir.idempotency import first_time
from vigil_ir.incidents import queries
from vigil_ir.incidents.service import IncidentError
from vigil_ir.playbooks import runner
from vigil_ir.playbooks.models import PlaybookRun, PlaybookStep
from vigil_ir.slack import blocks, checklist, notify
from vigil_ir.slack.blocks import slack_date
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.escape import esc, mention
from vigil_ir.slack.listeners.incident_command import open_view
from vigil_ir.slack.listeners.views import errors, ref, typed


def problem_text(problem: IncidentError) -> str:
    """The user-facing text; for a stale click, who handled it and when, in the reader's zone."""
    if isinstance(problem, runner.StepAlreadyHandled) and problem.by:
        return f"{esc(problem.what)} by {mention(problem.by)} {slack_date(problem.at)}."
    return esc(problem)


def attach_playbook(deps: Deps, session, incident, actor: str, playbook_id: str) -> str:
    """Attach and queue the checklist; returns the confirmation. Raises IncidentError."""
    file = deps.library.get(playbook_id)
    if file is None:
        known = ", ".join(sorted(deps.library)) or "none are installed"
        raise IncidentError(f"There is no playbook `{playbook_id}` (available: {known}).")
    run = runner.attach(session, incident=incident, actor=actor, file=file)
    notify.refresh_checklist(session, run)
    notify.post_in_channel(session, incident, f":clipboard: {mention(actor)} attached the playbook "
                           f"*{esc(run.title)}* v{esc(run.version)}.", refresh=False)
    return f"Attached {file.playbook.title} v{file.playbook.version} to {incident.key}."


def _step_context(session, step_pk: int | None):
    step = session.get(PlaybookStep, step_pk) if step_pk is not None else None
    if step is None:
        raise IncidentError("That step no longer exists.")
    run = session.get(PlaybookRun, step.run_id)
    return queries.by_id(session, run.incident_id), run, step


def register(app, deps: Deps) -> None:
    def reply(session, body: dict, text: str) -> None:
        if body.get("response_url"):
            notify.respond_later(session, body["response_url"], text)

    @app.action("playbook_attach")
    def attach_clicked(ack, body, action):
        ack()
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        with deps.database.session() as session:
            incident = queries.by_channel(session, channel)
            try:
                if incident is None:
                    raise IncidentError("Attach playbooks from an incident channel.")
                attach_playbook(deps, session, incident, body["user"]["id"], str(action.get("value")))
            except IncidentError as problem:
                session.rollback()
                reply(session, body, f":warning: {problem_text(problem)}")
        deps.wake_sender()

    @app.action("playbook_step")
    def step_menu(ack, body, action, client):
        ack()
        selected = action.get("selected_option")
        value = selected.get("value") if isinstance(selected, dict) else None
        verb, _, pk = value.partition(":") if isinstance(value, str) else ("", "", "")
        user, view = body["user"]["id"], None
        with deps.database.session() as session:
            try:
                incident, run, step = _step_context(session, ref(pk))
                if verb == "info":
                    reply(session, body, f"*{esc(step.title)}*\n{esc(step.instructions) or '_No instructions._'}")
                elif verb == "undo":
                    runner.reopen_step(session, incident=incident, run=run, step=step, actor=user)
                    notify.refresh_checklist(session, run, show_step=step.id)
                elif verb == "done" and step.evidence == "none":
                    runner.complete_step(session, incident=incident, run=run, step=step, actor=user)
                    notify.refresh_checklist(session, run, show_step=step.id)
                elif verb in ("done", "skip", "assign"):
                    runner.require_open_step(step)
                    view = {"done": blocks.done_modal, "skip": blocks.skip_modal, "assign": blocks.assign_modal}[verb](step)
                else:
                    raise IncidentError("That checklist menu item is not one Vigil offers.")
            except IncidentError as problem:
                session.rollback()
                reply(session, body, f":information_source: {problem_text(problem)}")
        deps.wake_sender()
        if view:
            failure = open_view(client, body["trigger_id"], view)
            if failure:
                with deps.database.session() as session:
                    reply(session, body, failure["text"])
                deps.wake_sender()

    @app.action(re.compile(f"^({checklist.PAGE_BACK}|{checklist.PAGE_NEXT})$"))
    def page_clicked(ack, body, action):
        """Show another page of a long checklist: only the Slack view changes, so nothing is recorded."""
        ack()
        run_pk, _, page = str(action.get("value")).partition(":")
        with deps.database.session() as session:
            run = session.get(PlaybookRun, ref(run_pk)) if ref(run_pk) is not None else None
            if run is None or ref(page) is None:
                reply(session, body, ":information_source: That checklist no longer exists.")
            else:
                notify.refresh_checklist(session, run, page=ref(page))
        deps.wake_sender()

    def step_submission(callback_id: str, act):
        @app.view(callback_id)
        def submitted(ack, body, view):
            user = body["user"]["id"]
            with deps.database.session() as session:
                if not first_time(session, f"view:{view['id']}"):
                    ack()
                    return
                try:
                    incident, run, step = _step_context(session, ref(view.get("private_metadata")))
                    act(session, incident, run, step, user, {key: typed(view, "value", key)
                                                             for key in ("value", "selected_user")})
                except IncidentError as problem:
                    session.rollback()
                    ack(**errors({"value": str(problem)}))
                    return
                notify.refresh_checklist(session, run, show_step=step.id)
            ack()
            deps.wake_sender()

    step_submission("playbook_done", lambda s, i, r, st, u, v: runner.complete_step(
        s, incident=i, run=r, step=st, actor=u, evidence=v.get("value")))
    step_submission("playbook_skip", lambda s, i, r, st, u, v: runner.skip_step(
        s, incident=i, run=r, step=st, actor=u, reason=v.get("value") or ""))
    step_submission("playbook_assign", lambda s, i, r, st, u, v: _assign(s, i, r, st, u, v.get("selected_user")))


def _assign(session, incident, run, step, actor, assignee):
    if not assignee:
        raise IncidentError("Pick someone to assign the step to.")
    event = runner.assign_step(session, incident=incident, run=run, step=step, actor=actor, assignee=assignee)
    notify.post_in_channel(session, incident, f":point_right: {mention(actor)} assigned “{esc(step.title)}” "
                           f"to {mention(assignee)}.", refresh=False)
    return event
