"""The permissions policy on its own: rules, refusals that name who may, settings, and user groups
resolved through Slack's usergroups API (the fake Web API), cached, with membership changes recorded."""

from __future__ import annotations

import pytest
from sqlmodel import select

from vigil_ir.eventlog.models import Event
from vigil_ir.permissions import Action, Actor, PolicyError, build_permissions, decide
from vigil_ir.permissions.groups import GroupDirectory
from vigil_ir.permissions.policy import DEFAULT_RULES, build_policy
from vigil_ir.slack.app import make_inline_client


def policy(**roles):
    configured = {"admins": "U0ADMIN", "commanders": "@incident-commanders"}
    configured.update(roles)
    return build_policy(configured=configured, close_approval="sev1,sev2,security")


def test_every_action_has_a_rule_and_admins_and_commanders_may_do_anything():
    assert set(DEFAULT_RULES) == set(Action)
    p = policy()
    for action in Action:
        assert decide(p, action, Actor("U0ADMIN", roles=frozenset({"admins"}))).allowed, action
        assert decide(p, action, Actor("U0CMD", roles=frozenset({"commanders"}))).allowed, action


def test_a_refusal_names_who_may_instead():
    p = policy()
    refused = decide(p, Action.SEVERITY_DOWN, Actor("U0OTHER"), lead="U0LEAD")
    assert not refused
    assert refused.message == ("Only the incident lead (<@U0LEAD>), a commander (@incident-commanders) or an "
                               "admin (<@U0ADMIN>) may downgrade severity.")
    assert decide(p, Action.SEVERITY_DOWN, Actor("U0LEAD"), lead="U0LEAD").allowed
    assert decide(p, Action.SEVERITY_UP, Actor("U0OTHER"), lead="U0LEAD").allowed


def test_a_role_nobody_holds_says_which_variable_sets_it():
    p = build_policy(configured={})
    message = decide(p, Action.VIEW_REGISTER, Actor("U0OTHER")).message
    assert "a register viewer (none is set: VIGIL_REGISTER_VIEWERS)" in message
    assert "an admin (none is set: VIGIL_ADMINS)" in message


def test_a_record_role_held_by_several_people():
    p = policy()
    members = frozenset({"U0A", "U0B"})
    assert decide(p, Action.VIEW_PRIVATE_INCIDENT, Actor("U0A"), member=members).allowed
    refused = decide(p, Action.VIEW_PRIVATE_INCIDENT, Actor("U0C"), member=members)
    assert refused.message == ("Only a member of the incident, a commander (@incident-commanders) or an admin "
                               "(<@U0ADMIN>) may see this private incident.")


def test_the_excluded_person_is_refused_whatever_their_roles():
    p = policy()
    admin = Actor("U0ADMIN", roles=frozenset({"admins"}))
    decision = decide(p, Action.APPROVE_CLOSE, admin, excluded="U0ADMIN",
                      excluded_reason="You asked to close it, so someone else must approve.")
    assert not decision and decision.message.startswith("You asked to close it, so someone else must approve.")
    assert "other than <@U0ADMIN>" in decision.message


def test_overrides_and_bad_settings():
    p = build_policy(configured={"admins": "U0ADMIN"}, overrides="resolve=anyone; declare=@responders,U0ONE")
    assert decide(p, Action.RESOLVE, Actor("U0X")).allowed
    assert not decide(p, Action.DECLARE, Actor("U0X")).allowed
    assert decide(p, Action.DECLARE, Actor("U0ONE", subjects=frozenset({"U0ONE"}))).allowed
    assert decide(p, Action.DECLARE, Actor("U0Y", subjects=frozenset({"@responders"}))).allowed
    with pytest.raises(PolicyError, match="`fly` is not an action"):
        build_policy(configured={}, overrides="fly=anyone")
    with pytest.raises(PolicyError, match="VIGIL_COMMANDERS: `bob` is not a Slack user id"):
        build_policy(configured={"commanders": "bob"})
    with pytest.raises(PolicyError, match="VIGIL_CLOSE_APPROVAL"):
        build_policy(configured={}, close_approval="sev9")
    # A mention pasted from Slack is read as the id it carries.
    assert build_policy(configured={"admins": "<@U0ADM|ann>, <!subteam^S0SEC|@security>"}).configured["admins"] \
        == ("U0ADM", "S0SEC")


def test_second_person_is_decided_from_the_worst_severity_and_the_security_flag():
    p = policy()
    assert p.needs_second_person(severity_reached="sev1", security=False)
    assert p.needs_second_person(severity_reached="sev4", security=True)
    assert not p.needs_second_person(severity_reached="sev3", security=False)
    off = build_policy(configured={}, close_approval="none")
    assert not off.needs_second_person(severity_reached="sev1", security=True)


def test_settings_are_read_and_a_bad_one_stops_start_up(settings_for, db):
    from vigil_ir.config import Settings
    from vigil_ir.runtime import build_runtime

    assert Settings(_env_file=None).close_approval == "sev1,sev2,security"

    with pytest.raises(ValueError, match="VIGIL_PERMISSIONS"):
        build_runtime(settings_for(DATABASE_URL=db.url, VIGIL_PERMISSIONS="close=nobody-at-all"), db)


def test_groups_resolve_through_slack_by_id_and_handle(db, fake_slack, settings_for):
    fake_slack.set_usergroup("S0CMD", "incident-commanders", ["U0CMD"])
    fake_slack.set_usergroup("S0SEC", "security", ["U0SEC", "U0CMD"])
    settings = settings_for(DATABASE_URL=db.url, VIGIL_COMMANDERS="@incident-commanders",
                            VIGIL_RISK_APPROVERS="S0SEC")
    permissions = build_permissions(settings, client=make_inline_client(settings), database=db)

    commander = permissions.actor("U0CMD")
    assert commander.roles == {"commanders", "risk_approvers"}
    assert permissions.allows(Action.REPLACE_LEAD, commander, lead="U0LEAD")
    assert permissions.actor("U0SEC").roles == {"risk_approvers"}
    assert not permissions.allows(Action.REPLACE_LEAD, "U0NOBODY", lead="U0LEAD")
    assert permissions.members("risk_approvers") == {"U0SEC", "U0CMD"}
    assert permissions.holders_of(Action.APPROVE_CLOSE) == {"U0CMD", "U0ADMIN"}
    asked = [c.params for c in fake_slack.calls_to("usergroups.users.list")]
    assert {p["usergroup"] for p in asked} == {"S0CMD", "S0SEC"}
    assert len(asked) == 2, "members are cached between decisions"
    assert len(fake_slack.calls_to("usergroups.list")) == 1


def test_membership_changes_seen_are_recorded_once(db, fake_slack, settings_for):
    fake_slack.set_usergroup("S0CMD", "incident-commanders", ["U0CMD"])
    settings = settings_for(DATABASE_URL=db.url, VIGIL_COMMANDERS="S0CMD", VIGIL_GROUP_CACHE_SECONDS=0)
    first = build_permissions(settings, client=make_inline_client(settings), database=db)
    second = build_permissions(settings, client=make_inline_client(settings), database=db)  # another process
    assert first.actor("U0CMD").roles == {"commanders"}
    assert second.actor("U0CMD").roles == {"commanders"}
    fake_slack.set_usergroup("S0CMD", "incident-commanders", ["U0NEW"])
    assert first.actor("U0CMD").roles == frozenset()
    assert second.actor("U0NEW").roles == {"commanders"}
    with db.session() as s:
        changes = [e.data for e in s.exec(select(Event).where(Event.kind == "permissions.group_members_changed")
                                          .order_by(Event.id))]
    assert [(c["added"], c["removed"], c["first_seen"]) for c in changes] == [
        (["U0CMD"], [], True), (["U0NEW"], ["U0CMD"], False)]


def test_slack_down_keeps_the_last_known_members_and_unknown_groups_count_as_empty():
    answers = {"S0CMD": ["U0CMD"]}
    clock = [0.0]

    def members_of(group):
        if group not in answers:
            raise OSError("Slack is down")
        return answers[group]

    directory = GroupDirectory(members_of=members_of, list_groups=lambda: [], ttl_seconds=10,
                               monotonic=lambda: clock[0])
    assert directory.members("S0CMD") == {"U0CMD"}
    answers.clear()
    clock[0] = 60
    assert directory.members("S0CMD") == {"U0CMD"}, "stale members beat locking everyone out"
    assert directory.members("S0OTHER") == frozenset()
    assert directory.members("@unknown") == frozenset()


def test_the_policy_in_force_is_recorded_once_per_distinct_policy(vigil):
    db = vigil.db
    assert vigil.sweep()["permissions.policy_in_force"] == 1
    assert vigil.sweep()["permissions.policy_in_force"] == 0
    with db.session() as s:
        recorded = s.exec(select(Event).where(Event.kind == "permissions.policy_in_force")).one()
    assert recorded.stream == "audit" and recorded.data["rules"]["severity_down"] == ["lead", "commanders", "admins"]
    assert recorded.data["roles"]["admins"] == ["U0ADMIN"]


def test_a_refused_group_look_up_is_not_repeated_by_every_request_and_names_the_scope(db, fake_slack, settings_for,
                                                                                         caplog):
    """Slack answers `missing_scope` (usergroups:read not granted): the group counts as empty (a refusal,
    never a grant), the error names the scope once, and requests do not each ask Slack again until the
    cache's time is up."""
    import logging

    from vigil_ir.runtime import build_runtime
    from tests.conftest import VigilHarness

    fake_slack.fail_always("usergroups.list", status=200, error="missing_scope", needed="usergroups:read")
    fake_slack.fail_always("usergroups.users.list", status=200, error="missing_scope", needed="usergroups:read")
    settings = settings_for(DATABASE_URL=db.url, VIGIL_COMMANDERS="@incident-commanders,S0CMD")
    app = VigilHarness(build_runtime(settings, db), fake_slack)
    try:
        incident = app.declare("Checkout slow", user="U0DECLARER")
        app.command("lead <@U0LEAD>", channel=incident.channel_id, user="U0DECLARER")
        with caplog.at_level(logging.WARNING, logger="vigil_ir.permissions.groups"):
            for _ in range(4):
                refused = app.command("severity sev4", channel=incident.channel_id, user="U0CMD").text
                assert "may downgrade severity" in refused
        assert len(fake_slack.calls_to("usergroups.users.list")) == 1
        assert len(fake_slack.calls_to("usergroups.list")) == 1
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert errors and all("usergroups:read" in r.getMessage() for r in errors)
    finally:
        app.client.close()


def test_a_failed_look_up_is_tried_again_once_the_cache_time_is_up():
    calls, clock = [], [0.0]

    def members_of(group):
        calls.append(group)
        if len(calls) == 1:
            raise OSError("Slack is down")
        return ["U0CMD"]

    directory = GroupDirectory(members_of=members_of, list_groups=lambda: [], ttl_seconds=10,
                               monotonic=lambda: clock[0])
    assert [directory.members("S0CMD") for _ in range(3)] == [frozenset()] * 3 and calls == ["S0CMD"]
    clock[0] = 10
    assert directory.members("S0CMD") == {"U0CMD"} and len(calls) == 2
