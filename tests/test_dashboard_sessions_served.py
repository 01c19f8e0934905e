"""Dashboard sessions through the real HTTP server: `vigil serve` as its own process, browsers as
HTTP clients over loopback. A copied cookie stops working once its session is signed out or revoked
(from the CLI, another process on the same database), and failed sign-ins are throttled."""

from __future__ import annotations

import re

import httpx
import pytest
from click.testing import CliRunner
from sqlmodel import select

from vigil_ir.auth.models import DashboardSession
from vigil_ir.cli import main
from vigil_ir.eventlog import Event
from tests.dashboard_seed import make_token, seed
from tests.test_faults_crash import fake, procs  # noqa: F401  (fixtures: vigil serve as a subprocess)

pytestmark = pytest.mark.slow
# One window longer than any test run, aligned far from today: the throttle's count cannot roll over
# mid-test wherever the wall clock is.
WINDOW_MINUTES = str(10_000_000)


@pytest.fixture
def served(procs, db):
    seed(db)
    procs.env.update({"VIGIL_SESSION_SECRET": "served-test-secret", "VIGIL_SIGN_IN_FAILURE_LIMIT": "3",
                      "VIGIL_SIGN_IN_WINDOW_MINUTES": WINDOW_MINUTES})
    _, base = procs.serve()
    return base


def browser(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, follow_redirects=False, timeout=30)


def sign_in(client: httpx.Client, secret: str) -> httpx.Response:
    form = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    return client.post("/login", data={"csrf": csrf, "token": secret, "next": "/"})


def copy_of(client: httpx.Client, base: str) -> httpx.Client:
    thief = browser(base)
    for cookie in client.cookies.jar:
        thief.cookies.set(cookie.name, cookie.value)
    return thief


def test_signing_out_and_revoking_end_every_copy_of_the_cookie(served, db):
    _, secret = make_token(db)
    with browser(served) as victim, browser(served) as other:
        signed_in = sign_in(victim, secret)
        assert signed_in.status_code == 303
        cookie = signed_in.headers["set-cookie"].lower()
        assert "httponly" in cookie and "; secure" not in cookie  # plain http on loopback: not Secure
        with copy_of(victim, served) as thief:
            assert thief.get("/").status_code == 200  # a copied cookie works while the session lives
            csrf = re.search(r'name="csrf" value="([^"]+)"', victim.get("/").text).group(1)
            assert victim.post("/logout", data={"csrf": csrf}).status_code == 303
            assert thief.get("/").status_code == 303, "signed out on the server: the copy is dead too"

        assert sign_in(other, secret).status_code == 303
        with copy_of(other, served) as thief:
            with db.session() as s:
                live = s.exec(select(DashboardSession).where(DashboardSession.ended_at.is_(None))).one()
            revoked = CliRunner().invoke(main, ["dashboard", "sessions", "revoke", str(live.id)],
                                         obj={"database": db})
            assert revoked.exit_code == 0, revoked.output
            assert thief.get("/").status_code == 303 and other.get("/").status_code == 303
    with db.session() as s:
        kinds = [e.kind for e in s.exec(select(Event).where(Event.stream == "audit").order_by(Event.id))]
    assert {"audit.dashboard_signed_in", "audit.dashboard_signed_out", "audit.dashboard_session_revoked"} <= set(kinds)


def test_failed_sign_ins_are_throttled(served, db):
    _, secret = make_token(db)
    with browser(served) as attacker:
        for n in range(3):
            assert sign_in(attacker, f"vigil_at_guess{n}xxxxxxxxxxxx").status_code == 401
        refused = sign_in(attacker, secret)  # even the right token, from an address over the limit
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert attacker.get("/").status_code == 303
    with db.session() as s:
        failed = [e.data for e in s.exec(select(Event).where(Event.kind == "audit.dashboard_sign_in_failed"))]
    assert any(d.get("address") == "127.0.0.1" and "prefix" not in d for d in failed)
    assert secret not in str(failed)
