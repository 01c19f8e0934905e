"""`vigil playbooks lint|list`: check playbook files and show the library."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from vigil_ir.playbooks.loader import (PlaybookError, PlaybookFile, library_directory, lint_paths, load_library,
                                  playbook_paths)
from vigil_ir.slack.checklist import cut_on_slack

_PATH = click.Path(path_type=Path)


@click.group()
def playbooks() -> None:
    """Check and list the playbook (runbook) files; see docs/playbooks.md for the format."""


@playbooks.command()
@click.argument("paths", nargs=-1, type=_PATH)
def lint(paths: tuple[Path, ...]) -> None:
    """Validate playbook files and directories (default: the playbook library).

    Prints each problem as FILE:LINE: FIELD: MESSAGE and exits 1 if there is any.
    """
    targets = list(paths) or [library_directory()]
    checked = len(playbook_paths(targets, []))
    library, errors = lint_paths(targets)
    if errors:
        for error in errors:
            click.echo(str(error), err=True)
        click.echo(f"{_count(checked, 'file')}, {_count(len(errors), 'error')}", err=True)
        sys.exit(1)
    for loaded in library.values():
        for what in cut_on_slack(loaded.playbook):
            click.echo(f"{loaded.path}: warning: in the Slack checklist {what}; the full text is on the timeline",
                       err=True)
    click.echo(f"OK: {_count(len(library), 'playbook')}")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


@playbooks.command("list")
@click.option("--dir", "directory", type=_PATH, default=None,
              help="Playbook folder (default: VIGIL_PLAYBOOKS_DIR or the shipped playbooks/).")
def list_(directory: Path | None) -> None:
    """Show each playbook's id, version, title and when it is suggested."""
    try:
        library = load_library(directory)
    except PlaybookError as invalid:
        for error in invalid.errors:
            click.echo(str(error), err=True)
        raise click.ClickException(f"{len(invalid.errors)} playbook error(s); run `vigil playbooks lint`.") from None
    rows = [_row(file) for file in library.values()]
    if _stdout_is_terminal():
        _rich_table(rows)
    else:
        _plain_table(rows)


def _stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


_HEADERS = ("ID", "VERSION", "TITLE", "TYPES", "SEVERITIES")


def _row(file: PlaybookFile) -> tuple[str, ...]:
    playbook = file.playbook
    return (playbook.id, playbook.version, playbook.title,
            ", ".join(playbook.applies_to.types) or "any", ", ".join(playbook.applies_to.severities) or "any")


def _plain_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [_HEADERS, *rows]) for i in range(len(_HEADERS))]
    for row in [_HEADERS, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _rich_table(rows: list[tuple[str, ...]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for header in _HEADERS:  # ids and versions are what people copy: never cut them
        table.add_column(header if header == "ID" else header.title(), no_wrap=header in ("ID", "VERSION"),
                         overflow="fold")
    for row in rows:
        table.add_row(*map(Text, row))  # Text: a title such as "[EU] breach" is not rich markup
    Console().print(table)
