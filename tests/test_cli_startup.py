"""`vigil --help` and `--version` import only click: a command imports what it uses when it runs."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from vigil_ir.cli import LAZY_SUBCOMMANDS, load_all_commands

HEAVY = ("sqlalchemy", "sqlmodel", "alembic", "pydantic", "pydantic_settings", "slack_sdk", "slack_bolt",
         "starlette", "uvicorn", "jinja2", "cryptography", "prometheus_client", "yaml", "vigil_ir.db",
         "vigil_ir.config", "vigil_ir.exports")


def run_fresh(code: str) -> str:
    """Run `code` in a new interpreter (nothing imported yet); its stdout."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["-h"]])
def test_help_and_version_import_nothing_heavy(argv):
    imported = run_fresh(
        "import sys\nfrom vigil_ir.cli import main\n"
        f"try:\n    main({argv!r}, prog_name='vigil')\nexcept SystemExit:\n    pass\n"
        f"print('IMPORTED', sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m.startswith({HEAVY!r})))")
    assert imported.splitlines()[-1] == "IMPORTED []"


def test_the_lazy_command_list_reads_as_the_commands_themselves():
    """`vigil --help` from the table (nothing imported) is what the imported commands would print."""
    lazy = run_fresh("from vigil_ir.cli import main\n"
                     "try:\n    main(['--help'], prog_name='vigil', terminal_width=80)\nexcept SystemExit:\n    pass\n")
    loaded = CliRunner().invoke(load_all_commands(), ["--help"], prog_name="vigil", terminal_width=80)
    assert loaded.exit_code == 0
    assert lazy == loaded.output
    assert set(load_all_commands().commands) >= set(LAZY_SUBCOMMANDS)


@pytest.mark.parametrize("name", sorted(LAZY_SUBCOMMANDS))
def test_each_lazy_entry_names_its_command_and_its_help(name):
    module, attribute, first_paragraph = LAZY_SUBCOMMANDS[name]
    command = getattr(importlib.import_module(module), attribute)
    assert command.name == name and not command.hidden
    stand_in = click.Command(name, help=first_paragraph)
    for limit in (30, 45, 60, 80, 500):
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)


# `vigil export bundle` starts its other processes' server before its own modules are imported, so
# both import at once (vigil_ir.cli.STARTED_EARLY); its --help starts nothing.
_RECORD_STARTS = (
    "import sys\nfrom vigil_ir.exports.bundle import parallel\n"
    "def prepare():\n"
    "    print('STARTED, export code imported:', 'vigil_ir.exports.cli' in sys.modules)\n"
    "parallel.prepare = prepare\n"
    "from vigil_ir.cli import main\n"
    "try:\n    main({argv!r}, prog_name='vigil')\nexcept SystemExit:\n    pass\n")


def test_the_bundle_export_starts_its_processes_before_importing_the_export_code(tmp_path):
    database = tmp_path / "missing" / "vigil.db"  # the command fails later: the start came first
    argv = ["export", "bundle", "--from", "2025-01-01", "--to", "2025-01-31", "-o", str(tmp_path / "b.zip")]
    output = run_fresh(f"import os\nos.environ['DATABASE_URL'] = 'sqlite:///{database}'\n"
                       + _RECORD_STARTS.format(argv=argv))
    assert output.splitlines()[0] == "STARTED, export code imported: False"


@pytest.mark.parametrize("argv", [["export", "bundle", "--help"], ["export", "--help"], ["export", "incidents", "-h"]])
def test_help_starts_no_process(argv):
    assert "STARTED" not in run_fresh(_RECORD_STARTS.format(argv=argv))
