"""Every `vigil …` command shown in the README and docs/ names commands and options that exist, so a
pasted command does not end in "No such command" (synopsis lines are checked the same way: each
alternative of `a|b` and each `--option`)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from vigil_ir.cli import load_all_commands

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```(?:sh|bash|console|shell)?\n(.*?)```", re.S)
COMMAND = re.compile(r"^(?:\$ )?(?:bash scripts/)?vigil (.*)$")


def shown_commands() -> list[tuple[str, str]]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in BLOCK.findall(path.read_text()):
            for line in block.splitlines():
                if match := COMMAND.match(line.strip()):
                    # The command ends where its description starts (two spaces, or a comment).
                    words = re.split(r"\s{2,}|\s#", match.group(1))[0]
                    found.append((path.relative_to(ROOT).as_posix(), words))
    return found


def options_of(command: click.Command) -> set[str]:
    return {name for param in command.params for name in (*param.opts, *param.secondary_opts)} | {"-h", "--help"}


def commands_named(group: click.Group, word: str) -> list[click.Command] | None:
    """The subcommands `word` names (`a|b|c` names several), or None when it is not a command word."""
    names = word.split("|")
    found = [group.commands.get(name) for name in names]
    return found if all(found) else None


@pytest.mark.parametrize(("where", "shown"), shown_commands())
def test_shown_command_exists_with_its_options(where, shown):
    words = [w.strip("[]") for w in re.findall(r"\[[^\]]*\]|\S+", shown)]
    tokens = [t for w in words for t in w.split()]
    commands: list[click.Command] = [load_all_commands()]
    for token in tokens:
        if token.startswith("-"):
            option = token.split("=")[0]
            for command in commands:
                assert option in options_of(command), f"{where}: `vigil {shown}`: {command.name} has no {option}"
        elif all(isinstance(c, click.Group) for c in commands) and commands == commands[:1]:
            named = commands_named(commands[0], token)
            assert named, f"{where}: `vigil {shown}`: no command {token!r} in {commands[0].name}"
            commands = named


def test_the_check_catches_a_wrong_command_and_option():
    with pytest.raises(AssertionError):
        test_shown_command_exists_with_its_options("x", "export bundel --from D")
    with pytest.raises(AssertionError):
        test_shown_command_exists_with_its_options("x", "export bundle --form D")
