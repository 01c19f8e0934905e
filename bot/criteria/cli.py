"""`vigil criteria list`: the identifiers risks and playbook steps may refer to."""

from __future__ import annotations

import json

import click

from vigil_ir.criteria.catalogue import catalogues

CHOICES = {"soc2": "soc2-tsc", "iso27001": "iso27001-annex-a"}


@click.group("criteria")
def criteria_group() -> None:
    """The shipped criteria catalogues (SOC 2 Trust Services Criteria, ISO/IEC 27001:2022 Annex A)."""


@criteria_group.command("list")
@click.option("--catalogue", "which", type=click.Choice(sorted(CHOICES)), default=None,
              help="Only this catalogue (default: both).")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
def list_command(which: str | None, fmt: str) -> None:
    """Every criterion id with its short title. The titles are a finding aid written for Vigil, not
    the standards' text."""
    chosen = [c for c in catalogues() if which is None or c.key == CHOICES[which]]
    if fmt == "json":
        click.echo(json.dumps([{"catalogue": c.name, "version": c.version,
                                "criteria": [{"id": x.id, "title": x.title} for x in c.criteria]} for c in chosen],
                              indent=2, ensure_ascii=False))
        return
    for catalogue in chosen:
        click.echo(f"# {catalogue.name} ({catalogue.version})")
        for criterion in catalogue.criteria:
            click.echo(f"{criterion.id}\t{criterion.title}")
