"""`vigil verify` folds every record stream, not only incidents: risks, their reviews, approvals and
acceptances, follow-up actions, PIRs and playbook runs. A state row edited with SQL, a row whose
stream is gone and a stream whose row is gone are each reported with record, field and both values,
exit 1; `vigil export bundle` refuses to build a bundle from rows that disagree with their events."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, update
from sqlmodel import select

from vigil_ir.cli import main
from vigil_ir.eventlog.models import Event, StreamHead
from vigil_ir.followup.models import ActionItem, PostIncidentReview
from vigil_ir.playbooks.models import PlaybookRun, PlaybookStep
from vigil_ir.risks import approvals, reviews
from vigil_ir.risks.models import Risk, RiskAcceptance, RiskApproval, RiskReview
from tests.risk_fixtures import APPROVER, OWNER, make_risk
from tests.test_bundle import at, seed


def verify(db):
    return CliRunner().invoke(main, ["verify"], obj={"database": db})


@pytest.fixture
def records(db):
    """The bundle tests' quarter (incidents, a playbook run, a PIR, an action, reviewed risks) and RISK-3,
    accepted after a second person's approval."""
    seed(db)
    with at(date(2025, 3, 10)):
        risk = make_risk(db, title="Legacy VPN appliance")                              # RISK-3
    with at(date(2025, 3, 10), 5), db.session() as s:
        risk = s.get(Risk, risk.id)
        review = s.exec(select(RiskReview).where(RiskReview.risk_id == risk.id)).first()
        done = reviews.complete(s, risk=risk, review=review, actor=OWNER, approvers=frozenset({APPROVER}),
                                given={"outcome": "acceptance_requested", "acceptance_expires": "2025-09-01",
                                       "rationale": "Replacement is budgeted for Q3; compensating controls."})
        approval_id = done.approval.id
    with at(date(2025, 3, 11)), db.session() as s:
        approvals.approve(s, approval=s.get(RiskApproval, approval_id), actor=APPROVER,
                          approvers=frozenset({APPROVER}), comment="Agreed until Q3")
    return db


def only(db, model, *where):
    with db.session() as s:
        return s.exec(select(model).where(*where)).one()


def risk_id(db, number):
    return only(db, Risk, Risk.number == number).id


# (label, table, how to find the row, field, value written, record named, what the events say)
TAMPERED = [
    ("risk owner", Risk, lambda db: Risk.number == 3, "owner", "U0INTRUDER", lambda db: "RISK-3", "'U0OWNER'"),
    ("risk score", Risk, lambda db: Risk.number == 1, "residual_impact", 1, lambda db: "RISK-1", "3"),
    ("risk status", Risk, lambda db: Risk.number == 3, "status", "closed", lambda db: "RISK-3", "'accepted'"),
    ("review outcome", RiskReview, lambda db: RiskReview.status == "completed", "outcome", "rescored",
     None, None),
    ("acceptance expiry", RiskAcceptance, lambda db: RiskAcceptance.risk_id == risk_id(db, 3), "expires_on",
     date(2026, 12, 31), lambda db: f"RAC-{only(db, RiskAcceptance).id} of RISK-3", "'2025-09-01'"),
    ("approval decision", RiskApproval, lambda db: RiskApproval.risk_id == risk_id(db, 3), "state", "rejected",
     lambda db: f"approval {only(db, RiskApproval).id} of RISK-3", "'approved'"),
    ("action status", ActionItem, lambda db: ActionItem.number == 1, "status", "done", lambda db: "ACT-1", "'open'"),
    ("action owner", ActionItem, lambda db: ActionItem.number == 1, "owner", "U0NOBODY", lambda db: "ACT-1",
     "'U0OWNER'"),
    ("PIR status", PostIncidentReview, lambda db: PostIncidentReview.id > 0, "status", "pending",
     lambda db: "PIR of INC-2", "'completed'"),
]


@pytest.mark.parametrize(("table", "where", "field", "value", "record", "expected"),
                         [case[1:] for case in TAMPERED], ids=[case[0] for case in TAMPERED])
def test_an_edited_row_is_reported_with_record_field_and_values(records, table, where, field, value, record,
                                                                 expected):
    db = records
    if table is RiskReview:  # the quarter's no_change review of RISK-1 (RISK-3's review completed too)
        target = only(db, RiskReview, RiskReview.outcome == "no_change")
        where, record, expected = (lambda db: RiskReview.id == target.id), (lambda db: f"RRV-{target.id} of RISK-1"), \
            "'no_change'"
    condition, name = where(db), record(db)
    with db.session() as s:
        assert s.execute(update(table).where(condition).values({field: value})).rowcount == 1
    result = verify(db)
    assert result.exit_code == 1, result.output
    shown = value.isoformat() if isinstance(value, date) else value
    assert (f"BROKEN: {name}: the state row's {field} differs from its events (events say {expected}, "
            f"the row has {shown!r})") in result.output
    assert "state difference(s) between the state tables and their events" in result.output


def test_a_playbook_step_status_changed_by_sql_is_reported(records):
    db = records
    run = only(db, PlaybookRun)
    with db.session() as s:
        step = s.exec(select(PlaybookStep).where(PlaybookStep.run_id == run.id, PlaybookStep.status == "done")).one()
        s.execute(update(PlaybookStep).where(PlaybookStep.id == step.id).values(status="skipped", completed_by="U0X"))
    result = verify(db)
    assert result.exit_code == 1
    record = f"INC-2 playbook run {run.id} step {step.step_id}"
    assert f"BROKEN: {record}: the state row's status differs from its events (events say 'done', the row has " \
           "'skipped')" in result.output
    assert f"BROKEN: {record}: the state row's completed_by differs from its events (events say 'U0LEAD', the row " \
           "has 'U0X')" in result.output


def test_an_untouched_database_passes(records):
    result = verify(records)
    assert result.exit_code == 0, result.output
    assert "every state row (incidents (and private incidents' access), risks, risk reviews, approvals, acceptances, " \
           "follow-up actions, PIRs and playbook runs) agrees with its events" in result.output


def test_a_row_whose_stream_is_gone_is_reported(records):
    db = records
    with db.session() as s:
        s.execute(delete(Event).where(Event.stream == "action:1"))
        s.execute(delete(StreamHead).where(StreamHead.stream == "action:1"))
    result = verify(db)
    assert result.exit_code == 1
    assert "BROKEN: ACT-1: the state row has no events (expected its event stream, found none (a row without any " \
           "event))" in result.output


@pytest.mark.parametrize("removed", ["action", "acceptance", "step"])
def test_a_stream_whose_row_is_gone_is_reported(records, removed):
    db = records
    with db.session() as s:
        if removed == "action":
            s.execute(delete(ActionItem).where(ActionItem.number == 1))
            record = "ACT-1"
        elif removed == "acceptance":
            acceptance = s.exec(select(RiskAcceptance)).one()
            s.execute(delete(RiskAcceptance).where(RiskAcceptance.id == acceptance.id))
            record = f"RAC-{acceptance.id} of RISK-3"
        else:
            step = s.exec(select(PlaybookStep).order_by(PlaybookStep.position)).first()
            s.execute(delete(PlaybookStep).where(PlaybookStep.id == step.id))
            record = f"INC-2 playbook run {step.run_id} step {step.step_id}"
    result = verify(db)
    assert result.exit_code == 1
    assert f"BROKEN: {record}: its events have no state row" in result.output


def test_a_review_row_no_event_mentions_is_reported(records):
    db = records
    with db.session() as s:
        review = RiskReview(risk_id=risk_id(db, 1), trigger="manual", trigger_ref="forged", due_on=date(2025, 2, 1),
                            reviewer=OWNER, status="completed", outcome="no_change", rationale="Looked fine to me.",
                            created_at=s.exec(select(Risk)).first().created_at)
        s.add(review)
        s.flush()
        forged = review.id
    result = verify(db)
    assert result.exit_code == 1
    assert f"BROKEN: RRV-{forged} of RISK-1: the state row has no events" in result.output


def test_export_bundle_refuses_a_tampered_row_and_names_it(records, tmp_path):
    db = records
    with db.session() as s:
        s.execute(update(Risk).where(Risk.number == 3).values(owner="U0INTRUDER"))
    target = tmp_path / "q1.zip"
    result = CliRunner().invoke(main, ["export", "bundle", "--from", "2025-01-01", "--to", "2025-03-31",
                                       "-o", str(target)], obj={"database": db})
    assert result.exit_code == 1
    assert "No bundle written: 1 state row difference(s) with the event log" in result.output
    assert "RISK-3: the state row's owner differs from its events (events say 'U0OWNER', the row has " \
           "'U0INTRUDER')" in result.output
    assert not target.exists()
    with db.session() as s:
        assert s.exec(select(Event).where(Event.kind == "audit.bundle_exported")).first() is None


def test_streams_compared_a_batch_at_a_time_while_the_cursor_is_open_find_the_same(records):
    """Small pages and one stream per batch: the row queries run between pages of the open event
    cursor (a server-side cursor on PostgreSQL) and the result is the same as in one batch."""
    from vigil_ir.eventlog.verify import verify_database
    from vigil_ir.state_check import checker

    db = records
    with db.session() as s:
        s.execute(update(Risk).where(Risk.number == 1).values(owner="U0INTRUDER"))
        s.execute(update(ActionItem).where(ActionItem.number == 1).values(status="cancelled"))
        s.execute(update(PostIncidentReview).values(root_cause="Nobody knows"))
    found = {}
    for batch, page in ((1, 3), (10_000, 1000)):
        with db.read_session() as s:
            state = checker(s, batch=batch)
            assert verify_database(s, batch=page, observe=state.feed).ok
            found[batch] = sorted(m.describe() for m in state.finish())
    assert found[1] == found[10_000]
    assert [line.split(":")[0] for line in found[1]] == ["ACT-1", "PIR of INC-2", "RISK-1"]


@pytest.mark.parametrize("before", [None, "2025-03-01"])
def test_the_exports_check_reading_only_the_folded_events_finds_what_every_event_gives(records, before):
    """`vigil export bundle` checks state from the events the folds read (walk_read: no notes) rather
    than every event of the record streams (walk): rows edited, an event's kind changed, a stream's
    first event deleted and a first event moved past the period end (so that the stream is left out)
    give the same findings."""
    from datetime import datetime, timezone

    from vigil_ir.eventlog.folding import walk
    from vigil_ir.state_check import check_state, checker, finish

    db = records
    with db.session() as s:
        s.execute(update(Risk).where(Risk.number == 1).values(owner="U0INTRUDER"))
        s.execute(update(ActionItem).where(ActionItem.number == 1).values(status="cancelled"))
        s.execute(update(Event).where(Event.stream == "incident:2", Event.kind == "incident.role_assigned")
                  .values(kind="incident.note_added"))
        s.execute(delete(Event).where(Event.stream == "incident:1", Event.stream_seq == 1))
        s.execute(update(Event).where(Event.stream == "incident:3", Event.stream_seq == 1)
                  .values(recorded_at=datetime(2031, 1, 1, tzinfo=timezone.utc)))
    end = None if before is None else datetime.fromisoformat(before).replace(tzinfo=timezone.utc)
    with db.read_session() as s:
        everything = checker(s, before=end)
        for event in walk(s, everything.prefixes):
            everything.feed(event)
        expected = sorted(m.describe() for m in finish(everything, s))
    with db.read_session() as s:
        found = check_state(s, before=end)
    assert sorted(m.describe() for m in found.found) == expected
    assert found.count == len(expected)
    named = {line.split(":")[0] for line in expected}
    assert {"RISK-1", "ACT-1", "INC-1", "INC-2"} <= named
    assert ("INC-3" in named) is (before is None)


def test_a_stream_rewritten_without_its_creation_is_reported_not_a_crash(records, tmp_path):
    """Someone with write access deletes a risk's first event and recomputes the chain to hide it: the
    chain verifies, so the fold must say that the events never create the risk (RISK-3 has a completed
    review, an approval and an acceptance after it, none of which can be replayed without the risk:
    replaying them crashed the fold)."""
    from tests.test_witness import rechain

    db, stream, record, kind = records, "risk:3", "RISK-3", "risk.created"
    with db.session() as s:
        s.execute(delete(Event).where(Event.stream == stream, Event.stream_seq == 1))
    rechain(db, stream)
    result = verify(db)
    assert result.exit_code == 1, result.output
    assert f"BROKEN: {record}: its events never create it (expected a {kind} event, found none in its stream)" \
        in result.output
    assert isinstance(result.exception, SystemExit)
    assert sum(line.startswith(f"BROKEN: {record}") or f" of {record}:" in line
               for line in result.output.splitlines()) == 1  # one finding, not one per review it holds
    target = tmp_path / "q1.zip"
    exported = CliRunner().invoke(main, ["export", "bundle", "--from", "2025-01-01", "--to", "2025-03-31",
                                         "-o", str(target)], obj={"database": db})
    assert exported.exit_code == 1 and not target.exists()
    assert f"{record}: its events never create it" in exported.output


@pytest.mark.parametrize(("shift", "reported"), [(timedelta(seconds=30), False), (timedelta(minutes=2), True)])
def test_a_reviews_clock_reading_is_compared_within_the_skew(records, shift, reported):
    """A review row's completed_at is its own clock reading, a moment before its `risk.reviewed` event's:
    moved within CLOCK_SKEW it agrees, moved beyond it is reported with the event's time."""
    from vigil_ir import clock

    db = records
    target = only(db, RiskReview, RiskReview.outcome == "no_change")
    moved = clock.to_utc(target.completed_at) + shift
    with db.session() as s:
        s.execute(update(RiskReview).where(RiskReview.id == target.id).values(completed_at=moved))
        event = s.exec(select(Event).where(Event.stream == "risk:1", Event.kind == "risk.reviewed")).one()
    result = verify(db)
    line = (f"BROKEN: RRV-{target.id} of RISK-1: the state row's completed_at differs from its events (events say "
            f"'{clock.iso(event.recorded_at)} (±60 s)', the row has '{clock.iso(moved)}')")
    assert (line in result.output) is reported, result.output
    assert result.exit_code == (1 if reported else 0)


@pytest.mark.parametrize(("table", "where", "field", "value", "expected"), [
    (Risk, lambda db: Risk.number == 1, "next_review_due", date(2026, 1, 1), None),
    (Risk, lambda db: Risk.number == 1, "updated_at", datetime(2025, 1, 1, tzinfo=timezone.utc), None),
    (RiskReview, lambda db: RiskReview.outcome == "no_change", "due_on", date(2025, 3, 1), None),
])
def test_an_edited_date_or_time_is_reported_in_its_json_form(records, table, where, field, value, expected):
    """Dates and times are compared in the form the events carry them (`2025-03-01`,
    `2025-01-01T00:00:00.000000Z`), whichever way the database returns them."""
    from vigil_ir import clock
    from vigil_ir.risks import history

    db = records
    row = only(db, table, where(db))
    before = history.to_json(getattr(row, field))
    with db.session() as s:
        s.execute(update(table).where(table.id == row.id).values({field: value}))
    result = verify(db)
    record = "RISK-1" if table is Risk else f"RRV-{row.id} of RISK-1"
    shown = clock.iso(value) if isinstance(value, datetime) else value.isoformat()
    assert (f"BROKEN: {record}: the state row's {field} differs from its events (events say "
            f"{expected or repr(before)}, the row has {shown!r})") in result.output, result.output


def test_the_folds_read_the_streams_that_begin_with_their_prefixes_exactly(records):
    """walk_read reads a range of streams per prefix (on SQLite by comparing texts): neighbours of a
    prefix (`risk;`, `risks:`) and other cases (`RISK:`) are not read; every stream that begins with
    one is, in the log's (stream, stream_seq) order, with the events walk gives, less the kinds no
    fold reads."""
    from vigil_ir.eventlog import append
    from vigil_ir.eventlog.folding import walk, walk_read
    from vigil_ir.state_check import folds

    db = records
    with db.session() as s:
        for stream in ("risk;1", "risks:1", "RISK:1", "Risk:2", "incident;9", "action", "risk:"):
            append(s, stream=stream, kind="risk.created", actor="U0X", data={})
    with db.read_session() as s:
        read = [(e.stream, e.stream_seq, e.kind) for e in walk_read(s, folds())]
        kinds = {prefix: set() for prefix in ("action:", "exercise:", "incident:", "risk:")}
        for fold in folds():
            kinds[fold.prefix] = None if kinds[fold.prefix] is None or fold.kinds is None \
                else kinds[fold.prefix] | fold.kinds
        # walk's LIKE is not case-sensitive on SQLite: `RISK:1` too, which StateCheck passes over
        every = [(e.stream, e.stream_seq, e.kind) for e in walk(s, list(kinds)) if e.stream.startswith(tuple(kinds))]
    assert read == sorted(read)
    first = {}
    for stream, seq, kind in every:
        first.setdefault(stream, seq)
    prefix = lambda stream: next(p for p in kinds if stream.startswith(p))  # noqa: E731
    assert read == [(stream, seq, kind) for stream, seq, kind in every
                    if kinds[prefix(stream)] is None or kind in kinds[prefix(stream)] or first[stream] == seq]
    streams = {stream for stream, _, _ in read}
    assert "risk:" in streams and not streams & {"risk;1", "risks:1", "RISK:1", "Risk:2", "incident;9", "action"}
    assert {"risk:1", "risk:3", "incident:2", "action:1"} <= streams


def test_a_playbook_runs_own_columns_edited_by_sql_are_reported(records):
    """A run's columns (read as plain rows with its incident's number) and its attach time, its own
    clock reading compared within CLOCK_SKEW with its `playbook.attached` event's."""
    from vigil_ir import clock

    db = records
    run = only(db, PlaybookRun)
    moved = clock.to_utc(run.attached_at) + timedelta(minutes=5)
    with db.session() as s:
        s.execute(update(PlaybookRun).where(PlaybookRun.id == run.id).values(title="Something else",
                                                                            attached_at=moved))
    result = verify(db)
    assert result.exit_code == 1
    record = f"INC-2 playbook run {run.id}"
    assert (f"BROKEN: {record}: the state row's title differs from its events (events say {run.title!r}, the row "
            "has 'Something else')") in result.output
    assert f"BROKEN: {record}: the state row's attached_at differs from its events" in result.output
    assert f"the row has '{clock.iso(moved)}')" in result.output


def test_a_risk_time_written_another_way_for_the_same_instant_agrees(records):
    """A risk row agreeing with its fold is compared with its dates and times as the database writes them
    out; SQLite keeps a time as the text it was given, so a time written another way (`T`, no
    microseconds) is compared again as a time, and the same instant agrees, as it always did."""
    from sqlalchemy import text

    from vigil_ir import clock

    db = records
    if not db.is_sqlite:
        pytest.skip("PostgreSQL keeps a time as a time, whatever the text it was given")
    with db.session() as s:
        risk = s.exec(select(Risk).where(Risk.number == 1)).one()
        created, updated = clock.to_utc(risk.created_at), clock.to_utc(risk.updated_at)
        s.execute(text("UPDATE risk SET created_at = :created, updated_at = :updated WHERE number = 1"),
                  {"created": created.strftime("%Y-%m-%dT%H:%M:%S.%f"),
                   "updated": updated.strftime("%Y-%m-%d %H:%M:%S")})
        assert s.execute(text("SELECT created_at FROM risk WHERE number = 1")).scalar_one().count("T") == 1
    assert updated.microsecond == 0
    result = verify(db)
    assert result.exit_code == 0, result.output
