"""The playbook checklist message: one per attached playbook, updated in place."""

from __future__ import annotations

from datetime import datetime

from vigil_ir import clock
from vigil_ir.playbooks.models import PlaybookDeadline, PlaybookRun, PlaybookStep
from vigil_ir.slack.blocks import slack_date
from vigil_ir.slack import limits
from vigil_ir.slack.escape import esc, mention

STEP_ICON = {"open": ":white_large_square:", "done": ":white_check_mark:", "skipped": ":fast_forward:"}
MAX_BLOCKS = limits.MESSAGE_BLOCKS
# Steps that always fit one message: the header, the context line and the deadlines take three blocks.
STEP_ROOM = MAX_BLOCKS - 3


def remaining(due: datetime, now: datetime) -> str:
    seconds = int((clock.to_utc(due) - now).total_seconds())
    late, seconds = seconds < 0, abs(seconds)
    days, rest = divmod(seconds, 86400)
    text = f"{days}d {rest // 3600}h" if days else f"{rest // 3600}h {rest % 3600 // 60}m"
    return f"{text} overdue" if late else f"{text} left"


def deadline_line(deadline: PlaybookDeadline, now: datetime) -> str:
    label = f"*{esc(deadline.label)}*"
    if deadline.status == "met":
        return f":white_check_mark: {label} — met {slack_date(deadline.resolved_at)}"
    if deadline.status == "decided":
        return f":heavy_minus_sign: {label} — {esc(deadline.decision)}: {esc(deadline.decision_reason)}"
    if deadline.status == "missed":
        return f":x: {label} — missed (was due {slack_date(deadline.due_at)})"
    if deadline.due_at is None:
        step = deadline.starts_from.removeprefix("step:")
        return f":hourglass: {label} — {deadline.duration}, starts when step `{esc(step)}` is done"
    settles = f"; met by step `{esc(deadline.met_by.removeprefix('step:'))}`" if deadline.met_by else ""
    return f":alarm_clock: {label} — due {slack_date(deadline.due_at)} ({remaining(deadline.due_at, now)}){settles}"


def step_text(step: PlaybookStep, now: datetime) -> str:
    overdue = step.status == "open" and step.due_at and clock.to_utc(step.due_at) < now
    title = f"~{esc(step.title)}~" if step.status == "skipped" else esc(step.title)
    lines = [f"{STEP_ICON[step.status]} *{title}*" + ("" if step.required else " _(optional)_")]
    meta = []
    if step.status == "open":
        if step.due_at:
            meta.append((":warning: overdue, was due " if overdue else "due ") + slack_date(step.due_at))
        if step.assignee:
            meta.append(f"assigned to {mention(step.assignee)}")
        elif step.role:
            meta.append(f"for the {esc(step.role)}")
        if step.evidence != "none":
            meta.append(f"needs a {step.evidence}")
    elif step.status == "done":
        meta.append(f"done by {mention(step.completed_by)} {slack_date(step.completed_at)}")
        if step.evidence_text:
            meta.append(esc(step.evidence_text[:200]))
    else:
        meta.append(f"skipped by {mention(step.completed_by)} {slack_date(step.completed_at)}: "
                    f"{esc((step.skip_reason or '')[:200])}")
    if meta:
        lines.append(" · ".join(meta))
    return "\n".join(lines)


def _option(text: str, value: str) -> dict:
    return limits.option(text, value)


def step_menu(step: PlaybookStep) -> dict:
    if step.status == "open":
        options = [_option("Done", f"done:{step.id}"), _option("Skip…", f"skip:{step.id}"),
                   _option("Assign…", f"assign:{step.id}")]
    else:
        options = [_option("Undo", f"undo:{step.id}")]
    options.append(_option("Instructions", f"info:{step.id}"))
    return {"type": "overflow", "action_id": "playbook_step", "options": options}


def checklist_blocks(run: PlaybookRun, steps: list[PlaybookStep], deadlines: list[PlaybookDeadline],
                     now: datetime | None = None) -> list[dict]:
    now = now or clock.now()
    done = sum(step.status != "open" for step in steps)
    blocks = [
        limits.header(f"Playbook: {run.title}"),
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            f"`{esc(run.playbook_id)}` v{esc(run.version)} · sha256 `{run.sha256[:12]}` · attached by "
            f"{mention(run.attached_by)} {slack_date(run.attached_at)} · {done}/{len(steps)} steps handled"}]},
    ]
    if deadlines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text":
                       "\n".join(deadline_line(d, now) for d in deadlines)}})
    steps_blocks, phase = [], None
    for step in steps:
        if step.phase_id != phase:
            phase = step.phase_id
            steps_blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*{esc(step.phase_title)}*"}})
        steps_blocks.append({"type": "section", "block_id": f"step:{step.id}", "text": {
            "type": "mrkdwn", "text": step_text(step, now)}, "accessory": step_menu(step)})
    if len(blocks) + len(steps_blocks) > MAX_BLOCKS:
        # Too long for one message: drop the phase headings (the steps keep their order).
        steps_blocks = [b for b in steps_blocks if "accessory" in b]
    if len(blocks) + len(steps_blocks) > MAX_BLOCKS:
        # Still too long: say which steps Slack cannot show here, rather than dropping them silently.
        room = MAX_BLOCKS - len(blocks) - 1
        hidden = len(steps_blocks) - room
        steps_blocks = steps_blocks[:room] + [limits.context(
            f":warning: Steps {room + 1}–{len(steps)} ({hidden}) are not shown: a Slack message holds at most "
            f"{MAX_BLOCKS} blocks. They are on the timeline and in the dashboard.")]
    return blocks + steps_blocks


def checklist_text(run: PlaybookRun, steps: list[PlaybookStep]) -> str:
    done = sum(step.status != "open" for step in steps)
    return f"Playbook {run.title}: {done}/{len(steps)} steps handled"
