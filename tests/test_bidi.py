"""Bidirectional control characters (U+202A–U+202E, U+2066–U+2069) are stored as typed but shown as
visible markers in every rendering: Slack (every call), HTML, Markdown and CSV."""

from __future__ import annotations

import json

from vigil_ir.bidi import CONTROLS, neutralise, neutralise_all
from vigil_ir.exports.timeline import load_timeline
from vigil_ir.incidents import queries

RLO, PDI = "\u202e", "\u2069"
TITLE = f"Invoice {RLO}fdp.exe{PDI} leaked"


def raw_controls(text: str) -> list[str]:
    return [f"U+{ord(c):04X}" for c in text if ord(c) in CONTROLS]


def test_neutralise_shows_each_control_and_nothing_else():
    assert neutralise(TITLE) == "Invoice [U+202E]fdp.exe[U+2069] leaked"
    assert neutralise("plain ünïcode ‏") == "plain ünïcode ‏"  # marks (U+200F) are not overrides
    assert neutralise_all({"a": [TITLE, ("x", 1)], "b": json.dumps(TITLE)}) == {
        "a": ["Invoice [U+202E]fdp.exe[U+2069] leaked", ("x", 1)],
        "b": json.dumps("Invoice [U+202E]fdp.exe[U+2069] leaked")}


def test_slack_sees_markers_while_the_record_keeps_the_text(vigil, fake_slack):
    incident = vigil.declare(TITLE)
    vigil.command(f"note {RLO}gnp.exe", channel=incident.channel_id)
    vigil.deliver()
    assert incident.title == TITLE  # stored exactly as typed
    for call in fake_slack.calls:
        sent = json.dumps(call.params, ensure_ascii=False)
        assert not raw_controls(sent) and "\\u202e" not in sent.lower(), (call.method, sent[:300])
    assert any("[U+202E]" in json.dumps(call.params, ensure_ascii=False) for call in fake_slack.calls_to("chat.postMessage"))


def test_html_markdown_and_csv_show_markers_json_keeps_the_data(vigil):
    incident = vigil.declare(TITLE, deliver=False)
    with vigil.db.session() as session:
        timeline = load_timeline(session, queries.by_key(session, incident.key))
        rendered = {fmt: timeline.render(fmt) for fmt in ("html", "md", "csv", "json")}
    for fmt in ("html", "md", "csv"):
        assert not raw_controls(rendered[fmt]) and "U+202E" in rendered[fmt], fmt  # md escapes the brackets
    assert TITLE in json.loads(rendered["json"])["incident"]["title"]
