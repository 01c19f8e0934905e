"""The playbook checklist message: one per attached playbook, updated in place.

A checklist longer than one message (Slack: 50 blocks) is paged: the message shows one page and
"← Steps 1–45" / "Steps 46–90 →" buttons switch it to another, so every step keeps its Done / Skip /
Assign menu. Pages are a function of the steps alone (fixed when the playbook is attached), so a
step's page never moves.
"""

from __future__ import annotations

from datetime import datetime

from vigil_ir import clock
from vigil_ir.playbooks.models import PlaybookDeadline, PlaybookRun, PlaybookStep
from vigil_ir.slack.blocks import slack_date
from vigil_ir.slack import limits
from vigil_ir.slack.escape import esc, mention

STEP_ICON = {"open": ":white_large_square:", "done": ":white_check_mark:", "skipped": ":fast_forward:"}
# Every page has the header, the context line and the deadlines; a checklist of several pages also
# has a row of page buttons. The rest of a message's blocks are phase headings and steps.
SINGLE_PAGE_ROOM = limits.MESSAGE_BLOCKS - 3
PAGE_ROOM = SINGLE_PAGE_ROOM - 1
HEADER = "Playbook: {title}"
EVIDENCE_SHOWN = 300  # characters of a step's evidence or skip reason (all of it on the timeline)
PAGE_BACK, PAGE_NEXT = "playbook_page_back", "playbook_page_next"


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
            meta.append(limits.mrkdwn(step.evidence_text, EVIDENCE_SHOWN))
    else:
        meta.append(f"skipped by {mention(step.completed_by)} {slack_date(step.completed_at)}: "
                    f"{limits.mrkdwn(step.skip_reason or '', EVIDENCE_SHOWN)}")
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


def _cost(steps: list[PlaybookStep]) -> int:
    """Blocks the steps take on one page: one each, plus a heading wherever the phase changes."""
    return len(steps) + sum(1 for n, step in enumerate(steps) if n == 0 or step.phase_id != steps[n - 1].phase_id)


def pages(steps: list[PlaybookStep]) -> list[list[PlaybookStep]]:
    """The checklist's pages, in step order: one page when it fits one message, else pages of at most
    PAGE_ROOM blocks each (a page that starts mid-phase repeats the phase heading)."""
    if _cost(steps) <= SINGLE_PAGE_ROOM:
        return [steps]
    split, page, cost = [], [], 0
    for step in steps:
        extra = 2 if not page or step.phase_id != page[-1].phase_id else 1
        if page and cost + extra > PAGE_ROOM:
            split.append(page)
            page, cost, extra = [], 0, 2
        page.append(step)
        cost += extra
    return split + [page]


def page_holding(steps: list[PlaybookStep], step_pk: int | None) -> int | None:
    """The index of the page that shows the step with primary key `step_pk`, if any."""
    for index, page in enumerate(pages(steps)):
        if any(step.id == step_pk for step in page):
            return index
    return None


def _span(steps: list[PlaybookStep], page: list[PlaybookStep]) -> str:
    first = next(n for n, step in enumerate(steps, 1) if step is page[0])
    return f"Steps {first}–{first + len(page) - 1}"


def _page_buttons(run: PlaybookRun, steps: list[PlaybookStep], split: list[list[PlaybookStep]], index: int) -> dict:
    buttons = []
    if index > 0:
        buttons.append(limits.button(f"← {_span(steps, split[index - 1])}", action_id=PAGE_BACK,
                                     value=f"{run.id}:{index - 1}"))
    if index < len(split) - 1:
        buttons.append(limits.button(f"{_span(steps, split[index + 1])} →", action_id=PAGE_NEXT,
                                     value=f"{run.id}:{index + 1}"))
    return {"type": "actions", "block_id": f"checklist_pages:{index}", "elements": buttons}


def checklist_blocks(run: PlaybookRun, steps: list[PlaybookStep], deadlines: list[PlaybookDeadline],
                     now: datetime | None = None, page: int = 0) -> list[dict]:
    """One page of the checklist (`page` counts from 0 and is clamped to the pages there are)."""
    now = now or clock.now()
    done = sum(step.status != "open" for step in steps)
    split = pages(steps)
    index = min(max(page, 0), len(split) - 1)
    where = f" · page {index + 1} of {len(split)} ({_span(steps, split[index]).lower()})" if len(split) > 1 else ""
    blocks = [
        limits.header(HEADER.format(title=run.title)),
        limits.context(f"`{esc(run.playbook_id)}` v{esc(run.version)} · sha256 `{run.sha256[:12]}` · attached by "
                       f"{mention(run.attached_by)} {slack_date(run.attached_at)} · {done}/{len(steps)} steps "
                       f"handled{where}"),
    ]
    if deadlines:
        blocks.append(limits.section("\n".join(deadline_line(d, now) for d in deadlines), block_id="deadlines"))
    phase = None
    for step in split[index]:
        if step.phase_id != phase:
            continued = phase is None and index > 0 and _continues(steps, step)
            heading = f"*{esc(step.phase_title)}*" + (" _(continued)_" if continued else "")
            blocks.append(limits.section(heading))
            phase = step.phase_id
        blocks.append(limits.section(step_text(step, now), block_id=f"step:{step.id}", accessory=step_menu(step)))
    if len(split) > 1:
        blocks.append(_page_buttons(run, steps, split, index))
    return blocks


def _continues(steps: list[PlaybookStep], step: PlaybookStep) -> bool:
    """Whether `step` is not the first of its phase (its page starts mid-phase)."""
    position = next(n for n, candidate in enumerate(steps) if candidate is step)
    return steps[position - 1].phase_id == step.phase_id


def checklist_text(run: PlaybookRun, steps: list[PlaybookStep]) -> str:
    done = sum(step.status != "open" for step in steps)
    return f"Playbook {run.title}: {done}/{len(steps)} steps handled"


def cut_on_slack(playbook, now: datetime | None = None) -> list[str]:
    """What of this playbook the Slack checklist cannot show in full (lint's warnings): every page is
    rendered with every step open and every deadline clock running, and any cut text is named."""
    now = now or clock.now()
    run = PlaybookRun(id=0, incident_id=0, playbook_id=playbook.id, version=playbook.version, title=playbook.title,
                      sha256="0" * 64, content="", attached_by="U00000000", attached_at=now)
    steps = [PlaybookStep(id=n, run_id=0, step_id=step.id, phase_id=phase.id, phase_title=phase.title, position=n,
                          title=step.title, role=step.role, required=step.required, evidence=step.evidence,
                          due_at=now if step.due_after else None)
             for n, (phase, step) in enumerate(playbook.iter_steps(), 1)]
    deadlines = [PlaybookDeadline(run_id=0, deadline_id=d.id, label=d.label, duration=d.duration_text,
                                  business_days=d.business_days, starts_from=d.from_, met_by=d.met_by, due_at=now)
                 for d in playbook.deadlines]
    by_pk = {step.id: step.step_id for step in steps}
    cut = [f"the title is cut to {limits.HEADER_TEXT} characters in the heading"] \
        if len(HEADER.format(title=playbook.title)) > limits.HEADER_TEXT else []
    for page in range(len(pages(steps))):
        for block in checklist_blocks(run, steps, deadlines, now=now, page=page):
            texts = [block.get("text") or {}, *block.get("elements", [])]
            if not any(str(text.get("text", "")).endswith(limits.MORE) for text in texts):
                continue
            block_id = block.get("block_id") or ""
            cut.append("the deadlines are cut (one section holds 3,000 characters)" if block_id == "deadlines"
                       else f"step {by_pk[int(block_id[5:])]} is cut" if block_id.startswith("step:")
                       else f"a {block['type']} on page {page + 1} is cut")
    return list(dict.fromkeys(cut))
