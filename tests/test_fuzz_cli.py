"""Property-based test of the whole `vigil` command line: every command, arbitrary arguments and option
values, against a real (seeded, migrated) SQLite database.

Invariants: never a Python traceback; a command either succeeds or exits non-zero with a message
(`Error: …` or usage) that names the problem. Commands that run until stopped (`serve`, `worker`
without `--once`) are left out; their argument checks are in tests/test_bad_values.py.

SQLite only (see tests/fuzzing.py).
"""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner
from hypothesis import event, given
from hypothesis import strategies as st

from vigil_ir.cli import load_all_commands, main
from tests.dashboard_seed import seed
from tests.fuzzing import fuzz
from tests.fuzzing import sqlite_database_url  # noqa: F401  (fixture `database_url`: SQLite only)

LONG_RUNNING = {("serve",), ("worker",)}


def leaves(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        if isinstance(command, click.Group):
            yield from leaves(command, path)
        elif path not in LONG_RUNNING:
            yield path, command


COMMANDS = dict(leaves(load_all_commands()))
words = st.sampled_from([
    "", " ", "-", "--", "-1", "0", "1", "7", "99999999999999999999999", "-99999999999999999999", "1e9", "NaN", "inf",
    "INC-1", "INC-0", "INC-99999999999999999999999", "inc-1", "RISK-1", "RISK-99999999999999999999", "ACT-1", "RRV-1",
    "2025-01-01", "2025-13-01", "2025-02-30", "9999-12-31", "0001-01-01", "9999-12-31T23:59:59+00:00", "99999d",
    "30d", "-5d", "0d", "12h", "2100-01-01", "today", "csv", "json", "xlsx", "zip", "md", "html", "U0ADMIN", "U0X",
    "<@U0X>", "ops@example.com", "=SUM(A1)", "../../etc/passwd", "\u202e", "é", "x" * 5000, "a,b;c", "'", '"',
    "{{7*7}}", "%s%n", "--help-not", "true", "maybe", "all", "mine"])


@pytest.fixture
def cli(db, tmp_path, monkeypatch):
    seed(db)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's; files land here
    (tmp_path / "garbage.csv").write_bytes(b"\xff\xfe\x00bad;data\n\"unclosed\n")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "link.zip").symlink_to(tmp_path / "garbage.csv")
    (tmp_path / "garbage.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    paths = [str(tmp_path / name) for name in ("garbage.csv", "empty.csv", "a-folder", "link.zip", "garbage.yaml",
                                               "missing/out.zip", "new-file.csv", "a-folder/out.json")]
    env = {"DATABASE_URL": db.url, "SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": "", "SLACK_APP_TOKEN": "",
           "SLACK_API_URL": "http://127.0.0.1:9/api/", "VIGIL_PLAYBOOKS_DIR": "", "VIGIL_AUDIT_CHANNEL": ""}
    return db, paths, env


dates = st.sampled_from(["2025-01-01", "2025-06-30", "2026-03-31", "2025-13-01", "9999-12-31", "0001-01-01",
                         "2100-01-01", "2025-01-01T00:00:00+14:00", "30d", "99999d", "x"])
numbers = st.one_of(st.integers(-2, 50).map(str), st.sampled_from(["99999999999999999999999", "1e3", "x"]))
DATE_NAMES = ("from", "to", "start", "end", "as_of", "expires", "since", "until", "period", "quarter")


def value_for(data, param: click.Parameter, paths: list[str]):
    """Mostly plausible values (so commands get past their argument checks), sometimes garbage."""
    kind, name = param.type, param.name or ""
    if data.draw(st.integers(0, 4), label="garbage") == 0:
        return data.draw(words, label=name)
    if isinstance(kind, (click.Path, click.File)):
        return data.draw(st.sampled_from(paths), label=name)
    if isinstance(kind, click.Choice):
        return data.draw(st.sampled_from(list(kind.choices)), label=name)
    if isinstance(kind, (click.types.IntParamType, click.types.FloatParamType)):
        return data.draw(numbers, label=name)
    if any(part in name for part in DATE_NAMES):
        return data.draw(dates, label=name)
    return data.draw(words, label=name)


def argv_for(data, path: tuple[str, ...], command: click.Command, paths: list[str]) -> list[str]:
    argv = list(path)
    for param in command.params:
        if param.name == "help" or not (param.required or data.draw(st.booleans(), label=f"use {param.name}")):
            if isinstance(param, click.Argument) and param.required and data.draw(st.booleans(), label="keep"):
                argv.append(value_for(data, param, paths))
            continue
        if isinstance(param, click.Argument):
            argv += [value_for(data, param, paths) for _ in range(1 if param.nargs == 1 else data.draw(
                st.integers(1, 2), label="n"))]
        elif param.is_flag:
            argv.append(param.opts[0])
        else:
            argv += [param.opts[-1], value_for(data, param, paths)]
    if data.draw(st.integers(0, 19), label="stray") == 0:
        argv.append(data.draw(words, label="stray word"))
    return argv


@pytest.mark.slow
@fuzz(150)
@given(data=st.data())
def test_every_command_with_arbitrary_arguments_succeeds_or_names_the_problem(cli, data):
    db, paths, env = cli
    path = data.draw(st.sampled_from(sorted(COMMANDS)), label="command")
    argv = argv_for(data, path, COMMANDS[path], paths)
    result = CliRunner().invoke(main, argv, env=env, input="")
    shown = result.output + (result.stderr if result.stderr_bytes is not None else "")
    event(f"{' '.join(path)}: exit {result.exit_code}")
    assert result.exception is None or isinstance(result.exception, SystemExit), (argv, repr(result.exception))
    assert "Traceback" not in shown, (argv, shown[-2000:])
    if result.exit_code != 0:
        message = result.stderr.strip() or result.output.strip()
        assert message, (argv, "a refusal says why")
        assert message.splitlines()[-1].strip(), (argv, message)
