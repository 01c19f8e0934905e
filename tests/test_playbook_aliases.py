"""YAML aliases that fan out ("billion laughs") are refused by lint and at start-up, with file and line."""

from __future__ import annotations

import shutil
import sys

from click.testing import CliRunner

from vigil_ir.cli import main
from vigil_ir.playbooks.loader import MAX_EXPANDED, PlaybookError, load_library
from tests.conftest import PLAYBOOK_FIXTURES


def laughs(levels: int = 9) -> str:
    """A few hundred bytes whose aliases name 9**levels values."""
    lines = ["id: laughs", "title: Laughs", "version: 1", "description: d",
             "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, levels)]
    return "\n".join(lines + ["phases: []", ""])


def calls_during(function, *args) -> int:
    """Python and C calls made: a measure of work that does not depend on how busy the machine is."""
    made = 0

    def profile(frame, event, arg):
        nonlocal made
        made += 1

    sys.setprofile(profile)
    try:
        return_value = function(*args)
    finally:
        sys.setprofile(None)
    return made, return_value


def test_lint_refuses_alias_fan_out_naming_file_and_line(tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text(laughs())
    result = CliRunner().invoke(main, ["playbooks", "lint", str(path)])
    assert result.exit_code != 0 and f"{path}:" in result.output, result.output
    assert f"aliases expand to more than {MAX_EXPANDED:,} values" in result.output
    assert f"{path}:9:" in result.output  # line 9, a4, is where the total passes the budget (9**5 > 20,000)
    # Refused after one pass over the events, not after walking millions of values.
    made, _ = calls_during(CliRunner().invoke, main, ["playbooks", "lint", str(path)])
    assert made < 2_000_000


def test_start_up_refuses_the_library(tmp_path):
    for fixture in PLAYBOOK_FIXTURES.glob("*.yaml"):
        shutil.copy(fixture, tmp_path / fixture.name)
    (tmp_path / "laughs.yaml").write_text(laughs())
    try:
        load_library(tmp_path)
    except PlaybookError as invalid:
        assert [(e.file.endswith("laughs.yaml"), e.line, "aliases expand" in e.message)
                for e in invalid.errors] == [(True, 9, True)]
    else:
        raise AssertionError("the library was loaded")


def test_a_few_aliases_are_still_fine(tmp_path):
    text = (PLAYBOOK_FIXTURES / "generic.yaml").read_text() + "\nx-shared: &shared [a, b]\nx-again: *shared\n"
    path = tmp_path / "generic.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["playbooks", "lint", str(path)])
    assert "aliases expand" not in result.output
