"""The container files name commands that exist. No container engine runs in CI, so the image itself
is not built here; its build steps are the wheel build and install that tests/test_wheel.py runs."""

from __future__ import annotations

import json
import re
import shlex
import warnings
from pathlib import Path

import click
import pytest
import yaml

from vigil_ir.cli import main

ROOT = Path(__file__).resolve().parents[1]


def remaining(context: click.Context) -> list[str]:
    """The tokens a group left for its subcommand (Click 8.2 deprecates `protected_args`; 9 folds it into `args`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return list(context.protected_args) + list(context.args)


def check_vigil_command(argv: list[str]) -> None:
    """Parse `argv` with the real CLI (without running it): an unknown command or option fails."""
    assert argv[0] == "vigil", argv
    context = main.make_context("vigil", list(argv[1:]))
    while isinstance(context.command, click.Group) and remaining(context):
        name, *rest = remaining(context)
        command = context.command.get_command(context, name)
        assert command is not None, f"no such command: {argv}"
        context = command.make_context(name, rest, parent=context)


def compose_services() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]


@pytest.mark.parametrize("service", [name for name, spec in compose_services().items() if "command" in spec])
def test_compose_commands_exist_in_the_cli(service):
    check_vigil_command(compose_services()[service]["command"])


def test_compose_runs_migrations_once_then_two_web_and_one_worker_on_postgresql():
    services = compose_services()
    commands = {name: spec.get("command", [])[:2] for name, spec in services.items()}
    assert sorted(name for name, command in commands.items() if command == ["vigil", "serve"]) == ["web-1", "web-2"]
    assert [name for name, command in commands.items() if command == ["vigil", "worker"]] == ["worker"]
    assert all("--no-migrate" in services[name]["command"] for name in ("web-1", "web-2"))
    assert services["web-1"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert services["postgres"]["volumes"][0].split(":")[0] in yaml.safe_load((ROOT / "compose.yaml").read_text())["volumes"]


def test_dockerfile_runs_vigil_serve_as_a_non_root_user_with_a_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    check_vigil_command(json.loads(re.search(r"^CMD (\[.*\])$", text, re.MULTILINE).group(1)))
    assert re.search(r"^USER vigil$", text, re.MULTILINE)
    assert "/healthz" in text.split("HEALTHCHECK", 1)[1]
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.MULTILINE):
        *sources, _target = shlex.split(line)
        assert all((ROOT / source).exists() for source in sources), line


def test_an_unknown_command_is_caught_by_the_check():
    with pytest.raises((AssertionError, click.UsageError)):
        check_vigil_command(["vigil", "serve", "--no-such-option"])
    with pytest.raises((AssertionError, click.UsageError)):
        check_vigil_command(["vigil", "wrker"])
