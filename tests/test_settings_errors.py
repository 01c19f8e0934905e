"""A bad environment value ends any command with one line per variable, naming it and what it
accepts, and exit code 2: never a pydantic traceback or a driver's ModuleNotFoundError."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from vigil_ir.cli import main

CASES = [
    ({"VIGIL_LOG_FORMAT": "xml"}, "VIGIL_LOG_FORMAT='xml'", "'json' or 'text'"),
    ({"PORT": "abc"}, "PORT='abc'", "a whole number"),
    ({"PORT": "70000"}, "PORT='70000'", "less than or equal to 65535"),
    ({"VIGIL_SESSION_HOURS": "abc"}, "VIGIL_SESSION_HOURS='abc'", "a number"),
    ({"VIGIL_DASHBOARD_ALLOW_WORKSPACE": "maybe"}, "VIGIL_DASHBOARD_ALLOW_WORKSPACE='maybe'", "true or false"),
    ({"VIGIL_HOLIDAYS": "2025-01-01,2025-13-01"}, "VIGIL_HOLIDAYS=", "'2025-13-01' is not a date"),
    ({"DATABASE_URL": "mysql://user:hunter2@db/vigil"}, "DATABASE_URL:", "SQLite (sqlite:///FILE) or PostgreSQL"),
]


@pytest.mark.parametrize(("env", "names", "accepts"), CASES)
@pytest.mark.parametrize("command", [["migrate"], ["verify"], ["export", "risks", "--format", "json"],
                                     ["worker", "--once"], ["serve"]])
def test_bad_value_names_the_variable_and_exits_2(tmp_path, env, names, accepts, command):
    full = {"DATABASE_URL": f"sqlite:///{tmp_path / 'v.db'}", **env}
    result = CliRunner().invoke(main, command, env=full)
    assert result.exit_code == 2, result.output
    assert f"Error: {names}" in result.output and accepts in result.output
    assert "Traceback" not in result.output and "hunter2" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_every_bad_variable_is_named_at_once(tmp_path):
    result = CliRunner().invoke(main, ["migrate"], env={"DATABASE_URL": f"sqlite:///{tmp_path / 'v.db'}",
                                                        "PORT": "abc", "VIGIL_LOG_FORMAT": "xml"})
    assert result.exit_code == 2
    assert [line.split("=")[0] for line in result.output.splitlines() if line.startswith("Error:")] == \
        ["Error: PORT", "Error: VIGIL_LOG_FORMAT"]


def test_serve_refuses_a_port_out_of_range():
    result = CliRunner().invoke(main, ["serve", "--port", "99999"])
    assert result.exit_code == 2 and "99999 is not in the range" in result.output


def test_serve_names_an_address_it_cannot_listen_on_before_any_start_up_work(tmp_path):
    import socket

    database = tmp_path / "v.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        in_use = CliRunner().invoke(main, ["serve", "--port", str(port)], env={"DATABASE_URL": f"sqlite:///{database}"})
    assert in_use.exit_code == 1, in_use.output
    assert f"Error: Cannot listen on 127.0.0.1:{port}:" in in_use.output and "--port or PORT" in in_use.output
    unknown = CliRunner().invoke(main, ["serve"], env={"DATABASE_URL": f"sqlite:///{database}", "HOST": "host.invalid"})
    assert unknown.exit_code == 1, unknown.output
    assert "Error: Cannot listen on host.invalid:8000: the host does not resolve" in unknown.output
    assert not database.exists()  # refused before migrating or building anything
