"""Slack's Block Kit limits: every builder stays within them, cuts are visible and never split an escape,
and a playbook too long for one message is flagged."""

from __future__ import annotations

import re
import textwrap
from datetime import datetime, timezone

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil_ir.cli import main
from vigil_ir.incidents.models import Incident
from vigil_ir.playbooks.models import PlaybookRun, PlaybookStep
from vigil_ir.slack import blocks, checklist, limits
from vigil_ir.slack.escape import esc

NOW = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
_ENTITY_CUT = re.compile(r"&[a-z]*$")
hostile = st.lists(st.sampled_from(list("&<>*_~`|\n a") + ["\u202e", "\u2066", "é", "👍", "<!channel>", "&amp;"]),
                   max_size=1500).map("".join)


def violations(built: list[dict], max_blocks: int = limits.MESSAGE_BLOCKS) -> list[str]:
    """Every Block Kit limit these builders can reach, checked over a list of blocks."""
    found = [] if len(built) <= max_blocks else [f"{len(built)} blocks"]
    for block in built:
        text = block.get("text") or {}
        if block["type"] == "header" and len(text["text"]) > limits.HEADER_TEXT:
            found.append("header")
        if block["type"] == "section" and text and len(text["text"]) > limits.SECTION_TEXT:
            found.append("section text")
        for field in block.get("fields", []):
            if len(field["text"]) > limits.FIELD_TEXT:
                found.append("field")
        for element in block.get("elements", []):
            if element.get("type") == "mrkdwn" and len(element["text"]) > limits.SECTION_TEXT:
                found.append("context text")
        options = (block.get("accessory") or block.get("element") or {}).get("options", [])
        if len(options) > limits.OPTIONS:
            found.append("options")
        found += ["option text" for o in options if len(o["text"]["text"]) > limits.OPTION_TEXT]
    return found


def incident(title: str, description: str, summary: str) -> Incident:
    return Incident(id=1, number=1, key="INC-1", title=title, description=description, current_summary=summary,
                    severity="sev2", status="investigating", type="technical", security=False,
                    declared_by="U1", declared_at=NOW, detected_at=NOW)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=hostile, description=hostile, summary=hostile)
def test_incident_summary_stays_within_limits(title, description, summary):
    built = blocks.summary_blocks(incident(title, description, summary))
    assert violations(built) == []
    for block in built:
        if block["type"] == "section" and "text" in block:
            assert not _ENTITY_CUT.search(block["text"]["text"].removesuffix(limits.MORE))


@settings(max_examples=60, deadline=None)
@given(text=hostile, limit=st.integers(min_value=2, max_value=3000))
def test_mrkdwn_cuts_before_escaping_on_a_character_boundary(text, limit):
    cut = limits.mrkdwn(text, limit)
    assert len(cut) <= limit
    if cut == esc(text):
        return
    assert cut.endswith(limits.MORE) or cut.endswith("…")
    body = cut.removesuffix(limits.MORE).removesuffix("…")
    assert not _ENTITY_CUT.search(body)
    assert esc(text).startswith(body)


def test_a_note_of_escaped_ampersands_is_cut_whole_with_a_notice():
    note = "R&D " * 1000  # 4,000 characters, 6,000 escaped
    cut = limits.mrkdwn(note, limits.SECTION_TEXT)
    assert len(cut) <= 3000 and cut.endswith("… (full text on the timeline)")
    assert cut.removesuffix(limits.MORE).endswith(("R&amp;D ", "R&amp;D", "R", "&amp;"))
    assert "&am" not in cut.replace("&amp;", "")


def test_fit_never_splits_a_token_or_an_escape():
    built = "x" * 2960 + "<@U123ABC> &amp; " * 10
    cut = limits.fit(built)
    assert len(cut) <= 3000 and cut.endswith(limits.MORE)
    body = cut.removesuffix(limits.MORE)
    assert body.count("<") == body.count(">") and not _ENTITY_CUT.search(body)


def _run_with_steps(count: int) -> tuple[PlaybookRun, list[PlaybookStep]]:
    run = PlaybookRun(id=1, title="Big", playbook_id="big", version="1", sha256="0" * 64, attached_by="U1",
                      attached_at=NOW)
    steps = [PlaybookStep(id=n, phase_id="p", phase_title="Phase", title=f"Step {n}", status="open", required=True,
                          evidence="none") for n in range(1, count + 1)]
    return run, steps


def test_a_checklist_too_long_for_one_message_is_paged_and_every_page_fits():
    run, steps = _run_with_steps(60)
    split = checklist.pages(steps)
    assert [len(page) for page in split] == [45, 15]
    shown = []
    for index in range(len(split)):
        built = checklist.checklist_blocks(run, steps, [], now=NOW, page=index)
        assert violations(built) == []
        shown += [b["block_id"] for b in built if "accessory" in b]
    assert shown == [f"step:{step.id}" for step in steps]
    run, steps = _run_with_steps(checklist.SINGLE_PAGE_ROOM - 1)  # one phase heading + the steps: one page
    built = checklist.checklist_blocks(run, steps, [], now=NOW)
    assert sum("accessory" in b for b in built) == len(steps) and built[-1]["type"] == "section"


def _playbook_file(tmp_path, *, title="Big", steps=60, deadlines=""):
    body = "".join(f"          - id: s{n}\n            title: Step {n}\n" for n in range(steps))
    (tmp_path / "big.yaml").write_text(textwrap.dedent(f"""\
        id: big
        title: {title}
        version: "1.0"
        description: many steps
        """) + deadlines + textwrap.dedent("""\
        phases:
          - id: p
            title: Phase
            steps:
        """) + body, encoding="utf-8")


def test_lint_warns_about_what_the_slack_checklist_cannot_show_in_full(tmp_path):
    _playbook_file(tmp_path, steps=130)
    result = CliRunner().invoke(main, ["playbooks", "lint", str(tmp_path)])
    assert result.exit_code == 0 and result.stderr == "", result.output  # long checklists are paged
    label = "R&D <ops> notice " * 11  # 187 characters, ~250 once escaped
    deadlines = "deadlines:\n" + "".join(f"  - id: d{n}\n    label: '{label}'\n    duration: 4h\n"
                                         f"    from: declared_at\n    met_by: step:s1\n" for n in range(12))
    _playbook_file(tmp_path, title="T" * 150, deadlines=deadlines)
    result = CliRunner().invoke(main, ["playbooks", "lint", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "the title is cut to 150 characters" in result.stderr
    assert "the deadlines are cut" in result.stderr
