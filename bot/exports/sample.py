"""`vigil sample incidents|reviews|actions`: a reproducible random sample of an audit population.

The population is the same rows the exports give for the period (incidents: E1; reviews: the E8
review log; actions: E5 action items), sorted by key number. The sample is
`random.Random(seed).sample(keys, n)`, so the same population and seed always give the same keys
(CPython's Mersenne Twister; its `sample` has not changed in years). Without --seed a seed is drawn
from os.urandom and printed. Every draw is recorded as an `audit.sample_drawn` event with the seed,
the population size and digest, and the keys drawn, so an auditor can re-perform it.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from sqlmodel import Session

from vigil_ir import clock
from vigil_ir.eventlog import append
from vigil_ir.exports import csvsafe
from vigil_ir.exports.period_cli import check_period, database_for, period_options
from vigil_ir.exports.output import checked_output, write_file
from vigil_ir.people.cli_actor import actor_for, by_option

AUDIT_STREAM = "audit"
_NUMBER = re.compile(r"(\d+)$")


@dataclass
class Population:
    kind: str
    key: str  # the column holding each row's key
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]  # sorted by key number

    @property
    def keys(self) -> list[str]:
        return [row[self.key] for row in self.rows]

    @property
    def digest(self) -> str:
        """SHA-256 of the sorted keys, one per line: shows a re-draw used the same population."""
        return "sha256:" + hashlib.sha256("".join(f"{key}\n" for key in self.keys).encode("utf-8")).hexdigest()


def key_number(key: str) -> int:
    return int(_NUMBER.search(key).group(1))


def population(session: Session, kind: str, start: datetime, end: datetime) -> Population:
    if kind == "incidents":
        from vigil_ir.exports.population import COLUMNS, incident_population

        rows, key, columns = incident_population(session, start, end), "key", COLUMNS
    elif kind == "reviews":
        from vigil_ir.exports.risks import REVIEW_COLUMNS, review_rows

        rows, key, columns = review_rows(session, start, end), "review_ref", REVIEW_COLUMNS
    elif kind == "actions":
        from vigil_ir.followup.action_export import COLUMNS, action_rows

        rows, key, columns = action_rows(session, start, end), "action_ref", COLUMNS
    else:
        raise ValueError(f"unknown population {kind!r}")
    return Population(kind, key, tuple(columns), sorted(rows, key=lambda row: key_number(row[key])))


def draw(population: Population, n: int, seed: int) -> list[dict[str, Any]]:
    """`n` rows (all if fewer), chosen by `random.Random(seed).sample` over the sorted keys; in key order."""
    chosen = set(random.Random(seed).sample(population.keys, min(n, len(population.rows))))
    return [row for row in population.rows if row[population.key] in chosen]


def record(session: Session, *, population: Population, start: datetime, end: datetime, n: int, seed: int,
           sample: list[dict[str, Any]], actor: str) -> int:
    event = append(session, stream=AUDIT_STREAM, kind="audit.sample_drawn", actor=actor, data={
        "population": population.kind, "period_start": clock.iso(start), "period_end": clock.iso(end),
        "n": n, "seed": seed, "population_size": len(population.rows), "population_digest": population.digest,
        "method": "random.Random(seed).sample(keys sorted by number, min(n, population size))",
        "keys": [row[population.key] for row in sample]})
    return event.stream_seq


def new_seed() -> int:
    return int.from_bytes(os.urandom(6), "big")  # 15 digits at most: easy to copy into --seed


def render(population: Population, rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([{name: row[name] for name in population.columns} for row in rows],
                          indent=2, ensure_ascii=False) + "\n"
    return csvsafe.to_csv(population.columns, rows)


@click.group("sample")
def sample() -> None:
    """Draw a reproducible random sample from an audit population (the seed is printed and recorded)."""


def _command(kind: str, noun: str, what: str):
    @sample.command(kind, help=f"A random sample of {what} (the `vigil export` population for the period).")
    @period_options
    @click.option("--n", "n", type=click.IntRange(min=1), default=25, show_default=True, help="Sample size.")
    @click.option("--seed", type=click.IntRange(min=0), default=None,
                  help="Seed to draw with; the same population and seed give the same sample (default: random, "
                       "printed).")
    @click.option("--format", "fmt", type=click.Choice(("csv", "json"), case_sensitive=False), default="csv",
                  show_default=True, help="csv or json (the export's columns).")
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), callback=checked_output,
                  help="Write to FILE instead of stdout (CSV files get a UTF-8 byte-order mark).")
    @by_option("drawing")
    @click.pass_context
    def command(ctx, start, end, n, seed, fmt, output, by):
        check_period(start, end)
        fmt = fmt.lower()
        seed = new_seed() if seed is None else seed
        with database_for(ctx) as database:
            with database.read_session() as session:  # reading never holds SQLite's write lock
                who, label = actor_for(session, by)
                found = population(session, kind, start, end)
            chosen = draw(found, n, seed)
            text = render(found, chosen, fmt)
            if output is not None:  # in place before recording, so a failed write records nothing
                write_file(output, (csvsafe.for_file(text) if fmt == "csv" else text).encode("utf-8"))
            with database.session() as session:  # the record: one short write at the end
                seq = record(session, population=found, start=start, end=end, n=n, seed=seed, sample=chosen,
                             actor=who)
        if output is None:
            click.echo(text, nl=False)
        click.echo(f"Seed: {seed} (--seed {seed} draws this sample again from the same population)", err=True)
        if len(found.rows) < n:
            click.echo(f"The population has {len(found.rows)} {noun}, fewer than --n {n}: all of them are returned.",
                       err=True)
        click.echo(f"Drew {len(chosen)} of {len(found.rows)} {noun} ({clock.iso(start)} to {clock.iso(end)}); "
                   f"recorded as audit.sample_drawn (audit seq {seq}) by {label}"
                   + (f"; wrote {output}" if output else ""), err=True)

    return command


_command("incidents", "incidents", "incidents declared in the period (E1)")
_command("reviews", "reviews", "risk reviews completed, or due and not completed, in the period (E8)")
_command("actions", "actions", "follow-up actions created, due or completed in the period (E5)")
