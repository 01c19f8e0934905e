"""End to end in headless Chromium: `vigil serve` on SQLite without Slack credentials, sign in with an
auditor token, open an incident, download the evidence bundle, screenshot the timeline.

Needs Debian's `chromium` (scripts/test.sh installs it when it can). Skipped with the reason when it
is missing, except under VIGIL_TEST_BROWSER=1 (set by .ci/run), where a missing browser fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from vigil_ir.db import Database, migrate
from vigil_ir.eventlog import events_for_stream
from tests.cdp import Browser, find_chromium
from tests.dashboard_seed import make_token, seed

CHROMIUM = find_chromium()
if os.environ.get("VIGIL_TEST_BROWSER") == "0":
    pytest.skip("VIGIL_TEST_BROWSER=0", allow_module_level=True)
if CHROMIUM is None:
    reason = "Chromium is not installed (apt-get install chromium, or run scripts/test.sh as root)"
    if os.environ.get("VIGIL_TEST_BROWSER") == "1":
        raise RuntimeError(f"VIGIL_TEST_BROWSER=1 but {reason}")
    pytest.skip(reason, allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """A seeded SQLite file and `vigil serve` on a free loopback port, as `bash scripts/run.sh` starts it."""
    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    migrate(url)
    database = Database(url)
    seed(database)
    _, secret = make_token(database, name="Acme Audit LLP")
    with database.session() as s:
        events = len(events_for_stream(s, "incident:1"))
    database.dispose()
    port = free_port()
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("SLACK_", "VIGIL_")) and name not in ("DATABASE_URL", "HTTP_PROXY", "HTTPS_PROXY",
                                                                         "http_proxy", "https_proxy")}
    env["DATABASE_URL"] = url
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "vigil_ir.cli", "serve", "--port", str(port)], env=env,
                               cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        yield {"base": base, "secret": secret, "events": events, "log": tmp_path / "serve.log"}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def browser(tmp_path):
    started = time.monotonic()
    chromium = Browser(CHROMIUM, tmp_path / "profile")
    yield chromium
    chromium.close()
    print(f"browser test: {time.monotonic() - started:.1f}s with Chromium open")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_sign_in_open_incident_download_bundle_and_screenshot(server, browser, tmp_path):
    base = server["base"]
    page = browser.new_page()

    # An anonymous visitor is sent to sign in and sees no incident data.
    page.goto(f"{base}/incidents/INC-1")
    assert page.url.startswith(f"{base}/login?next=%2Fincidents%2FINC-1")
    assert "Checkout down" not in page.evaluate("document.body.innerText")
    assert "SLACK_CLIENT_ID" in page.evaluate("document.body.innerText")  # says how to turn Slack on

    # Sign in with the auditor token by typing it and clicking the button; back to the incident.
    page.type_into("#token", server["secret"])
    page.click("form.token-form button[type=submit]")
    assert page.url == f"{base}/incidents/INC-1"
    assert page.evaluate("document.querySelector('h1').innerText").startswith("INC-1: Checkout down <script>")
    rows = page.evaluate("[...document.querySelectorAll('#timeline tr.timeline-row')].map(r => r.innerText)")
    assert len(rows) == server["events"] >= 7
    assert "declared INC-1" in rows[0] and any("Rolled back <script>" in row for row in rows)
    assert page.evaluate("document.querySelectorAll('script').length") == 0  # hostile text stayed text
    assert "Write a summary" in page.evaluate("document.querySelector('.checklists').innerText")
    assert page.evaluate("document.querySelector('#timeline').getBoundingClientRect().height") > 100

    # Screenshot: the timeline is on the rendered page, and the picture is not blank.
    folder = Path(os.environ.get("VIGIL_BROWSER_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    shot = page.screenshot(folder / "incident-page.png")
    width, height = png_size(shot)
    assert width == 1280 and height > 900 and shot.stat().st_size > 30_000

    # Download the evidence bundle from the exports page with a real click.
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads),
                                                 "eventsEnabled": True})
    page.goto(f"{base}/exports?from=2025-01-01&to=2025-12-31")
    page.screenshot(folder / "exports-page.png", max_height=1600)
    page.click("#bundle-link", navigates=False)
    began = browser.wait_for("Browser.downloadWillBegin", timeout=60)
    browser.wait_for("Browser.downloadProgress", timeout=120, where=lambda p: p["state"] == "completed")
    assert began["suggestedFilename"] == "evidence-2025-01-01-2025-12-31.zip"
    bundle = downloads / began["suggestedFilename"]
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
    assert "manifest.json" in names and any(name.startswith("incidents/INC-1/") for name in names)

    # Insights: the program review's charts are drawn, and a count leads to the incidents behind it.
    page.goto(f"{base}/insights?from=2025-01-01&to=2025-12-31")
    shot = page.screenshot(folder / "insights-page.png", max_height=2400)
    assert png_size(shot)[0] == 1280 and shot.stat().st_size > 30_000
    assert page.evaluate("document.querySelectorAll('.chart svg').length") == 2
    assert page.evaluate("document.querySelector('.chart svg').getBoundingClientRect().width") > 300
    page.click("#all-incidents")
    assert page.url.startswith(f"{base}/?") and "from=2025-01-01" in page.url
    assert page.evaluate("document.querySelectorAll('tr.incident-row').length") >= 1

    # The auditor's page views were logged (server side) and the session survives; sign out ends it.
    page.goto(f"{base}/risks")
    page.screenshot(folder / "risks-page.png", max_height=1600)
    page.click("form.signout button")
    assert page.url == f"{base}/login?reason=signed_out"
    page.goto(f"{base}/risks")
    assert page.url.startswith(f"{base}/login")
    if os.environ.get("VIGIL_BROWSER_ARTIFACTS"):
        shutil.copy(bundle, folder / bundle.name)
