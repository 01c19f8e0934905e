"""`vigil export bundle`: write the bundle, refusing when state and events disagree; say what was written.

`vigil_ir.exports.cli` adds `bundle` to the `export` group when it is asked for (lazily).
"""

from __future__ import annotations

import gc
from datetime import datetime
from pathlib import Path

import click

from vigil_ir.exports.output import checked_output
from vigil_ir.exports.period_cli import check_period, database_for, period_options
from vigil_ir.people.cli_actor import actor_for, by_option


@click.command("bundle")
@period_options
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              callback=checked_output, help="The zip file to write (replaced, once complete, if it exists).")
@by_option("exporting")
@click.pass_context
def bundle(ctx: click.Context, start: datetime, end: datetime, output: Path, by: str | None) -> None:
    """The evidence bundle for an audit period: one zip with a hashed manifest (see docs/audit-evidence.md).

    Incident population and event log, a packet per incident, PIRs and actions, the risk register
    at period end, review log, heat maps, audit trail, notification log, chain heads. Check it with
    `vigil verify --bundle FILE`.
    """
    from vigil_ir.exports.bundle import parallel
    from vigil_ir.exports.snapshot import shareable

    check_period(start, end)
    with database_for(ctx) as database:
        if shareable(database):
            parallel.prepare()  # the export's other processes import their code while this one does
        from vigil_ir.exports.bundle.export import export_bundle
        from vigil_ir.exports.bundle.state_guard import StateDiffers
        from vigil_ir.exports.progress import for_stream
        from vigil_ir.signing.service import SigningKeyError

        with database.read_session() as session:
            who, label = actor_for(session, by)
        # What is loaded by now (modules, mappings, the database) lives as long as the process: keep it
        # out of the garbage collector's full passes, which otherwise walk it again and again (~5% of the CPU).
        gc.freeze()
        try:  # the state rows are checked against their events beside the export (state_guard.py)
            result = export_bundle(database, start=start, end=end, output=output, actor=who, progress=for_stream(),
                                   check_state=True)
        except StateDiffers as differences:
            raise click.ClickException(differences.refusal()) from None
        except parallel.ExportProcessFailed as exc:
            raise click.ClickException(f"No bundle written: {exc}.") from None
        except SigningKeyError as exc:
            raise click.ClickException(f"Cannot sign the bundle: {exc}") from None
        except OSError as exc:
            raise click.ClickException(f"Cannot write {output}: {exc.strerror or exc}") from exc
    for note in result.manifest["notes"]:
        click.echo(f"Note ({note['section']}, {note['status']}): {note['detail']}", err=True)
    click.echo(f"Wrote {output}: {result.files} files, manifest.json and manifest.sig, {result.bytes} bytes; manifest "
               f"sha256 {result.manifest_sha256}, signed with {result.key_fingerprint} (recorded as "
               f"audit.bundle_exported by {label})", err=True)
