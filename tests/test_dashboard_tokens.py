"""`vigil auditor-token create|list|revoke` and the token service underneath."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.auth import tokens
from vigil_ir.auth.models import AuditorToken
from vigil_ir.cli import main
from vigil_ir.eventlog import Event
from vigil_ir.people import Profile, record_profile


def run(db, *args):
    return CliRunner().invoke(main, list(args), obj={"database": db})


def test_create_prints_the_token_once_and_stores_only_its_hash(db):
    with db.session() as s:
        record_profile(s, user_id="U0ADMIN", profile=Profile(real_name="Ada Admin"))
    result = run(db, "auditor-token", "create", "--name", "Acme Audit LLP", "--expires", "30d", "--actor", "U0ADMIN")
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("vigil_at_") and len(secret) > 40
    assert "not shown again" in result.stderr
    with db.session() as s:
        (row,) = s.exec(select(AuditorToken)).all()
        (event,) = s.exec(select(Event).where(Event.kind == "audit.token_created")).all()
    assert row.token_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(row.model_dump()) and secret not in str(event.data)
    assert timedelta(days=29, hours=23) < clock.to_utc(row.expires_at) - clock.now() <= timedelta(days=30)
    assert event.stream == "audit" and event.actor == "U0ADMIN" and event.data["name"] == "Acme Audit LLP"
    listing = run(db, "auditor-token", "list")
    assert listing.exit_code == 0 and "1\tactive\tAcme Audit LLP" in listing.stdout
    assert secret not in listing.output


def test_expiry_can_be_a_date_and_bad_values_are_refused(db):
    last_day = clock.now().date() + timedelta(days=400)
    result = run(db, "auditor-token", "create", "--name", "Acme", "--expires", last_day.isoformat())
    assert result.exit_code == 0, result.output
    with db.session() as s:
        assert clock.to_utc(s.exec(select(AuditorToken)).one().expires_at) == datetime.combine(
            last_day + timedelta(days=1), datetime.min.time(), timezone.utc)
    for bad in ("30", "1w", "2001-01-01", "2999-12-31"):  # more than the longest duration (3650d) is refused
        result = run(db, "auditor-token", "create", "--name", "Acme", "--expires", bad)
        assert result.exit_code != 0 and ("--expires" in result.output or "future" in result.output), bad
    assert run(db, "auditor-token", "create", "--name", "  ").exit_code == 1


def test_revoke_is_recorded_once_and_unknown_ids_are_errors(db):
    with db.session() as s:
        record_profile(s, user_id="U0ADMIN", profile=Profile(real_name="Ada Admin"))
    run(db, "auditor-token", "create", "--name", "Acme")
    unknown = run(db, "auditor-token", "revoke", "1", "--by", "U0NOBODY")
    assert unknown.exit_code == 2 and "'U0NOBODY' is not a person in Vigil's directory" in unknown.output
    result = run(db, "auditor-token", "revoke", "1", "--actor", "U0ADMIN")
    assert result.exit_code == 0 and "Revoked auditor token 1 (Acme)" in result.output
    again = run(db, "auditor-token", "revoke", "1")
    assert again.exit_code == 1 and "already revoked" in again.output
    assert run(db, "auditor-token", "revoke", "7").exit_code == 1
    assert "1\trevoked\tAcme" in run(db, "auditor-token", "list").stdout
    with db.session() as s:
        revoked = s.exec(select(Event).where(Event.kind == "audit.token_revoked")).all()
    assert [(e.actor, e.data) for e in revoked] == [("U0ADMIN", {"token_id": 1, "name": "Acme"})]


def test_sign_in_checks_state_and_records_it(db):
    with db.session() as s:
        new = tokens.create(s, name="Acme", expires_at=clock.now() + timedelta(hours=1), actor="cli:x")
    with db.session() as s:
        assert tokens.sign_in(s, f"  {new.secret}\n").id == new.token.id  # pasted with white space
    with clock.frozen(clock.now() + timedelta(hours=2)), db.session() as s, pytest.raises(tokens.TokenRefused) as refused:
        tokens.sign_in(s, new.secret)
    assert refused.value.reason == "expired"
    with db.session() as s:
        tokens.revoke(s, token_id=new.token.id, actor="cli:x")
    with db.session() as s, pytest.raises(tokens.TokenRefused) as refused:
        tokens.check(s, token_id=new.token.id)
    assert refused.value.reason == "revoked"


def test_empty_list_says_how_to_create_one(db):
    result = run(db, "auditor-token", "list")
    assert result.exit_code == 0 and "vigil auditor-token create" in result.output
