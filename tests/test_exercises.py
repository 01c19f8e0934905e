"""Exercises (CC7.5): declared from the /incident form, numbered EX-<n> on their own streams, bannered in
every message, run like incidents (roles, notes, playbooks, clocks, close, actions), and kept out of the
incident population and its figures while the program review counts them as held."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from click.testing import CliRunner
from sqlmodel import select

from tests.slack_requests import input_value
from vigil_ir import clock
from vigil_ir.cli import main
from vigil_ir.config import Settings
from vigil_ir.eventlog import Event, events_for_stream
from vigil_ir.exports import program_review
from vigil_ir.exports.population import incident_population
from vigil_ir.incidents import queries, service
from vigil_ir.incidents.models import EXERCISE_BANNER, Incident
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.playbooks.models import PlaybookDeadline
from vigil_ir.state_check import check_state
from vigil_ir.web.dashboard.filters import IncidentFilters

LEAD, FACILITATOR = "U0LEAD", "U0FACIL"
SCENARIO = "A laptop holding customer records is stolen; GDPR's 72-hour clock starts."


def declare_exercise(vigil, title="Stolen laptop tabletop", *, kind="tabletop", scenario=SCENARIO,
                     severity="sev2", type="availability", user=FACILITATOR, tick=True):
    assert vigil.command(f"declare {title}", user=user).status_code == 200
    view = vigil.last_view("incident_declare")
    values = {"title": input_value("plain_text_input", title), "severity": input_value("static_select", severity),
              "type": input_value("static_select", type),
              "exercise_kind": input_value("static_select", kind), "scenario": input_value("plain_text_input", scenario)}
    if tick:
        values["exercise"] = input_value("checkboxes", [{"value": "yes"}])
    return vigil.submit(view, values, user=user)


def exercise(vigil, number=1) -> Incident:
    with vigil.db.session() as s:
        return queries.by_key(s, f"EX-{number}")


def posts(fake_slack, channel=None):
    return [c.params for c in fake_slack.calls_to("chat.postMessage")
            if channel is None or c.params["channel"] == channel]


def test_an_exercise_declared_from_the_form_is_ex_numbered_bannered_and_leaves_inc_numbers_whole(vigil, fake_slack):
    vigil.command("declare")
    blocks = {b["block_id"] for b in vigil.last_view("incident_declare")["blocks"]}
    assert {"exercise", "exercise_kind", "scenario"} <= blocks
    response = declare_exercise(vigil)
    assert response.status_code == 200 and "errors" not in response.text
    vigil.deliver()
    ex = exercise(vigil)
    assert (ex.key, ex.stream, ex.exercise_kind, ex.scenario) == ("EX-1", "exercise:1", "tabletop", SCENARIO)
    assert ex.channel_name == "ex-1-stolen-laptop-tabletop"
    summary, feed = posts(fake_slack, ex.channel_id)[0], posts(fake_slack, "C0FEED")[0]
    for message in (summary, feed):
        assert message["text"].startswith(EXERCISE_BANNER)
        assert EXERCISE_BANNER in str(message["blocks"][:2])
    vigil.command("note Participants found the laptop inventory out of date", channel=ex.channel_id, user=LEAD)
    vigil.deliver()
    assert posts(fake_slack, ex.channel_id)[-1]["text"].startswith(EXERCISE_BANNER + "\n:memo:")
    # A real incident declared after the exercise is INC-1: exercises use their own numbers.
    vigil.declare("Checkout API returns 500s")
    with vigil.db.session() as s:
        incident = s.exec(select(Incident).where(Incident.exercise.is_(False))).one()
    assert incident.key == "INC-1" and incident.channel_name.startswith("inc-1-")
    assert not any(EXERCISE_BANNER in p["text"] for p in posts(fake_slack, incident.channel_id))
    with vigil.db.session() as s:
        assert [e.kind for e in events_for_stream(s, "exercise:1")][0] == "incident.declared"
        assert events_for_stream(s, "exercise:1")[0].data["exercise"] == {"kind": "tabletop", "scenario": SCENARIO}
        assert queries.by_key(s, "INC-1").id == incident.id and queries.by_key(s, "EX-1").id == ex.id
        assert check_state(s).found == []


def test_a_half_filled_exercise_is_refused_inline_and_writes_nothing(vigil):
    no_kind = declare_exercise(vigil, kind=None, scenario="")
    assert set(no_kind.json()["errors"]) == {"exercise_kind", "scenario"}
    unticked = declare_exercise(vigil, tick=False)  # a scenario given, the box not ticked: not an incident either
    assert set(unticked.json()["errors"]) == {"exercise"}
    with vigil.db.session() as s:
        assert s.exec(select(Incident)).all() == [] and s.exec(select(OutboxItem)).all() == []


def test_playbooks_clocks_roles_and_close_run_as_for_an_incident_with_the_banner(vigil, fake_slack):
    declare_exercise(vigil, "Database failover game day", kind="game_day")
    vigil.deliver()
    ex = exercise(vigil)
    vigil.command(f"lead <@{LEAD}>", channel=ex.channel_id, user=FACILITATOR)
    vigil.command("playbook db-failover", channel=ex.channel_id, user=LEAD)
    vigil.deliver()
    checklist = next(p for p in posts(fake_slack, ex.channel_id) if "Check replica lag" in str(p.get("blocks")))
    assert checklist["text"].startswith(EXERCISE_BANNER) and EXERCISE_BANNER in str(checklist["blocks"][0])
    with vigil.db.session() as s:
        start = s.exec(select(PlaybookDeadline).where(PlaybookDeadline.deadline_id == "customer-notice")).one().starts_at
    assert vigil.sweep(start + timedelta(hours=2, minutes=1))["playbook.deadlines"] == 1   # 50 % of 4 h
    vigil.deliver()
    reminder = posts(fake_slack, ex.channel_id)[-1]["text"]
    assert reminder.startswith(EXERCISE_BANNER) and "Tell affected customers" in reminder
    vigil.command("resolve", channel=ex.channel_id, user=LEAD)
    vigil.command("close", channel=ex.channel_id, user=LEAD)
    values = {k: input_value("plain_text_input", v) for k, v in {
        "customer_impact": "None: an exercise", "root_cause": "Failover runbook lacked the DNS step",
        "lessons_learned": "Add the DNS cut-over to the runbook", "override_reason": "Exercise ended",
        "follow_ups": "Add the DNS step to db-failover"}.items()}
    assert vigil.submit(vigil.last_view("incident_close"), values, user=LEAD).status_code == 200
    vigil.deliver()
    owner_dm = next(p for p in posts(fake_slack, LEAD) if "ACT-1" in p["text"])
    assert owner_dm["text"].startswith(EXERCISE_BANNER) and "(EX-1)" in owner_dm["text"]
    with vigil.db.session() as s:
        kinds = [e.kind for e in events_for_stream(s, "exercise:1")]
        assert {"playbook.attached", "playbook.deadline_reminded",
                "incident.role_assigned", "incident.closed"} <= set(kinds)
        assert s.exec(select(Event).where(Event.stream.like("incident:%"))).first() is None
        assert check_state(s).found == []
    assert exercise(vigil).status == "closed"


def test_an_edited_exercise_row_is_reported_by_the_state_check(vigil):
    declare_exercise(vigil)
    vigil.declare("Checkout API returns 500s")  # INC-1 shares the number 1 with EX-1
    assert CliRunner().invoke(main, ["verify"], obj={"database": vigil.db}).exit_code == 0
    with vigil.db.session() as s:
        row = queries.by_key(s, "EX-1")
        row.scenario = "Something milder"
        s.add(row)
    with vigil.db.session() as s:
        found = check_state(s).found
    assert [(m.record, m.field) for m in found] == [("EX-1", "scenario")]
    verified = CliRunner().invoke(main, ["verify"], obj={"database": vigil.db})
    assert verified.exit_code == 1 and "EX-1: the state row's scenario differs from its events" in verified.output


def _declare(db, at: datetime, *, exercise: str | None = None, resolve_after: int = 30) -> str:
    with clock.frozen(at), db.session() as s:
        declared = service.declare(s, actor=FACILITATOR, title="Card payments failing", severity="sev2",
                                   type="availability", exercise=exercise,
                                   scenario="Payment provider outage" if exercise else "")
        key = declared.key
    with clock.frozen(at + timedelta(minutes=resolve_after)), db.session() as s:
        service.resolve(s, incident=queries.by_key(s, key), actor=LEAD)
    return key


def test_exercises_stay_out_of_the_population_and_its_figures_but_are_counted_as_held(db):
    start, end = datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 4, 1, tzinfo=timezone.utc)
    real = _declare(db, datetime(2025, 2, 3, 9, tzinfo=timezone.utc), resolve_after=60)
    drills = [_declare(db, datetime(2025, 2, 10, 9, tzinfo=timezone.utc), exercise="tabletop", resolve_after=5),
              _declare(db, datetime(2025, 3, 10, 9, tzinfo=timezone.utc), exercise="game_day", resolve_after=7)]
    assert (real, drills) == ("INC-1", ["EX-1", "EX-2"])
    settings = Settings(_env_file=None, DATABASE_URL=db.url)
    with clock.frozen(datetime(2025, 4, 2, tzinfo=timezone.utc)), db.read_session() as s:
        assert [row["key"] for row in incident_population(s, start, end)] == ["INC-1"]
        review = program_review.build(s, start, end, settings=settings)
        filters = IncidentFilters.parse({})
        listed, total = filters.run(s)
        both, _ = IncidentFilters.parse({"exercises": "include"}).run(s)
        only, _ = IncidentFilters.parse({"exercises": "only"}).run(s)
    parts = {part.title: part for part in program_review.sections(review)}
    assert parts["Incidents in the period"].text.startswith("1 incident declared")
    timing = {(row[0], row[1]): row for row in parts["Time to acknowledge, mitigate and resolve (CC7.4)"].rows}
    assert timing[("sev2", "Resolve")][2:4] == (1, "60")  # the exercises' 5 and 7 minutes are not in it
    held = parts["Exercises held (CC7.5)"]
    assert held.text.startswith("2 exercises held in the period (1 game day, 1 tabletop exercise)")
    assert [row[:3] for row in held.rows] == [("EX-1", "2025-02-10", "Tabletop exercise"),
                                              ("EX-2", "2025-03-10", "Game day")]
    assert ([i.key for i in listed], total) == (["INC-1"], 1)
    assert sorted(i.key for i in both) == ["EX-1", "EX-2", "INC-1"]
    assert [i.key for i in only] == ["EX-2", "EX-1"]


def test_a_bundle_keeps_exercises_out_of_the_incident_files_and_still_verifies(db, tmp_path):
    from tests.test_bundle import export, seed, table

    seed(db)
    drill = _declare(db, datetime(2025, 2, 10, 9, tzinfo=timezone.utc), exercise="tabletop")
    bundle = export(db, tmp_path)
    assert drill == "EX-1" and [row["key"] for row in table(bundle, "incidents")[0]] == ["INC-2", "INC-3", "INC-5"]
    # The exercise's events are in exercise_events, whole, and not repeated in the audit trail.
    assert not [row for row in table(bundle, "audit_log")[0] if row["stream"] == "exercise:1"]
    logged = table(bundle, "exercise_events")[0]
    assert logged and {(row["object_type"], row["object_ref"]) for row in logged} == {("exercise", "EX-1")}
    verified = CliRunner().invoke(main, ["verify", "--bundle", str(bundle)])
    assert verified.exit_code == 0, verified.output
