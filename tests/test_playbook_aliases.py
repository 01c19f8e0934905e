"""A playbook whose YAML aliases fan out (a few hundred bytes standing for millions of values) is
refused by lint and at start-up with its file and line, before anything expands it."""

from __future__ import annotations

from click.testing import CliRunner

from vigil_ir.cli import main
from vigil_ir.playbooks.loader import PlaybookError, load_library

LAUGHS = "\n".join(["id: laughs", "title: Laughs", "version: 1.0.0", 'description: "x"', 'a0: &a0 ["lol"]']
                   + [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]" for n in range(1, 10)]
                   + ["phases: *a9", ""])


def test_lint_refuses_alias_fan_out_with_file_and_line(tmp_path):
    (tmp_path / "laughs.yaml").write_text(LAUGHS)
    assert len(LAUGHS) < 600
    result = CliRunner().invoke(main, ["playbooks", "lint", str(tmp_path)])
    assert result.exit_code != 0
    assert "laughs.yaml:" in result.output and "aliases here expand the file to more than 100,000 values" in result.output


def test_start_up_refuses_it_too(tmp_path):
    (tmp_path / "laughs.yaml").write_text(LAUGHS)
    try:
        load_library(tmp_path)
    except PlaybookError as refused:
        (error,) = refused.errors
        assert error.line is not None and "aliases here expand" in error.message
    else:
        raise AssertionError("the playbook was accepted")


def test_a_few_plain_aliases_are_still_fine(tmp_path):
    text = LAUGHS.split("a0:")[0] + 'common: &common {role: ops}\nphases: []\nother: *common\n'
    (tmp_path / "laughs.yaml").write_text(text)
    result = CliRunner().invoke(main, ["playbooks", "lint", str(tmp_path)])
    assert "aliases here expand" not in result.output
