"""The artefact users install: the wheel built from this checkout, installed into a fresh venv outside
it, run from an empty folder. Nothing of the checkout is importable there, so a file missing from the
package data (migrations, playbooks, templates, static files) fails here."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def run(argv: list, cwd: Path, env: dict, timeout: float = 600) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """(the venv's bin folder, an environment without the checkout on any path)."""
    base = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "SLACK_", "VIGIL_", "DATABASE_URL", "PIP_REQUIRE"))}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", NO_PROXY="127.0.0.1")
    # Built from a copy of the checkout without setuptools' build/ folder (nor the venv, caches, git):
    # a file left there by an earlier build, such as a migration since renamed, must not reach the wheel.
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        "build", "dist", ".venv", ".git", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "node_modules", "*.db", "*.db-*"))
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", base / "dist", source], base, env)
    (wheel,) = (base / "dist").glob("vigil_ir-*.whl")
    run([sys.executable, "-m", "venv", base / "venv"], base, env)
    bin_dir = base / "venv" / "bin"
    run([bin_dir / "python", "-m", "pip", "install", "--quiet", wheel], base, env)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return bin_dir, env


def test_the_wheel_installs_one_distinctive_package_that_finds_its_own_files(installed, tmp_path):
    bin_dir, env = installed
    where = run([bin_dir / "python", "-c", "import vigil_ir, importlib.util; print(vigil_ir.__file__); "
                 "print(importlib.util.find_spec('bot'))"], tmp_path, env).splitlines()
    assert "site-packages" in where[0] and not where[0].startswith(str(ROOT)), where
    assert where[1] == "None"  # no top-level `bot` package leaks into site-packages
    assert "demo" in run([bin_dir / "vigil", "-h"], tmp_path, env)
    listed = run([bin_dir / "vigil", "playbooks", "list"], tmp_path, env)
    assert "service-outage" in listed and "leaked-credential" in listed


def test_from_an_empty_folder_migrate_serve_demo_export_and_verify(installed, tmp_path):
    bin_dir, env = installed
    vigil = bin_dir / "vigil"
    run([vigil, "migrate"], tmp_path, env)
    assert (tmp_path / "vigil.db").exists()
    bundle = tmp_path / "empty.zip"
    run([vigil, "export", "bundle", "--from", "2026-01-01", "--to", "2026-03-31", "-o", bundle], tmp_path, env)
    assert run([vigil, "verify", "--bundle", bundle], tmp_path, env).startswith("OK")

    (tmp_path / "demo").mkdir()
    demo = run([vigil, "demo"], tmp_path / "demo", env)
    token = next(line for line in demo.splitlines() if line.startswith("vigil_at_"))
    port = free_port()
    server = subprocess.Popen([vigil, "serve", "--port", str(port)], cwd=tmp_path / "demo", env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a hang guard: start-up is waited on, not timed
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "vigil serve did not start"
                time.sleep(0.1)
        with httpx.Client(base_url=base) as client:
            form = client.get("/login").text
            csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            assert client.post("/login", data={"csrf": csrf, "token": token, "next": "/"}).status_code == 303
            page = client.get("/?from=2000-01-01&to=2100-12-31")
            assert page.status_code == 200 and "[Demo] Checkout API returning 500s" in page.text
            css = client.get("/static/dashboard.css")
            assert css.status_code == 200 and css.text.strip()
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "Dashboard at http://127.0.0.1" in output and "Traceback" not in output
