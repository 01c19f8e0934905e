"""Property-based tests of every modal submission's `state.values`, through signed requests.

Each modal is opened the way Vigil opens it (so its private_metadata is real), then submitted with
generated values: every input block missing, null, of the wrong element type, or with text that is
empty, very long, full of control characters, unicode, or Slack syntax (`<!channel>`, `<@U…>`).

Invariants: the answer is a 200 (no 5xx, no traceback); it is either an acceptance (empty body) or
`response_action: errors` whose messages are non-empty text keyed by input blocks that exist in that
modal (Slack shows nothing for an unknown block id); and a refusal writes nothing.

SQLite only (see tests/fuzzing.py): hundreds of submissions, and validation happens before the
database; tests/test_fuzz_text_storage.py sends awkward text through PostgreSQL too.
"""

from __future__ import annotations

import itertools
import json
from datetime import date, timedelta
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from vigil_ir.followup.actions import parent_ref
from vigil_ir.followup.models import ActionItem
from vigil_ir.playbooks.models import PlaybookStep
from vigil_ir.risks.models import RiskApproval
from vigil_ir.slack import action_blocks, blocks, risk_blocks
from tests import slack_requests as sr
from tests.fuzzing import SLACK_SYNTAX, assert_no_traceback, changed, fuzz, hostile_text, json_values, row_counts
from tests.fuzzing import sqlite_database_url  # noqa: F401  (fixture `database_url`: SQLite only)
from tests.risk_fixtures import APPROVER, OWNER, make_risk

LEAD = "U0LEAD"
_view_ids = itertools.count(1)


def _last_change_seq(session, item):
    from vigil_ir.followup.actions import last_change

    return last_change(session, item).stream_seq


class Modals:
    """Opens each of Vigil's modals once for a test; `view(callback_id)` returns it."""

    def __init__(self, app):
        self.app = app
        self.open = app.incident_open
        self.resolved = app.incident_resolved
        self._views: dict[str, dict] = {}

    def view(self, callback_id: str) -> dict:
        if callback_id not in self._views:
            self._views[callback_id] = getattr(self, "_" + callback_id)()
        return self._views[callback_id]

    def _command(self, text, callback_id, *, command="/incident", channel="C0GENERAL", user=LEAD):
        assert self.app.command(text, command=command, channel=channel, user=user).status_code == 200
        return self.app.last_view(callback_id)

    def _incident_declare(self):
        return self._command("declare", "incident_declare")

    def _incident_update(self):
        return self._command("update", "incident_update", channel=self.open.channel_id)

    def _incident_close(self):
        return self._command("close", "incident_close", channel=self.resolved.channel_id)

    def _incident_pir(self):
        return self._command("pir", "incident_pir", channel=self.resolved.channel_id)

    def _incident_correct_note(self):
        reply = self.app.command("note the original note", channel=self.open.channel_id, user=LEAD).text
        note_id = int(reply.rsplit("#", 1)[1].rstrip("."))
        return blocks.correct_note_modal(self.open, note_id, "the original note")

    def _step(self, builder):
        self.app.command("playbook generic", channel=self.open.channel_id, user=LEAD)
        with self.app.db.session() as s:
            step = s.exec(select(PlaybookStep).order_by(PlaybookStep.position)).first()
        return builder(step)

    def _playbook_done(self):
        return self._step(blocks.done_modal)

    def _playbook_skip(self):
        return self._step(blocks.skip_modal)

    def _playbook_assign(self):
        return self._step(blocks.assign_modal)

    def _risk_add(self):
        return self._command("add", "risk_add", command="/risk")

    def _risk_review(self):
        risk = make_risk(self.app.db, title="Fuzzed review target")
        return self._command(f"review {risk.key}", "risk_review", command="/risk", user=OWNER)

    def _risk_reject(self):
        risk = make_risk(self.app.db, title="Fuzzed approval target")
        self.app.command(f"review {risk.key}", command="/risk", user=OWNER)
        review = self.app.last_view("risk_review")
        answer = self.app.submit(review, {"outcome": sr.input_value("static_select", "closure_requested"),
                                          "rationale": sr.input_value("plain_text_input", "The old VPN has been switched off."),
                                          "closure_reason": sr.input_value("static_select", "system_retired")},
                                 user=OWNER)
        assert answer.status_code == 200 and not answer.content, answer.text
        with self.app.db.session() as s:
            approval = s.exec(select(RiskApproval).order_by(RiskApproval.id.desc())).first()
        return risk_blocks.reject_modal(approval, risk)

    def _action_item_update(self):
        self.app.command(f"action <@{OWNER}> 3d Rotate the key", channel=self.open.channel_id, user=LEAD)
        with self.app.db.session() as s:
            item = s.exec(select(ActionItem).order_by(ActionItem.id.desc())).first()
            return action_blocks.update_modal(item, parent_ref(s, item), _last_change_seq(s, item))

    def _action_item_create(self):
        body = sr.message_shortcut("create_action", channel=self.open.channel_id,
                                   message={"ts": "1700000000.000100", "text": "fix <it> & more", "user": "U1"},
                                   user=LEAD)
        assert self.app.post(body).status_code == 200
        return self.app.last_view("action_item_create")


CALLBACKS = ["incident_declare", "incident_update", "incident_close", "incident_pir", "incident_correct_note",
             "playbook_done", "playbook_skip", "playbook_assign", "risk_add", "risk_review", "risk_reject",
             "action_item_update", "action_item_create"]
# Who submits: the person the modal was opened for, or someone else (an authorisation refusal).
SUBMITTER = {"risk_review": OWNER, "risk_reject": APPROVER}


@pytest.fixture
def app(db, fake_slack, settings_for):
    from vigil_ir.runtime import build_runtime
    from tests.conftest import VigilHarness

    settings = settings_for(DATABASE_URL=db.url, VIGIL_RISK_APPROVERS=APPROVER, VIGIL_RISK_CHANNEL="C0RISKS")
    harness = VigilHarness(build_runtime(settings, db), fake_slack)
    harness.incident_open = harness.declare("Open incident", user=LEAD)
    harness.command(f"lead <@{LEAD}>", channel=harness.incident_open.channel_id, user=LEAD)
    harness.incident_resolved = harness.declare("Resolved incident", user=LEAD)
    harness.command(f"lead <@{LEAD}>", channel=harness.incident_resolved.channel_id, user=LEAD)
    harness.command("resolve", channel=harness.incident_resolved.channel_id, user=LEAD)
    harness.modals = Modals(harness)
    yield harness
    harness.client.close()


# ---- state.values strategies ---------------------------------------------------------------------
def inputs(view: dict) -> list[tuple[str, dict]]:
    return [(b["block_id"], b["element"]) for b in view["blocks"] if b["type"] == "input"]


short_text = st.lists(st.one_of(st.sampled_from(SLACK_SYNTAX), st.text(min_size=1, max_size=12)),
                      min_size=1, max_size=4).map("".join).filter(lambda t: t.strip())


# Free-text inputs with a format of their own: plausible values are ones of that format.
FORMATTED = {"cadence": ["", "quarterly", "monthly", "FREQ=MONTHLY;INTERVAL=2"], "tsc_refs": ["", "CC6.1, CC7.2"],
             "incidents": ["", "INC-1"], "ticket_url": ["", "https://tickets.example/T-1"]}


def good_value(element: dict, plausible: bool, block_id: str = ""):
    """A value of the element's own type: `plausible` ones are what a person could enter (text with
    Slack syntax, control characters and unicode in it); the others include nonsense of that type."""
    kind = element["type"]
    options = [o["value"] for o in element.get("options", [])]
    text = short_text if plausible else st.one_of(st.none(), hostile_text)
    choice = st.sampled_from(options) if plausible and options else st.one_of(st.sampled_from(options or ["x"]),
                                                                              hostile_text)
    users = st.sampled_from([OWNER, LEAD, "U0SOMEONE", "W0X"])
    if plausible and block_id in FORMATTED:
        return st.fixed_dictionaries({"type": st.just(kind), "value": st.sampled_from(FORMATTED[block_id])})
    if kind == "plain_text_input":
        return st.fixed_dictionaries({"type": st.just(kind), "value": text})
    if kind == "url_text_input":
        return st.fixed_dictionaries({"type": st.just(kind), "value": st.one_of(
            text, st.just("https://tickets.example/T-1"), short_text.map(lambda t: "https://x.example/" + t))})
    if kind in ("static_select", "radio_buttons"):
        selected = st.fixed_dictionaries({"value": choice})
        return st.fixed_dictionaries({"type": st.just(kind), "selected_option": selected if plausible else
                                      st.one_of(st.none(), selected)})
    if kind == "checkboxes":
        return st.fixed_dictionaries({"type": st.just(kind), "selected_options": st.lists(
            st.fixed_dictionaries({"value": choice}), max_size=2)})
    if kind == "datetimepicker":
        moment = st.integers(1_600_000_000, 1_900_000_000) if plausible else st.one_of(
            st.none(), st.integers(0, 2**41), st.integers(-2**63, 2**64))
        return st.fixed_dictionaries({"type": st.just(kind), "selected_date_time": moment})
    if kind == "datepicker":
        day = st.dates(min_value=date.today(), max_value=date.today() + timedelta(days=300)).map(str) if plausible \
            else st.one_of(st.none(), st.dates().map(str), hostile_text)
        return st.fixed_dictionaries({"type": st.just(kind), "selected_date": day})
    if kind == "users_select":
        return st.fixed_dictionaries({"type": st.just(kind), "selected_user": users if plausible else
                                      st.one_of(st.none(), users, hostile_text)})
    if kind == "multi_users_select":
        return st.fixed_dictionaries({"type": st.just(kind), "selected_users": st.lists(
            users if plausible else st.one_of(users, hostile_text), min_size=1 if plausible else 0, max_size=3)})
    raise AssertionError(f"no strategy for {kind}")


def wrong_value():
    """Not what Slack sends for the element: another element's shape, or any JSON at all."""
    return st.one_of(json_values, st.fixed_dictionaries({"type": st.just("static_select"), "value": json_values}),
                     st.fixed_dictionaries({"selected_option": json_values}),
                     st.fixed_dictionaries({"value": json_values}),
                     st.fixed_dictionaries({"selected_date_time": json_values}),
                     st.fixed_dictionaries({"selected_date": json_values}),
                     st.fixed_dictionaries({"selected_user": json_values}),
                     st.fixed_dictionaries({"selected_users": json_values}))


@st.composite
def state_values(draw, view: dict):
    """Half the time every block has a plausible value (so submissions get accepted and write text with
    Slack syntax and control characters in it); otherwise blocks go missing, null or of the wrong type."""
    plausible = draw(st.booleans())
    values = {}
    for block_id, element in inputs(view):
        how = "good" if plausible else draw(st.sampled_from(
            ["good", "good", "missing", "null_entry", "wrong", "wrong_action_id"]))
        if how == "missing":
            continue
        entry = st.none() if how == "null_entry" else wrong_value() if how == "wrong" else \
            good_value(element, plausible, block_id)
        values[block_id] = {("other" if how == "wrong_action_id" else "value"): draw(entry)}
    if not plausible and draw(st.booleans()):  # a block the modal does not have
        values[draw(st.text(max_size=8))] = {"value": draw(json_values)}
    return values


def submit(app, view: dict, values: dict, user: str):
    """A signed view_submission whose state.values is exactly `values` (any JSON), with a new view id."""
    body = json.loads(unquote(sr.view_submission(view, {}, user=user, view_id=f"VFUZZ{next(_view_ids)}")
                              .removeprefix("payload=")))
    body["view"]["state"]["values"] = values
    return app.post(sr.interactive(body))


@pytest.mark.parametrize("callback_id", CALLBACKS)
def test_every_modal_answers_bad_state_values_inline_and_writes_nothing_when_it_refuses(app, callback_id):
    view = app.modals.view(callback_id)
    blocks_in_view = {block_id for block_id, _ in inputs(view)}

    @fuzz(25)
    @given(values=state_values(view), stranger=st.sampled_from([False, False, False, True]))
    def submission(values, stranger):
        user = "U0STRANGER" if stranger else SUBMITTER.get(callback_id, LEAD)
        before = row_counts(app.db)
        response = submit(app, view, values, user)
        after = row_counts(app.db)
        assert response.status_code == 200, (response.status_code, response.text[:300], values)
        assert_no_traceback(response.text)
        answer = response.json() if response.content else {}
        if answer:
            assert answer.get("response_action") == "errors", answer
            assert answer["errors"] and set(answer["errors"]) <= blocks_in_view, (answer, blocks_in_view)
            assert all(isinstance(m, str) and m.strip() for m in answer["errors"].values()), answer
            assert not changed(before, after), (changed(before, after), answer, values)

    submission()
