"""Private incidents through signed requests to the real app, on both databases: a private channel
with a neutral name, a redacted (or no) feed line, access grants as events, and the title never
said to anyone outside the channel."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from vigil_ir.eventlog import events_for_stream
from vigil_ir.incidents.models import Incident, IncidentAccess
from tests import slack_requests as sr

DECLARER, LEAD, COMMANDER, ADMIN = "U0DECLARER", "U0LEAD", "U0CMD", "U0ADMIN"
SEC1, SEC2, OUTSIDER, GUEST = "U0SECA", "U0SECB", "U0OUTSIDER", "U0GUEST"
TITLE = "Customer DB exfiltration via stolen admin key"


def build(db, fake_slack, settings_for, **overrides):
    from vigil_ir.runtime import build_runtime
    from tests.conftest import VigilHarness

    fake_slack.set_usergroup("S0CMD", "incident-commanders", [COMMANDER])
    fake_slack.set_usergroup("S0SEC", "security", [SEC1, SEC2])
    settings = settings_for(DATABASE_URL=db.url, VIGIL_COMMANDERS="@incident-commanders",
                            VIGIL_SECURITY_GROUP="@security", **overrides)
    return VigilHarness(build_runtime(settings, db), fake_slack)


@pytest.fixture
def app(db, fake_slack, settings_for):
    harness = build(db, fake_slack, settings_for)
    yield harness
    harness.client.close()


def declare(app, title=TITLE, *, type="availability", severity="sev1", private=False, user=DECLARER) -> Incident:
    assert app.command(f"declare {title}", user=user).status_code == 200
    view = app.last_view("incident_declare")
    values = {"title": sr.input_value("plain_text_input", title), "severity": sr.input_value("static_select", severity),
              "type": sr.input_value("static_select", type)}
    if private:
        values["private"] = sr.input_value("checkboxes", [{"value": "yes"}])
    assert app.submit(view, values, user=user).status_code == 200
    app.deliver()
    with app.db.session() as s:
        return s.exec(select(Incident).order_by(Incident.number.desc())).first()


def events(app, incident):
    with app.db.session() as s:
        return events_for_stream(s, incident.stream)


def grants(app, incident) -> dict[str, str]:
    with app.db.session() as s:
        return {g.user_id: g.via for g in s.exec(select(IncidentAccess).where(IncidentAccess.incident_id == incident.id))}


def said_outside(fake_slack, incident, needle: str, members=()) -> list:
    """Every Slack call carrying `needle` that is not inside the incident's own channel (the declare
    form, typed by the declarer, is theirs; `members`' own App Home is theirs too)."""
    leaks = []
    for call in fake_slack.calls:
        if call.method == "views.open" and call.params.get("view", {}).get("callback_id") == "incident_declare":
            continue
        if call.method == "views.publish" and call.params.get("user_id") in members:
            continue
        if call.params.get("channel") == incident.channel_id:
            continue
        if needle.lower() in json.dumps(call.params, ensure_ascii=False).lower():
            leaks.append((call.method, call.params))
    return leaks


def test_the_form_offers_a_private_box(app):
    assert app.command("declare", user=DECLARER).status_code == 200
    block = next(b for b in app.last_view("incident_declare")["blocks"] if b["block_id"] == "private")
    assert block["element"]["type"] == "checkboxes" and "security" in block["hint"]["text"].lower()


def test_a_private_incident_gets_a_private_channel_with_a_neutral_name(app, fake_slack):
    incident = declare(app, private=True)
    assert incident.private and not incident.security
    (create,) = fake_slack.calls_to("conversations.create")
    assert create.params["name"] == f"inc-{incident.number}" and create.params["is_private"] in (True, "true", "1")
    assert fake_slack.channels[incident.channel_id]["is_private"] is True
    assert incident.channel_name == f"inc-{incident.number}"
    invited = {c.params["users"] for c in fake_slack.calls_to("conversations.invite")}
    assert invited == {DECLARER, SEC1, SEC2}
    # The summary inside the channel carries the title; nothing outside it does.
    summary = next(c for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == incident.channel_id)
    assert TITLE in json.dumps(summary.params)
    assert said_outside(fake_slack, incident, TITLE) == []
    assert said_outside(fake_slack, incident, "exfiltration") == []
    declared = events(app, incident)[0]
    assert declared.kind == "incident.declared" and declared.data["private"] is True
    granted = [e for e in events(app, incident) if e.kind == "incident.access_granted"]
    assert [(e.actor, e.data["user"], e.data["via"]) for e in granted] == [
        (DECLARER, DECLARER, "declared"), ("system:worker", SEC1, "security_group"),
        ("system:worker", SEC2, "security_group")]
    assert grants(app, incident) == {DECLARER: "declared", SEC1: "security_group", SEC2: "security_group"}


def test_the_feed_gets_a_redacted_line(app, fake_slack):
    incident = declare(app, private=True)
    (feed,) = [c for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == "C0FEED"]
    assert feed.params["text"] == f":lock: {incident.key} (private) declared, sev1"
    assert "(private) declared, sev1" in json.dumps(feed.params["blocks"])
    # Later changes told in the feed stay redacted, and so does the refreshed announcement.
    assert app.command("severity sev2", channel=incident.channel_id, user=ADMIN).status_code == 200
    assert app.command("resolve", channel=incident.channel_id, user=DECLARER).status_code == 200
    app.deliver()
    feed_posts = [c for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == "C0FEED"]
    assert [c.params["text"] for c in feed_posts[1:]] == [f":lock: {incident.key} (private) is investigating, sev2",
                                                          f":lock: {incident.key} (private) is resolved, sev2"]
    updates = [c for c in fake_slack.calls_to("chat.update") if c.params["channel"] == "C0FEED"]
    assert updates and all("(private)" in c.params["text"] for c in updates)
    assert said_outside(fake_slack, incident, TITLE) == []


def test_feed_none_says_nothing_of_a_private_incident(db, fake_slack, settings_for):
    app = build(db, fake_slack, settings_for, VIGIL_PRIVATE_FEED="none")
    try:
        incident = declare(app, private=True)
        app.command("resolve", channel=incident.channel_id, user=DECLARER)
        app.deliver()
        assert [c for c in fake_slack.calls if c.params.get("channel") == "C0FEED"] == []
        assert incident.feed_ts is None
        public = declare(app, "Checkout slow")  # a public incident is still announced
        assert public.feed_ts and not public.private
    finally:
        app.client.close()


def test_security_incidents_are_private_by_default(app, fake_slack):
    incident = declare(app, type="security")
    assert incident.private and incident.security
    assert fake_slack.calls_to("conversations.create")[0].params["name"] == f"inc-{incident.number}"
    public = declare(app, "Checkout slow")
    assert not public.private
    assert fake_slack.calls_to("conversations.create")[1].params["name"] == f"inc-{public.number}-checkout-slow"


def test_private_types_are_configurable(db, fake_slack, settings_for):
    app = build(db, fake_slack, settings_for, VIGIL_PRIVATE_INCIDENT_TYPES="data_privacy")
    try:
        assert declare(app, "Leaked export", type="data_privacy").private
        assert not declare(app, "Port scan", type="security").private
    finally:
        app.client.close()


def test_the_state_fold_covers_private(app):
    from vigil_ir.incidents.fold import check_incidents

    incident = declare(app, private=True)
    with app.db.session() as s:
        assert check_incidents(s) == []
        row = s.get(Incident, incident.id)
        row.private = False
        s.add(row)
    with app.db.session() as s:
        (mismatch,) = check_incidents(s)
    assert (mismatch.field, mismatch.expected, mismatch.found) == ("private", True, False)


def test_a_missing_private_channel_scope_is_a_dead_letter_naming_it(app, fake_slack):
    from tests.test_outbox_dead_letters import deliver_rounds, setup_item
    from vigil_ir.outbox.sender import DEAD_AFTER_ATTEMPTS

    fake_slack.fail_always("conversations.create", status=200, error="missing_scope", needed="groups:write")
    assert app.command(f"declare {TITLE}", user=DECLARER).status_code == 200
    view = app.last_view("incident_declare")
    assert app.submit(view, {"title": sr.input_value("plain_text_input", TITLE),
                             "severity": sr.input_value("static_select", "sev1"),
                             "type": sr.input_value("static_select", "security")}, user=DECLARER).status_code == 200
    deliver_rounds(app, DEAD_AFTER_ATTEMPTS + 2)
    item = setup_item(app.db)
    assert item.status == "dead" and len(fake_slack.calls_to("conversations.create")) == 1  # never retried
    assert "missing_scope" in item.last_error and "groups:write" in item.last_error
    assert all(c.params["is_private"] in (True, "true", "1") for c in fake_slack.calls_to("conversations.create"))


# ---- who sees a private incident outside its channel --------------------------------------------
def listing(app, user) -> str:
    """The open-incident list a subcommand used outside an incident channel answers with."""
    response = app.command("status resolved", channel="C0GENERAL", user=user)
    assert response.status_code == 200 and "not one" in response.text
    return response.text


def home(app, fake_slack, user) -> str:
    assert app.event({"type": "app_home_opened", "user": user, "tab": "home"}).status_code == 200
    app.deliver()
    views = [c.params["view"] for c in fake_slack.calls_to("views.publish") if c.params["user_id"] == user]
    return json.dumps(views[-1])


def with_action(app, incident) -> None:
    text = f"action <@{OUTSIDER}> 2099-01-01 Rotate the admin key for the exfiltration host"
    assert "ACT-" in app.command(text, channel=incident.channel_id, user=DECLARER).text
    app.deliver()


def test_non_members_see_nothing_of_it_members_and_commanders_see_all(app, fake_slack):
    incident = declare(app, private=True)
    public = declare(app, "Checkout slow")
    with_action(app, incident)
    for user in (OUTSIDER, GUEST):
        text = listing(app, user)
        assert public.key in text and incident.key not in text and TITLE not in text
        assert TITLE not in home(app, fake_slack, user) and incident.key not in home(app, fake_slack, user)
        refused = app.command(f"actions {incident.key}", channel="C0GENERAL", user=user).text
        assert TITLE not in refused and "Rotate" not in refused
        assert refused.startswith(":no_entry: Only a member of the incident, a commander (@incident-commanders) or an "
                                  "admin (<@U0ADMIN>) may see this private incident.")
        assert "Rotate" not in app.command("actions open", channel="C0GENERAL", user=user).text
    for user in (DECLARER, SEC1, COMMANDER, ADMIN):  # members, a commander (through the group), an admin
        text = listing(app, user)
        assert f"{incident.key} :lock: private {TITLE}" in text and public.key in text
        assert "Rotate the admin key" in app.command(f"actions {incident.key}", user=user).text
        assert "Rotate the admin key" in app.command("actions open", user=user).text
    for user in (DECLARER, SEC1):  # the App Home lists what one is a member of
        assert TITLE in home(app, fake_slack, user)
    assert said_outside(fake_slack, incident, TITLE, members=(DECLARER, SEC1)) == []


def test_the_lead_invites_and_the_grant_is_an_event(app, fake_slack):
    incident = declare(app, private=True)
    assert "now" in app.command(f"lead <@{LEAD}>", channel=incident.channel_id, user=DECLARER).text
    app.deliver()
    assert grants(app, incident)[LEAD] == "role"
    assert TITLE in listing(app, LEAD)
    assert incident.key not in listing(app, GUEST)

    reply = app.command(f"invite <@{GUEST}|guest>", channel=incident.channel_id, user=LEAD).text
    assert reply == f"<@{GUEST}> now has access to {incident.key} and is invited to this channel."
    app.deliver()
    (granted,) = [e for e in events(app, incident) if e.kind == "incident.access_granted" and e.data["user"] == GUEST]
    assert (granted.actor, granted.data["via"]) == (LEAD, "invite")
    assert grants(app, incident)[GUEST] == "invite"
    invites = [c.params for c in fake_slack.ok_calls("conversations.invite") if c.params["users"] == GUEST]
    assert invites == [{"channel": incident.channel_id, "users": GUEST}]
    assert TITLE in listing(app, GUEST)
    # Inviting again grants nothing new.
    before = len(events(app, incident))
    assert "already has access" in app.command(f"invite <@{GUEST}>", channel=incident.channel_id, user=LEAD).text
    assert len(events(app, incident)) == before


def test_an_invite_by_anyone_but_the_lead_is_refused_and_writes_nothing(app, fake_slack):
    from tests.fuzzing import changed, row_counts

    incident = declare(app, private=True)
    app.command(f"lead <@{LEAD}>", channel=incident.channel_id, user=DECLARER)
    app.deliver()
    before, invites = row_counts(app.db), len(fake_slack.calls_to("conversations.invite"))
    reply = app.command(f"invite <@{GUEST}>", channel=incident.channel_id, user=SEC1).text
    assert reply == (":no_entry: Only the incident lead (<@U0LEAD>), a commander (@incident-commanders) or an admin "
                     "(<@U0ADMIN>) may invite people to this private incident.")
    assert changed(before, row_counts(app.db)) == {}
    app.deliver()
    assert len(fake_slack.calls_to("conversations.invite")) == invites and GUEST not in grants(app, incident)
    # A commander may.
    assert "now has access" in app.command(f"invite <@{GUEST}>", channel=incident.channel_id, user=COMMANDER).text


def test_a_reminder_to_a_non_member_does_not_carry_the_title(app, fake_slack):
    from datetime import timedelta

    from vigil_ir import clock

    incident = declare(app, private=True)
    due = (clock.now() + timedelta(days=2)).date().isoformat()
    reply = app.command(f"action <@{OUTSIDER}> {due} Rotate keys", channel=incident.channel_id, user=DECLARER)
    assert "ACT-" in reply.text
    app.deliver()
    app.sweep(clock.now() + timedelta(days=4))
    app.deliver()
    dms = [c.params for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == OUTSIDER]
    assert len(dms) == 2 and "overdue" in dms[-1]["text"] and incident.key in dms[-1]["text"]  # assigned, then reminded
    assert said_outside(fake_slack, incident, TITLE) == []


def test_population_timeline_and_bundle_keep_it_marked_private(app, tmp_path):
    import csv
    import io
    import zipfile
    from datetime import timedelta

    from vigil_ir import clock
    from vigil_ir.exports.bundle.export import export_bundle
    from vigil_ir.exports.population import incident_population
    from vigil_ir.exports.timeline import load_timeline

    incident = declare(app, private=True)
    public = declare(app, "Checkout slow")
    start, end = clock.now() - timedelta(days=1), clock.now() + timedelta(days=1)
    with app.db.session() as s:
        rows = {row["key"]: row for row in incident_population(s, start, end)}
        packet = json.loads(load_timeline(s, s.get(Incident, incident.id)).render("json"))
    assert (rows[incident.key]["private"], rows[incident.key]["title"]) == (True, TITLE)
    assert rows[public.key]["private"] is False
    assert packet["incident"]["private"] is True
    export_bundle(app.db, start=start, end=end, output=tmp_path / "b.zip", actor="cli:auditor")
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        listed = json.loads(archive.read("incidents.json"))
        table = list(csv.DictReader(io.StringIO(archive.read("incidents.csv").decode("utf-8-sig"))))
    assert {(r["key"], r["private"]) for r in listed} == {(incident.key, True), (public.key, False)}
    assert {(r["key"], r["private"]) for r in table} == {(incident.key, "true"), (public.key, "false")}


def test_incident_list_shows_what_each_person_may_see(app):
    incident = declare(app, private=True)
    public = declare(app, "Checkout slow")
    outsider = app.command("list", channel="C0GENERAL", user=OUTSIDER).text
    assert public.key in outsider and incident.key not in outsider and TITLE not in outsider
    for user in (DECLARER, COMMANDER, ADMIN):
        text = app.command("list", channel="C0GENERAL", user=user).text
        assert f"{incident.key} :lock: private {TITLE}" in text and public.key in text


def test_joining_the_channel_by_slacks_own_invite_is_a_grant_by_the_inviter(app):
    incident = declare(app, private=True)
    public = declare(app, "Checkout slow")
    joined = {"type": "member_joined_channel", "user": GUEST, "channel": incident.channel_id, "inviter": SEC1,
              "channel_type": "G"}
    assert app.event(joined, event_id="Ev0JOIN1").status_code == 200
    assert app.event(joined, event_id="Ev0JOIN1", retry_num=1).status_code == 200
    assert app.event({**joined, "user": "U0BOT"}, event_id="Ev0JOIN2").status_code == 200  # the bot itself
    assert app.event({**joined, "channel": public.channel_id}, event_id="Ev0JOIN3").status_code == 200
    granted = [e for e in events(app, incident) if e.kind == "incident.access_granted" and e.data["user"] == GUEST]
    assert [(e.actor, e.data["via"]) for e in granted] == [(SEC1, "joined_channel")]
    assert "U0BOT" not in grants(app, incident) and grants(app, public) == {}
    assert TITLE in listing(app, GUEST)


def test_vigil_verify_reports_an_access_row_without_its_grant_event(app):
    from click.testing import CliRunner

    from vigil_ir import clock
    from vigil_ir.cli import main

    incident = declare(app, private=True)
    verify = lambda: CliRunner().invoke(main, ["verify"], obj={"database": app.db})  # noqa: E731
    assert verify().exit_code == 0
    with app.db.session() as s:  # someone gives themselves access behind Vigil's back
        s.add(IncidentAccess(incident_id=incident.id, user_id=OUTSIDER, granted_by=OUTSIDER, granted_at=clock.now(),
                             via="invite"))
    result = verify()
    assert result.exit_code == 1
    assert f"{incident.key}: the state row's access differs from its events" in result.output
    assert OUTSIDER in result.output


# ---- the App Home ----------------------------------------------------------------------------------
def home_sections(app, fake_slack, user) -> tuple[str, str]:
    """(the "Your open incidents" part, the "Other open incidents" part) of the user's App Home."""
    text = home(app, fake_slack, user)
    blocks = json.loads(text)["blocks"]
    titles = [b["text"]["text"] if b["type"] == "header" else "" for b in blocks]
    risks = titles.index("Reviews due")
    other = titles.index("Other open incidents") if "Other open incidents" in titles else risks
    return json.dumps(blocks[:other]), json.dumps(blocks[other:risks])


def test_the_app_home_shows_every_open_incident_one_may_see(app, fake_slack):
    incident = declare(app, private=True)
    public = declare(app, "Checkout slow")
    for user in (COMMANDER, ADMIN):  # every open incident, the private one marked
        mine, others = home_sections(app, fake_slack, user)
        assert f"*{incident.key}* :lock: private {TITLE}" in others and public.key in others
    for user in (DECLARER, SEC1):  # members: it is theirs
        mine, others = home_sections(app, fake_slack, user)
        assert f"*{incident.key}* :lock: private {TITLE}" in mine
    for user in (OUTSIDER, GUEST):  # anyone else: the public one only
        mine, others = home_sections(app, fake_slack, user)
        assert public.key in others and incident.key not in mine + others and TITLE not in mine + others
    assert said_outside(fake_slack, incident, TITLE, members=(DECLARER, SEC1, COMMANDER, ADMIN)) == []


# ---- access taken away -----------------------------------------------------------------------------
def revocations(app, incident) -> list:
    return [e for e in events(app, incident) if e.kind == "incident.access_revoked"]


def invited(app, incident, user=GUEST):
    app.command(f"lead <@{LEAD}>", channel=incident.channel_id, user=DECLARER)
    assert "now has access" in app.command(f"invite <@{user}>", channel=incident.channel_id, user=LEAD).text
    app.deliver()


def test_the_lead_removes_someone_and_every_listing_follows(app, fake_slack):
    incident = declare(app, private=True)
    invited(app, incident)
    with_action(app, incident)
    assert TITLE in listing(app, GUEST) and TITLE in home(app, fake_slack, GUEST)

    reply = app.command(f"remove <@{GUEST}|guest>", channel=incident.channel_id, user=LEAD).text
    assert reply == f"<@{GUEST}> no longer has access to {incident.key} and is removed from this channel."
    app.deliver()
    (revoked,) = revocations(app, incident)
    assert (revoked.actor, revoked.data["user"], revoked.data["via"]) == (LEAD, GUEST, "removed")
    assert (revoked.data["granted_by"], revoked.data["granted_via"]) == (LEAD, "invite")
    assert GUEST not in grants(app, incident)
    kicks = [c.params for c in fake_slack.ok_calls("conversations.kick")]
    assert kicks == [{"channel": incident.channel_id, "user": GUEST}]
    # Outside the channel they now see what anyone else sees.
    assert incident.key not in listing(app, GUEST) and incident.key not in app.command("list", user=GUEST).text
    assert incident.key not in home(app, fake_slack, GUEST)  # refreshed by the removal itself
    assert "may see this private incident" in app.command(f"actions {incident.key}", user=GUEST).text
    # Slack's own leave event for the kick records nothing more; removing again neither.
    left = {"type": "member_left_channel", "user": GUEST, "channel": incident.channel_id, "channel_type": "G"}
    assert app.event(left, event_id="Ev0LEFT1").status_code == 200
    assert "has no access" in app.command(f"remove <@{GUEST}>", channel=incident.channel_id, user=LEAD).text
    assert len(revocations(app, incident)) == 1
    # Invited again, they are a member again: a new grant after the revocation.
    assert "now has access" in app.command(f"invite <@{GUEST}>", channel=incident.channel_id, user=LEAD).text
    assert [e.kind for e in events(app, incident) if e.kind.startswith("incident.access_")][-2:] == [
        "incident.access_revoked", "incident.access_granted"]
    assert TITLE in listing(app, GUEST)


def test_a_removal_by_anyone_but_the_lead_is_refused_and_writes_nothing(app, fake_slack):
    from tests.fuzzing import changed, row_counts

    incident = declare(app, private=True)
    invited(app, incident)
    before = row_counts(app.db)
    for user in (SEC1, GUEST, OUTSIDER):
        reply = app.command(f"remove <@{GUEST}>", channel=incident.channel_id, user=user).text
        assert reply == (":no_entry: Only the incident lead (<@U0LEAD>), a commander (@incident-commanders) or an "
                         "admin (<@U0ADMIN>) may remove people from this private incident.")
    assert changed(before, row_counts(app.db)) == {}
    app.deliver()
    assert fake_slack.calls_to("conversations.kick") == [] and GUEST in grants(app, incident)
    # A role holder keeps access until the role is handed over; bad input is a usage line.
    before = row_counts(app.db)
    assert "give the role to someone else first" in app.command(f"remove <@{LEAD}>", channel=incident.channel_id,
                                                                 user=COMMANDER).text
    assert app.command("remove nobody", channel=incident.channel_id, user=LEAD).text == \
        "Usage: `/incident remove @user`"
    assert changed(before, row_counts(app.db)) == {}
    # A commander may.
    assert "no longer has access" in app.command(f"remove <@{GUEST}>", channel=incident.channel_id,
                                                 user=COMMANDER).text


def test_removing_from_a_public_incident_says_there_is_no_access(app):
    from tests.fuzzing import changed, row_counts

    public = declare(app, "Checkout slow")
    before = row_counts(app.db)
    assert "is not private" in app.command(f"remove <@{GUEST}>", channel=public.channel_id, user=DECLARER).text
    assert changed(before, row_counts(app.db)) == {}


def test_leaving_the_channel_takes_access_away(app, fake_slack):
    import time

    incident = declare(app, private=True)
    public = declare(app, "Checkout slow")
    invited(app, incident)
    left = {"type": "member_left_channel", "user": GUEST, "channel": incident.channel_id, "channel_type": "G",
            "event_ts": f"{time.time():.6f}"}
    assert app.event(left, event_id="Ev0LEAVE1").status_code == 200
    assert app.event(left, event_id="Ev0LEAVE1", retry_num=1).status_code == 200  # Slack's retry
    assert app.event({**left, "user": "U0BOT"}, event_id="Ev0LEAVE2").status_code == 200  # the bot itself
    assert app.event({**left, "channel": public.channel_id}, event_id="Ev0LEAVE3").status_code == 200
    (revoked,) = revocations(app, incident)
    assert (revoked.actor, revoked.data["user"], revoked.data["via"]) == (GUEST, GUEST, "left_channel")
    from vigil_ir.exports.describe import describe

    assert describe(revoked).startswith(f"left the private incident's channel, which ended the access of {GUEST} "
                                        f"(granted by {LEAD} (invite) at ")
    assert GUEST not in grants(app, incident) and incident.key not in listing(app, GUEST)
    # Back in through Slack's own invite: a grant again, by the inviter.
    joined = {"type": "member_joined_channel", "user": GUEST, "channel": incident.channel_id, "inviter": SEC1,
              "channel_type": "G", "event_ts": f"{time.time() + 5:.6f}"}
    assert app.event(joined, event_id="Ev0JOIN9").status_code == 200
    assert grants(app, incident)[GUEST] == "joined_channel" and TITLE in listing(app, GUEST)


def test_a_late_leave_or_join_does_not_undo_a_later_decision(app):
    import time

    incident = declare(app, private=True)
    invited(app, incident)
    # Slack delivers (late) a leave from before the lead invited them: the invitation stands.
    stale_leave = {"type": "member_left_channel", "user": GUEST, "channel": incident.channel_id,
                   "channel_type": "G", "event_ts": f"{time.time() - 60:.6f}"}
    assert app.event(stale_leave, event_id="Ev0OLD1").status_code == 200
    assert GUEST in grants(app, incident) and revocations(app, incident) == []
    # The lead removes them; a join from before that, delivered late, does not let them back in.
    app.command(f"remove <@{GUEST}>", channel=incident.channel_id, user=LEAD)
    stale_join = {"type": "member_joined_channel", "user": GUEST, "channel": incident.channel_id, "inviter": LEAD,
                  "channel_type": "G", "event_ts": f"{time.time() - 60:.6f}"}
    assert app.event(stale_join, event_id="Ev0OLD2").status_code == 200
    assert GUEST not in grants(app, incident)


def test_vigil_verify_folds_revocations(app):
    from click.testing import CliRunner
    from sqlalchemy import delete

    from vigil_ir import clock
    from vigil_ir.cli import main

    incident = declare(app, private=True)
    invited(app, incident)
    app.command(f"remove <@{GUEST}>", channel=incident.channel_id, user=LEAD)
    verify = lambda: CliRunner().invoke(main, ["verify"], obj={"database": app.db})  # noqa: E731
    assert verify().exit_code == 0, verify().output
    with app.db.session() as s:  # the removed guest put back behind Vigil's back
        s.add(IncidentAccess(incident_id=incident.id, user_id=GUEST, granted_by=GUEST, granted_at=clock.now(),
                             via="invite"))
    result = verify()
    assert result.exit_code == 1 and f"{incident.key}: the state row's access differs" in result.output
    assert GUEST in result.output
    with app.db.session() as s:  # and instead someone's access deleted unrecorded
        s.execute(delete(IncidentAccess).where(IncidentAccess.user_id.in_([GUEST, SEC1])))
    result = verify()
    assert result.exit_code == 1 and SEC1 in result.output


def test_the_timeline_and_the_bundle_show_grants_and_revocations(app, tmp_path):
    import zipfile
    from datetime import timedelta

    from vigil_ir import clock
    from vigil_ir.exports.bundle.export import export_bundle
    from vigil_ir.exports.timeline import load_timeline

    incident = declare(app, private=True)
    invited(app, incident)
    app.command(f"remove <@{GUEST}>", channel=incident.channel_id, user=LEAD)
    named = {user: f"{user} (name unknown)" for user in (DECLARER, SEC1, LEAD, GUEST)}  # never looked up here
    expected = [f"granted {named[DECLARER]} access to the private incident as its declarer",
                f"granted {named[SEC1]} access to the private incident as a member of the security group @security",
                f"granted {named[LEAD]} access to the private incident with the lead role",
                f"granted {named[GUEST]} access to the private incident by invitation",
                f"removed {named[GUEST]} from the private incident, ending their access (granted by {named[LEAD]} "
                "(invite) at "]
    with app.db.session() as s:
        markdown = load_timeline(s, s.get(Incident, incident.id)).render("md")
    for sentence in expected:
        assert sentence in markdown, sentence
    start, end = clock.now() - timedelta(days=1), clock.now() + timedelta(days=1)
    export_bundle(app.db, start=start, end=end, output=tmp_path / "b.zip", actor="cli:auditor")
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        packet = archive.read(f"incidents/{incident.key}/{incident.key}.html").decode("utf-8")
    for sentence in expected:
        assert sentence in packet, sentence
