"""Awkward text through to the database, on SQLite and PostgreSQL alike (few examples: it runs twice).

What only a real database refuses: PostgreSQL's text cannot hold NUL; neither database can encode a
lone surrogate (a JSON escape such as \\ud800 with no pair). Slack text arrives in JSON, so Vigil's
request parser drops NULs and replaces lone surrogates (bot/slack/bolt_patch.py); a CSV import
refuses a NUL naming its row and column. Everything else (control characters, right-to-left
overrides, emoji, Slack syntax) is stored exactly as sent.
"""

from __future__ import annotations

import json
from urllib.parse import unquote

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from vigil_ir.cli import main
from vigil_ir.eventlog import Event
from vigil_ir.incidents.models import Incident
from vigil_ir.risks.models import Risk
from vigil_ir.slack.bolt_patch import storable
from tests import slack_requests as sr
from tests.fuzzing import changed, fuzz, row_counts

AWKWARD = ["nul\x00inside", "lone \ud800 surrogate", "pair \U0001f525 and ZWJ \U0001f469\u200d\U0001f4bb",
           "rtl \u202e override", "bell \x07 esc \x1b[31m", "crlf\r\nline", "<!channel> & <@U0EVIL>", "\x00",
           "tab\tand\x0bvertical", "\ufeffbom", "\U0010ffff last", "ß İ ﬁ"]
awkward = st.one_of(st.sampled_from(AWKWARD), st.text(st.characters(codec="utf-8"), min_size=1, max_size=30),
                    st.lists(st.one_of(st.sampled_from(AWKWARD), st.characters(categories=["Cs"])),
                             min_size=1, max_size=4).map("".join))
_ids = iter(range(10**9))


def submit(vigil, view: dict, values: dict, user: str = "U0DECLARER"):
    body = json.loads(unquote(sr.view_submission(view, {}, user=user, view_id=f"VTEXT{next(_ids)}")
                              .removeprefix("payload=")))
    body["view"]["state"]["values"] = values
    return vigil.post(sr.interactive(body))  # json.dumps escapes lone surrogates as \ud800


@fuzz(12)
@given(text=awkward)
def test_awkward_text_in_a_modal_is_stored_as_sent_less_nul_and_lone_surrogates(vigil, text):
    view = {"id": "V", "callback_id": "incident_declare", "private_metadata": "{}", "type": "modal"}
    title = f"T{next(_ids)} {text}"[:150]
    before = row_counts(vigil.db)
    response = submit(vigil, view, {"title": {"value": {"type": "plain_text_input", "value": title}},
                                    "severity": sr.input_value("static_select", "sev3"),
                                    "type": sr.input_value("static_select", "availability"),
                                    "description": {"value": {"type": "plain_text_input", "value": text}}})
    assert response.status_code == 200, response.text
    if response.content:  # e.g. a title that is only white space once cleaned
        assert response.json()["response_action"] == "errors"
        assert not changed(before, row_counts(vigil.db))
        return
    with vigil.db.session() as s:
        incident = s.exec(select(Incident).order_by(Incident.id.desc())).first()
    assert incident.title == storable(title).strip() and incident.description == storable(text).strip()


@fuzz(12)
@given(text=awkward.filter(lambda t: not any(0xD800 <= ord(c) <= 0xDFFF for c in t)))
def test_awkward_text_in_a_command_is_stored_as_sent_less_nul(vigil, text):
    if not hasattr(vigil, "incident"):
        vigil.incident = vigil.declare("Text target")
    response = vigil.command(f"note {text}", channel=vigil.incident.channel_id)
    assert response.status_code == 200
    if storable(text).strip():
        assert "Noted on the" in response.text, response.text
        with vigil.db.session() as s:
            note = s.exec(select(Event).where(Event.kind == "incident.note_added").order_by(Event.id.desc())).first()
        assert note.data["text"] == storable(text).strip()
    else:
        assert response.text.startswith("Usage")


@fuzz(10)
@given(text=awkward.filter(lambda t: not any(0xD800 <= ord(c) <= 0xDFFF for c in t)))
def test_awkward_text_in_a_csv_import_is_stored_or_refused_naming_row_and_column(db, tmp_path, text):
    title = f"Risk {next(_ids)} {text}".replace('"', "'")
    path = tmp_path / "register.csv"
    path.write_text('title,statement,category,type,owner,likelihood,impact\n'
                    f'"{title}","Because {title} happens, it may stop checkout",security,internal,U0OWNER,3,3\n',
                    encoding="utf-8")
    before = row_counts(db)
    result = CliRunner().invoke(main, ["risks", "import", str(path)], obj={"database": db},
                                env={"SLACK_BOT_TOKEN": "", "DATABASE_URL": db.url})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if "\x00" in title:
        assert result.exit_code == 1 and "row 2, column title: contains a NUL character" in result.output
        assert not changed(before, row_counts(db))
    elif result.exit_code == 0:
        with db.session() as s:
            stored = s.exec(select(Risk).order_by(Risk.id.desc())).first().title
        assert stored == title.replace("\r\n", "\n").replace("\r", "\n").strip()  # the file is read as text
    else:
        assert "row 2, column" in result.output and not changed(before, row_counts(db))
