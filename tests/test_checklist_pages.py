"""A playbook too long for one Slack message: its checklist is paged, and every step on every page can
be reached and completed through signed requests, with the page buttons working throughout."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from tests.conftest import VigilHarness
from tests.slack_requests import TEAM, block_action, input_value, interactive
from vigil_ir.playbooks.models import PlaybookRun, PlaybookStep
from vigil_ir.slack import limits

STEPS, PHASES = 120, 3
NOTE_STEP = "s100"  # asks for a note: completed through the Done modal


def big_playbook() -> str:
    lines = ["id: big", "title: Very long runbook", 'version: "1.0"', "description: every step of a long drill",
             "phases:"]
    per_phase = STEPS // PHASES
    for phase in range(PHASES):
        lines += [f"  - id: phase-{phase}", f"    title: Phase {phase} & friends", "    steps:"]
        for n in range(phase * per_phase + 1, (phase + 1) * per_phase + 1):
            lines += [f"      - id: s{n}", f"        title: Step {n} <check> & confirm"]
            if f"s{n}" == NOTE_STEP:
                lines += ["        evidence: note"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def big(db, fake_slack, settings_for, tmp_path):
    from vigil_ir.runtime import build_runtime

    (tmp_path / "big.yaml").write_text(big_playbook(), encoding="utf-8")
    runtime = build_runtime(settings_for(DATABASE_URL=db.url, VIGIL_PLAYBOOKS_DIR=str(tmp_path)), db)
    harness = VigilHarness(runtime, fake_slack)
    incident = harness.declare("Drill with a long runbook")
    assert harness.command("playbook big", channel=incident.channel_id, user="U0LEAD").status_code == 200
    harness.deliver()
    yield harness, incident
    harness.client.close()


def run_of(vigil) -> PlaybookRun:
    with vigil.db.session() as s:
        return s.exec(select(PlaybookRun)).one()


def step_rows(vigil) -> list[PlaybookStep]:
    with vigil.db.session() as s:
        return list(s.exec(select(PlaybookStep).order_by(PlaybookStep.position)))


def shown(vigil, incident) -> list[dict]:
    """The checklist message's blocks as Slack shows them now."""
    return vigil.fake.messages[incident.channel_id][run_of(vigil).checklist_ts]["blocks"]


def page_label(blocks: list[dict]) -> str:
    return re.search(r"page \d+ of \d+ \(steps \d+–\d+\)", blocks[1]["elements"][0]["text"]).group(0)


def step_menus(blocks: list[dict]) -> list[dict]:
    return [b for b in blocks if b.get("block_id", "").startswith("step:")]


def page_button(blocks: list[dict], arrow: str) -> dict | None:
    nav = [b for b in blocks if b["type"] == "actions"]
    return next((e for e in nav[0]["elements"] if arrow in e["text"]["text"]), None) if nav else None


def press(vigil, incident, button: dict):
    body = block_action(button["action_id"], button["value"], channel=incident.channel_id,
                        message_ts=run_of(vigil).checklist_ts)
    assert vigil.post(body).status_code == 200
    vigil.deliver()


def choose(vigil, incident, block: dict, verb: str):
    """Pick `verb` in a step's overflow menu, with the option value the rendered menu carries."""
    option = next(o for o in block["accessory"]["options"] if o["value"].startswith(f"{verb}:"))
    ts = run_of(vigil).checklist_ts
    payload = {"type": "block_actions", "team": TEAM, "api_app_id": "A0VIGIL", "token": "legacy",
               "trigger_id": f"trigger.{option['value']}", "response_url": vigil.fake.response_url("step"),
               "user": {"id": "U0RESP", "username": "u0resp", "name": "u0resp", "team_id": TEAM["id"]},
               "container": {"type": "message", "message_ts": ts, "channel_id": incident.channel_id},
               "channel": {"id": incident.channel_id, "name": "inc"}, "message": {"type": "message", "ts": ts},
               "actions": [{"action_id": block["accessory"]["action_id"], "block_id": block["block_id"],
                            "type": "overflow", "selected_option": option, "action_ts": "1.1"}]}
    assert vigil.post(interactive(payload)).status_code == 200


def within_limits(blocks: list[dict]) -> None:
    assert len(blocks) <= limits.MESSAGE_BLOCKS
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= limits.SECTION_TEXT
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert len(element["text"]["text"]) <= limits.BUTTON_TEXT


@pytest.mark.slow
def test_every_step_of_a_120_step_checklist_is_reachable_and_completable(big):
    vigil, incident = big
    first = shown(vigil, incident)
    assert page_label(first) == "page 1 of 3 (steps 1–44)"
    assert page_button(first, "←") is None and page_button(first, "→")["text"]["text"] == "Steps 45–88 →"
    seen, page = [], 1
    while True:
        blocks = shown(vigil, incident)
        within_limits(blocks)
        menus = step_menus(blocks)
        assert all("Done" in str(b["accessory"]["options"]) for b in menus), "every open step offers Done"
        for block in menus:
            seen.append(block["block_id"])
            choose(vigil, incident, block, "done")
        note = [b for b in menus if f"Step {NOTE_STEP[1:]} " in b["text"]["text"]]
        if note:
            view = vigil.last_view("playbook_done")
            vigil.submit(view, {"value": input_value("plain_text_input", "Drill note: R&D checked")}, user="U0RESP")
        vigil.deliver()
        after = shown(vigil, incident)
        assert page_label(after) == page_label(blocks), "completing steps keeps the page they are on"
        assert all(":white_check_mark:" in b["text"]["text"] for b in step_menus(after))
        following = page_button(after, "→")
        if following is None:
            break
        press(vigil, incident, following)
        page += 1
    assert page == 3
    rows = step_rows(vigil)
    assert len(seen) == len(set(seen)) == STEPS == len(rows)
    assert {f"step:{row.id}" for row in rows} == set(seen)
    assert all(row.status == "done" for row in rows)
    assert next(r for r in rows if r.step_id == NOTE_STEP).evidence_text == "Drill note: R&D checked"
    assert f"{STEPS}/{STEPS} steps handled" in shown(vigil, incident)[1]["elements"][0]["text"]


def test_page_buttons_still_work_after_a_step_is_done_on_page_two(big):
    vigil, incident = big
    press(vigil, incident, page_button(shown(vigil, incident), "→"))
    second = shown(vigil, incident)
    assert page_label(second) == "page 2 of 3 (steps 45–88)"
    target = step_menus(second)[3]
    choose(vigil, incident, target, "done")
    # A refresh from elsewhere (a reminder, the close check) keeps showing the page people are on.
    vigil.deliver()
    after = shown(vigil, incident)
    assert page_label(after) == "page 2 of 3 (steps 45–88)"
    done = next(b for b in after if b.get("block_id") == target["block_id"])
    assert ":white_check_mark:" in done["text"]["text"] and "Undo" in str(done["accessory"])
    press(vigil, incident, page_button(after, "←"))
    assert page_label(shown(vigil, incident)) == "page 1 of 3 (steps 1–44)"
    press(vigil, incident, page_button(shown(vigil, incident), "→"))
    press(vigil, incident, page_button(shown(vigil, incident), "→"))
    third = shown(vigil, incident)
    assert page_label(third) == "page 3 of 3 (steps 89–120)" and page_button(third, "→") is None
    # Undo the page-2 step from a stale page-2 menu while page 3 is shown: the message follows the step.
    choose(vigil, incident, done, "undo")
    vigil.deliver()
    back = shown(vigil, incident)
    assert page_label(back) == "page 2 of 3 (steps 45–88)"
    assert ":white_large_square:" in next(b for b in back if b.get("block_id") == target["block_id"])["text"]["text"]


def test_a_forged_page_button_changes_nothing_and_says_so(big):
    vigil, incident = big
    before = shown(vigil, incident)
    run = run_of(vigil).id
    for value in ("999999:1", "x:y", "", f"{run}:99999999999999999999999", f"{run}:-1", f"{run}:50"):
        body = block_action("playbook_page_next", value, channel=incident.channel_id,
                            message_ts=run_of(vigil).checklist_ts, response_url=vigil.fake.response_url("forged"))
        assert vigil.post(body).status_code == 200
        vigil.deliver()
    assert len(vigil.fake.responses("forged")) == 5
    assert all("no longer exists" in r["text"] for r in vigil.fake.responses("forged"))
    # A page past the end shows the last page there is.
    assert page_label(before) == "page 1 of 3 (steps 1–44)"
    assert page_label(shown(vigil, incident)) == "page 3 of 3 (steps 89–120)"
