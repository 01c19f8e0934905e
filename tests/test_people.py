"""The people directory: sightings, look-ups through the outbox, history as events, names as they were."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from sqlmodel import select

from vigil_ir import clock
from vigil_ir.eventlog import Event, events_for_stream
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.people import Directory, Person, Profile, record_profile, resolve, sight, user_ids_in
from vigil_ir.people.sweeps import look_up_new, refresh
from vigil_ir.reminders.scheduler import run_sweep

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def _profile(**values) -> Profile:
    base = {"name": "dana", "real_name": "Dana Kim", "display_name": "dana", "email": "dana@example.com",
            "title": "SRE lead", "tz": "Europe/Berlin"}
    return Profile(**{**base, **values})


def test_user_ids_are_found_in_values_and_mentions_but_not_in_words():
    data = {"owner": "U02LEAD", "attendees": ["U0A1", "W0B2"], "note": "ask <@U0C3|cat> and <@U0D4>",
            "tz": "UTC", "channel": "C0FEED", "word": "USA", "nested": {"approver": "U0E5"}}
    assert sorted(set(user_ids_in(data))) == ["U02LEAD", "U0A1", "U0C3", "U0D4", "U0E5", "W0B2"]


def test_user_ids_come_in_the_order_they_are_held_values_not_keys_and_not_too_long():
    data = {"U0KEY1": "note", "a": ("W0T1", ["<@U0M1> then <@W0M2|w>", {"b": "U0N1"}]), "c": "U0" + "9" * 31,
            "d": "U0" + "9" * 30, "e": 7, "f": None, "g": "", "h": "u0lower", "i": "<@UTC>", "j": "U0A1 "}
    assert list(user_ids_in(data)) == ["W0T1", "U0M1", "W0M2", "U0N1", "U0" + "9" * 30]
    assert list(user_ids_in(json.loads('{"x": "\\u0055\\u0030\\u0058\\u0031"}'))) == ["U0X1"]  # escaped in the JSON text
    assert list(user_ids_in("U0S1")) == ["U0S1"] and list(user_ids_in(None)) == []


def test_first_answer_renames_and_deactivation_are_events_and_names_are_as_they_were(db):
    with clock.frozen(T0), db.session() as session:
        assert sight(session, ["U02LEAD", "UTC", "U02LEAD"], seen_at=T0) == ["U02LEAD"]
        assert sight(session, ["U02LEAD"], seen_at=T0) == []  # seen once, looked up once
        assert look_up_new(session, T0, None) == 1 and look_up_new(session, T0, None) == 0
        first = record_profile(session, user_id="U02LEAD", profile=_profile())
    with clock.frozen(T0 + timedelta(days=10)), db.session() as session:
        assert record_profile(session, user_id="U02LEAD", profile=_profile()) is None  # nothing changed
        renamed = record_profile(session, user_id="U02LEAD",
                                 profile=_profile(real_name="Dana Kim-Park", email="dana.park@example.com"))
    with clock.frozen(T0 + timedelta(days=20)), db.session() as session:
        gone = record_profile(session, user_id="U02LEAD", profile=_profile(real_name="Dana Kim-Park",
                                                                           email="dana.park@example.com",
                                                                           deactivated=True))
    assert first.kind == "person.first_seen" and first.data["real_name"] == "Dana Kim"
    assert first.data["email"] == "dana@example.com" and first.data["title"] == "SRE lead"
    assert renamed.kind == "person.changed"
    assert renamed.data["changes"] == {"real_name": {"from": "Dana Kim", "to": "Dana Kim-Park"},
                                       "email": {"from": "dana@example.com", "to": "dana.park@example.com"}}
    assert gone.data["changes"] == {"deactivated": {"from": False, "to": True}}
    with db.session() as session:
        assert [e.kind for e in events_for_stream(session, "person:U02LEAD")] == [
            "person.first_seen", "person.changed", "person.changed"]
        assert [i.dedupe_key for i in session.exec(select(OutboxItem))] == ["person-lookup:U02LEAD"]
        directory = Directory.load(session)
        person = session.get(Person, "U02LEAD")
        assert (person.real_name, person.email, person.deactivated) == ("Dana Kim-Park", "dana.park@example.com", True)
    # An act recorded before the rename shows the name of then; one after shows the new name.
    assert directory.label("U02LEAD", T0 + timedelta(days=1)) == "Dana Kim (U02LEAD)"
    assert directory.label("U02LEAD", T0 - timedelta(days=1)) == "Dana Kim (U02LEAD)"  # before the first answer
    assert directory.label("U02LEAD", T0 + timedelta(days=11)) == "Dana Kim-Park (U02LEAD)"
    assert directory.label("U02LEAD") == "Dana Kim-Park (U02LEAD)"
    assert directory.values_at("U02LEAD", T0 + timedelta(days=15))["deactivated"] is False
    assert directory.values_at("U02LEAD", T0 + timedelta(days=21))["deactivated"] is True
    assert directory.label("U0NOBODY") == "U0NOBODY (name unknown)"
    assert directory.name_column("U0NOBODY") == "name unknown"
    assert directory.label("system:worker") == "system:worker" and directory.name_column("system:worker") is None


def test_resolve_by_id_or_email_only_people_slack_described(db):
    with db.session() as session:
        sight(session, ["U0SEEN"], seen_at=T0)
        record_profile(session, user_id="U02LEAD", profile=_profile())
    with db.session() as session:
        assert resolve(session, "U02LEAD").user_id == "U02LEAD"
        assert resolve(session, " Dana@Example.com ").user_id == "U02LEAD"
        assert resolve(session, "u02lead").user_id == "U02LEAD"
        assert resolve(session, "U0SEEN") is None  # sighted, never described by Slack
        assert resolve(session, "nobody@example.com") is None and resolve(session, "Dana Kim") is None


def test_discovery_sights_actors_and_named_people_once_and_refresh_is_daily(vigil):
    fake = vigil.fake
    fake.set_user("U0DECLARER", real_name="Dana Kim", email="dana@example.com", title="SRE lead")
    vigil.declare(user="U0DECLARER")
    assert vigil.command("lead <@U0LEAD2|lee>", user="U0DECLARER", channel=_channel(vigil)).status_code == 200
    vigil.sweep()
    vigil.deliver()
    with vigil.db.session() as session:
        people = {p.user_id: p for p in session.exec(select(Person))}
        assert {"U0DECLARER", "U0LEAD2", "U0ADMIN"} <= set(people)  # actor, named lead, configured admin
        dana = people["U0DECLARER"]
        assert (dana.real_name, dana.email, dana.title, dana.tz) == ("Dana Kim", "dana@example.com", "SRE lead",
                                                                    "America/New_York")
        assert session.exec(select(Event).where(Event.stream == "person:U0DECLARER")).one().kind == "person.first_seen"
    looked_up = len(fake.calls_to("users.info"))
    vigil.sweep()
    vigil.deliver()
    assert len(fake.calls_to("users.info")) == looked_up  # nobody is looked up twice for a sighting
    fake.set_user("U0DECLARER", real_name="Dana Park", email="dana@example.com", title="Head of SRE")
    later = clock.now() + timedelta(hours=25)
    with clock.frozen(later):
        counts = vigil.sweep(later)
        assert counts["people.refresh"] >= 3
        assert vigil.sweep(later)["people.refresh"] == 0  # already queued
        vigil.deliver()
    with vigil.db.session() as session:
        change = session.exec(select(Event).where(Event.stream == "person:U0DECLARER",
                                                  Event.kind == "person.changed")).one()
        assert change.data["changes"] == {"real_name": {"from": "Dana Kim", "to": "Dana Park"},
                                          "title": {"from": "SRE lead", "to": "Head of SRE"}}


def test_a_user_slack_does_not_know_is_remembered_not_retried(vigil):
    vigil.fake.fail_next("users.info", status=200, error="user_not_found")
    with vigil.db.session() as session:
        sight(session, ["U0GONE"], seen_at=T0)
        look_up_new(session, T0, None)
    vigil.deliver()
    with vigil.db.session() as session:
        person = session.get(Person, "U0GONE")
        assert person.lookup_error == "user_not_found" and not person.known
        assert session.exec(select(OutboxItem).where(OutboxItem.subject == "person:U0GONE")).one().status == "done"
        assert Directory.load(session).label("U0GONE") == "U0GONE (name unknown)"


def test_discovery_does_not_skip_an_event_committed_late(db, settings_for):
    from vigil_ir.eventlog import append

    settings = settings_for(DATABASE_URL=db.url)
    with clock.frozen(T0), db.session() as session:
        append(session, stream="incident:1", kind="x", actor="U0EARLY", data={})
    run_sweep(db, "people.discover", settings, T0 + timedelta(seconds=5))  # not settled: read, the cursor stays
    with clock.frozen(T0 + timedelta(seconds=1)), db.session() as session:
        append(session, stream="incident:1", kind="x", actor="U0LATE", data={"owner": "U0OWNER"})
    run_sweep(db, "people.discover", settings, T0 + timedelta(minutes=10))
    with db.session() as session:
        assert {"U0EARLY", "U0LATE", "U0OWNER"} <= set(session.exec(select(Person.user_id)))
        assert refresh(session, T0 + timedelta(minutes=10), settings) == 0  # nobody answered yet


def _channel(vigil) -> str:
    from vigil_ir.incidents.models import Incident

    with vigil.db.session() as session:
        return session.exec(select(Incident)).one().channel_id


def test_the_timeline_uses_the_directory_time_zone_without_asking_slack(vigil):
    vigil.fake.set_user("U0VIEWER", tz="Asia/Tokyo")
    vigil.declare()
    with vigil.db.session() as session:
        record_profile(session, user_id="U0VIEWER", profile=_profile(tz="Europe/Berlin"))
    from vigil_ir.incidents.models import Incident

    with vigil.db.session() as session:
        channel = session.exec(select(Incident)).one().channel_id
    asked = len(vigil.fake.calls_to("users.info"))
    response = vigil.command("timeline", user="U0VIEWER", channel=channel)
    assert "Europe/Berlin" in response.text and len(vigil.fake.calls_to("users.info")) == asked


def test_a_user_change_event_records_the_change_once_for_people_vigil_knows(vigil):
    with vigil.db.session() as session:
        record_profile(session, user_id="U02LEAD", profile=_profile())
    changed = {"id": "U02LEAD", "name": "dana", "real_name": "Dana Park", "deleted": False, "tz": "Europe/Berlin",
               "profile": {"real_name": "Dana Park", "display_name": "dana", "email": "dana@example.com",
                           "title": "SRE lead"}}
    for retry in (None, 1):  # Slack's retry of the same event changes nothing more
        assert vigil.event({"type": "user_change", "user": changed, "event_ts": "1.000001"},
                           event_id="Ev0CHANGE", retry_num=retry).status_code == 200
    stranger = {**changed, "id": "U0STRANGER"}
    assert vigil.event({"type": "user_change", "user": stranger, "event_ts": "1.000002"}).status_code == 200
    with vigil.db.session() as session:
        change = session.exec(select(Event).where(Event.kind == "person.changed")).one()
        assert change.data["changes"] == {"real_name": {"from": "Dana Kim", "to": "Dana Park"}}
        assert session.get(Person, "U0STRANGER") is None
    assert not vigil.fake.calls_to("users.info")


def test_first_look_ups_are_queued_at_a_bounded_pace(db):
    from vigil_ir.people.sweeps import NEW_BATCH

    with db.session() as session:
        assert len(sight(session, {f"U0P{n:04d}": T0 for n in range(NEW_BATCH * 2 + 50)})) == NEW_BATCH * 2 + 50
    counts = []
    for _ in range(4):
        with db.session() as session:
            counts.append(look_up_new(session, T0, None))
    assert counts == [NEW_BATCH, NEW_BATCH, 50, 0]
