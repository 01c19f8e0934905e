"""The `vigil` command."""

from __future__ import annotations

import logging
import re
import signal
import sys
import threading

import click

from vigil_ir import __version__, clock

# Start-up imports only click: `vigil --help` and `--version` take a tenth of a second instead of
# over one (SQLAlchemy, Alembic, pydantic, slack_sdk, the exports…). Each command imports what it uses.


def load_settings():
    from vigil_ir.config import load_settings as load

    return load()


def run_migrations(url: str) -> None:
    from vigil_ir.db import migrate

    migrate(url)


def _open_database(url: str):
    from vigil_ir.db import Database as database

    return database(url)


def _database(ctx: click.Context):
    obj = ctx.ensure_object(dict)
    if "database" not in obj:
        obj["database"] = _open_database(load_settings().database_url)
    return obj["database"]


# Command groups defined in their own modules: name -> (module, attribute, the first paragraph of its
# help). The module is imported only when the command runs or shows its own --help; `vigil --help`
# lists them from this table (tests/test_cli_startup.py checks it against the commands themselves).
LAZY_SUBCOMMANDS = {
    "auditor-token": ("vigil_ir.auth.cli", "auditor_token",
                      "Read-only dashboard tokens for auditors: create (shown once), list, revoke."),
    "criteria": ("vigil_ir.criteria.cli", "criteria_group",
                 "The shipped criteria catalogues (SOC 2 Trust Services Criteria, ISO/IEC 27001:2022 Annex A)."),
    "dashboard": ("vigil_ir.auth.cli", "dashboard_group", "The web dashboard: its signed-in sessions."),
    "export": ("vigil_ir.exports.cli", "export",
               "Export audit evidence: incident timelines and population, reviews and actions, the exercise "
               "register, the risk register, review log and acceptances, and the evidence bundle."),
    "incidents": ("vigil_ir.exports.program_review_cli", "incidents_group",
                  "The incident-response program as evidence: the periodic review and its sign-off."),
    "outbox": ("vigil_ir.outbox.cli", "outbox",
               "The Slack side effects waiting to be delivered, and those that failed for good (dead letters)."),
    "playbooks": ("vigil_ir.playbooks.cli", "playbooks",
                  "Check and list the playbook (runbook) files; see docs/playbooks.md for the format."),
    "risks": ("vigil_ir.risks.cli", "risks",
              "The risk register: import from a spreadsheet, export, heat map, periodic report and sign-off."),
    "sample": ("vigil_ir.exports.sample", "sample",
               "Draw a reproducible random sample from an audit population (the seed is printed and recorded)."),
    "signing-key": ("vigil_ir.signing.cli", "signing_key",
                    "The Ed25519 key that signs evidence bundles: show it (created on first use) or rotate it."),
    "witness": ("vigil_ir.slack.witness_cli", "witness_group",
                "Publish the chain heads' digest to VIGIL_AUDIT_CHANNEL (the worker also does it periodically)."),
}


# Commands that start other processes, and what starts them: called as soon as the command line names
# the command, before the command's own modules are imported (half a second for `export bundle`), so
# the other processes import their code on the second core meanwhile. Not for `--help`.
STARTED_EARLY = {("export", "bundle"): ("vigil_ir.exports.bundle.parallel", "prepare")}


class VigilGroup(click.Group):
    """Any command that cannot reach or use the database ends with one line naming it, password
    masked, instead of a traceback (commands that say more catch the error themselves).

    The groups of LAZY_SUBCOMMANDS are imported when asked for by name."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_SUBCOMMANDS})

    def get_command(self, ctx: click.Context, name: str):
        if name in LAZY_SUBCOMMANDS and name not in self.commands:
            import importlib

            module, attribute, _help = LAZY_SUBCOMMANDS[name]
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        starter = STARTED_EARLY.get(tuple(args[:2]))
        if starter is not None and not set(args) & set(ctx.help_option_names):
            import importlib

            getattr(importlib.import_module(starter[0]), starter[1])()
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list, with the lazy groups' help from the table (nothing imported)."""
        listed = {name: self.commands.get(name) or click.Command(name, help=LAZY_SUBCOMMANDS[name][2])
                  for name in self.list_commands(ctx)}
        shown = [(name, command) for name, command in listed.items() if not command.hidden]
        if shown:
            limit = formatter.width - 6 - max(len(name) for name, _ in shown)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in shown])

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as exc:  # the errors' modules are imported only when one is raised (0.15 s)
            self._explain(ctx, exc)
            raise

    def _explain(self, ctx: click.Context, exc: Exception) -> None:
        """Say what a settings or database error means (the process then exits); others pass on."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import SQLAlchemyError

        from vigil_ir.config import SettingsError

        if isinstance(exc, SettingsError):
            for problem in exc.problems:
                click.echo(f"Error: {problem}", err=True)
            click.echo("Fix the environment variable(s) above (or .env); .env.example lists every setting.", err=True)
            ctx.exit(2)
        if isinstance(exc, SQLAlchemyError):
            try:
                where = make_url(load_settings().database_url).render_as_string(hide_password=True)
            except Exception:  # noqa: BLE001 - an unparsable URL: say nothing of it
                where = "DATABASE_URL"
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
            raise click.ClickException(f"The database at {where} could not be used ({type(exc).__name__}: "
                                       f"{detail}).") from None


@click.group(cls=VigilGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vigil")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
@click.option("--log-format", type=click.Choice(["json", "text"]), default=None,
              help="Log lines on stderr (default VIGIL_LOG_FORMAT, else text on a terminal and JSON otherwise).")
@click.pass_context
def main(ctx: click.Context, verbose: bool, log_format: str | None) -> None:
    """Vigil: incident response and risk register for Slack, with audit-grade records."""
    from vigil_ir import logs

    ctx.ensure_object(dict)
    try:
        settings = load_settings()
    except Exception:  # noqa: BLE001 - the command itself reports bad settings; `--help` must work
        settings = None
    logs.setup(log_format or (settings.log_format if settings else None), verbose=verbose,
               secrets=logs.secrets_of(settings))


def _checked(build, *args, **options):
    """Start-up refuses invalid playbooks (naming each file, line and field) and bad settings."""
    from vigil_ir.playbooks.loader import PlaybookError

    try:
        return build(*args, **options)
    except PlaybookError as invalid:
        for error in invalid.errors:
            click.echo(str(error), err=True)
        raise click.ClickException(f"{len(invalid.errors)} playbook error(s); fix them (`vigil playbooks lint`) "
                                   "before starting.") from None
    except ValueError as misconfigured:  # e.g. VIGIL_UPDATE_CADENCE, VIGIL_PIR_DUE, VIGIL_HOLIDAYS
        raise click.ClickException(f"Configuration error: {misconfigured}") from None


@main.command()
def migrate() -> None:
    """Apply database migrations (safe to run again)."""
    url = load_settings().database_url
    run_migrations(url)
    click.echo("Database is at the latest schema.", err=True)


@main.command()
@click.option("--host", default=None, help="Interface to listen on (default HOST or 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port (default PORT or 8000).")
@click.option("--socket", "socket_mode", is_flag=True, help="Use Socket Mode (needs SLACK_APP_TOKEN) instead of HTTP.")
@click.option("--no-migrate", is_flag=True, help="Do not apply migrations at start-up.")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="Log one line per HTTP request (with its request id).")
def serve(host: str | None, port: int | None, socket_mode: bool, no_migrate: bool, access_log: bool) -> None:
    """Serve Slack requests: HTTP (POST /slack/events, GET /healthz, GET /metrics, the read-only dashboard at /)
    or Socket Mode."""
    from vigil_ir.runtime import build_runtime

    settings = load_settings()
    host, port = host or settings.host, port or settings.port
    if not socket_mode:
        from vigil_ir.web.listen import listen_problem

        if problem := listen_problem(host, port):  # before the migrations: say it at once, naming the address
            raise click.ClickException(problem)
    if not no_migrate:
        run_migrations(settings.database_url)
    runtime = _checked(build_runtime, settings, socket_mode=socket_mode)
    runtime.database.checkpoint_in_background()
    _record_config(runtime.database, settings)
    if socket_mode:
        _serve_socket_mode(runtime)
        return
    import uvicorn

    from vigil_ir.web.app import create_web_app

    app = create_web_app(runtime)
    logging.getLogger(__name__).info(dashboard_greeting(settings, host, port))
    # log_config=None: uvicorn's own and access log lines go through vigil_ir.logs (JSON, request id).
    uvicorn.run(app, host=host, port=port, log_level="info", log_config=None, access_log=access_log)


def dashboard_greeting(settings, host: str, port: int) -> str:
    """Where the dashboard is and how to get in, so a first start shows the way."""
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = settings.base_url or f"http://{shown_host}:{port}/"
    slack = ("or Sign in with Slack" if not settings.missing_slack_sign_in else
             f"(Sign in with Slack needs {', '.join(settings.missing_slack_sign_in)})")
    return (f"Dashboard at {url}: sign in with an auditor token from `vigil auditor-token create --name NAME` "
            f"{slack}; `vigil demo` fills an empty database with a sample quarter to look at.")


def _record_config(database, settings) -> None:
    """Record the configuration controls depend on when it changed (vigil_ir.config_evidence)."""
    from vigil_ir.config_evidence import record_if_changed

    try:
        with database.session() as session:
            recorded = record_if_changed(session, settings)
    except Exception as failure:  # noqa: BLE001 - the next start records it; serving matters more
        logging.getLogger(__name__).warning("could not record the configuration in force: %s", failure)
        return
    if recorded is not None:
        logging.getLogger(__name__).info("recorded the configuration in force (sha256 %s; changed: %s)",
                                         recorded.data["sha256"], ", ".join(recorded.data["changed"]))


def _serve_socket_mode(runtime) -> None:
    from vigil_ir.slack.socket_mode import SocketModeRefused, serve_socket_mode

    settings = runtime.settings
    missing = settings.missing_credentials_for("socket")
    if missing:
        raise click.ClickException(f"Socket Mode needs {', '.join(missing)} (SLACK_APP_TOKEN: an xapp- app-level "
                                   "token with connections:write); the signing secret is not needed. See README.md.")
    stop = _stop_on_signals()
    runtime.start_background_delivery()
    try:
        serve_socket_mode(runtime.bolt, app_token=settings.slack_app_token, api_url=settings.slack_api_url,
                          timeout=settings.slack_timeout_seconds, stop=stop)
    except SocketModeRefused as refused:
        raise click.ClickException(str(refused)) from None
    finally:
        runtime.shutdown()


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so a loop can end cleanly instead of by a traceback."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


@main.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@click.option("--metrics-port", type=int, default=None,
              help="Serve Prometheus metrics on http://127.0.0.1:PORT/metrics (loopback only).")
def worker(once: bool, metrics_port: int | None) -> None:
    """Send due reminders and deliver the outbox (Slack posts, channel set-up), retrying until they succeed."""
    from vigil_ir.runtime import make_worker

    settings = load_settings()
    missing = settings.missing_credentials_for("worker")  # it only calls the Web API: no signing secret
    if missing:
        raise click.ClickException(f"Slack is not configured: set {', '.join(missing)} (see README.md).")
    database = _open_database(settings.database_url)
    work = _checked(make_worker, settings, database, "worker")
    _record_config(database, settings)
    if once:
        click.echo(f"Delivered {work.drain()} outbox item(s).", err=True)
        return
    stop = _stop_on_signals()
    database.checkpoint_in_background()
    if metrics_port is not None:
        from vigil_ir.metrics import serve_worker_metrics

        try:
            server, _thread = serve_worker_metrics(metrics_port, database, settings)
        except OSError as failed:
            raise click.ClickException(f"Cannot serve metrics on 127.0.0.1:{metrics_port}: {failed.strerror}") from None
        logging.getLogger(__name__).info("worker metrics on http://127.0.0.1:%s/metrics", server.server_port)
    logging.getLogger(__name__).info("worker %s started", work.sender.worker)
    work.run_forever(stop)


@main.command()
@click.option("--heads", "show_heads", is_flag=True, help="Also list each stream's head hash.")
@click.option("--bundle", "bundle", metavar="FILE", default=None,
              help="Check an evidence bundle (vigil export bundle) and its signature instead; the database, when "
                   "there is one, is only read to confirm the signing key.")
@click.option("--key", "expected_key", metavar="SHA256:…", default=None,
              help="With --bundle: the fingerprint of the key the bundle must be signed with (e.g. from the audit "
                   "channel post).")
@click.option("--previous", "previous", metavar="FILE", default=None,
              help="With --bundle: the bundle exported before it, which its manifest's previous_bundle must name.")
@click.option("--witness", "witnessed", is_flag=True,
              help="Also check every witness posted in VIGIL_AUDIT_CHANNEL against the log.")
@click.option("--against", metavar="sha256:…", default=None, help="Check one heads digest given by hand (with --at).")
@click.option("--at", "at", metavar="TIME", default=None,
              help="The cutoff the --against digest was taken at (ISO 8601, e.g. 2026-07-01T12:00:00Z).")
@click.pass_context
def verify(ctx: click.Context, show_heads: bool, bundle: str | None, expected_key: str | None,
           previous: str | None, witnessed: bool, against: str | None, at: str | None) -> None:
    """Recompute every event chain; exit 1 naming the first broken event.

    With --witness, also check every digest published to VIGIL_AUDIT_CHANNEL: a rewrite of anything
    recorded before a published digest is reported with that digest, its time and permalink. With
    --against sha256:… --at TIME, check one digest you kept.

    With --bundle FILE: check every file of an evidence bundle against its manifest, re-verify the
    event-log chain segments inside it and check its signature (manifest.sig); exit 1 naming what
    differs. The signing key must be one this installation recorded (when its database can be
    read) and the one given with --key; with neither, the key is reported as unconfirmed. With
    --previous FILE, also check that FILE is the bundle exported before it, as its manifest says.
    """
    from vigil_ir.eventlog.verify import verify_database

    if expected_key is not None and bundle is None:
        raise click.UsageError("--key goes with --bundle: the fingerprint the bundle must be signed with.")
    if previous is not None and bundle is None:
        raise click.UsageError("--previous goes with --bundle: the bundle exported before the one checked.")
    if bundle is not None:
        sys.exit(_verify_bundle(ctx, bundle, expected_key, previous))
    from vigil_ir.eventlog.folding import collector_paused
    from vigil_ir.state_check import COVERED, checker, finish

    # A read session never holds SQLite's write lock while walking; the collector is paused (folding.py).
    with _database(ctx).read_session() as session, collector_paused():
        state = checker(session)
        result = verify_database(session, observe=state.feed)  # one pass: hash the chains, fold the records
        mismatches = finish(state, session) if result.ok else []
    if not result.ok:
        click.echo(f"BROKEN: {result.broken.describe()}", err=True)
        sys.exit(1)
    for mismatch in mismatches[:MAX_SHOWN]:
        click.echo(f"BROKEN: {mismatch.describe()}", err=True)
    if mismatches:
        more = f" ({state.count - MAX_SHOWN} more not shown)" if state.count > MAX_SHOWN else ""
        click.echo(f"BROKEN: {state.count} state difference(s) between the state tables and their events{more}; "
                   "the events are the record (docs/operations.md, 'When vigil verify fails').", err=True)
        sys.exit(1)
    click.echo(f"OK: {result.streams} streams, {result.events} events verified, every state row ({COVERED}) "
               f"agrees with its events; heads digest {result.heads_digest}")
    if show_heads:
        for stream, head in sorted(result.heads.items()):
            click.echo(f"{stream} {head}")
    if witnessed or against or at:
        sys.exit(_check_witnesses(ctx, witnessed, against, at))


MAX_SHOWN = 20  # state differences listed; the count covers them all


def _verify_bundle(ctx: click.Context, bundle: str, expected_key: str | None, previous: str | None) -> int:
    from vigil_ir.exports.bundle.signature_check import installation
    from vigil_ir.exports.bundle.verification import report
    from vigil_ir.exports.signature import FINGERPRINT

    if expected_key is not None and not FINGERPRINT.match(expected_key.strip()):
        raise click.BadParameter("expected SHA256: and 64 lowercase hex digits (as `vigil signing-key show` and "
                                 "the audit channel post print it)", param_hint="--key")
    database = ctx.obj.get("database") if isinstance(ctx.obj, dict) else None
    url = None
    if database is None:
        try:
            url = load_settings().database_url
        except Exception:  # noqa: BLE001 - unusable settings: check the bundle without the database
            url = "sqlite://"
    keys = installation(database, url, expected_key.strip() if expected_key else None)
    return report(bundle, click.echo, lambda line: click.echo(line, err=True), keys, previous)


def _check_witnesses(ctx: click.Context, witnessed: bool, against: str | None, at: str | None) -> int:
    from datetime import datetime

    from vigil_ir.slack.witness_cli import check_against, check_published

    if bool(against) != bool(at):
        raise click.UsageError("--against and --at go together: the digest, and the cutoff it was taken at.")
    code = 0
    if against:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", against):
            raise click.BadParameter("expected sha256: and 64 hex digits", param_hint="--against")
        try:
            cutoff = clock.to_utc(datetime.fromisoformat(at.replace("Z", "+00:00")))
        except (ValueError, OverflowError):
            raise click.BadParameter(f"{at!r} is not an ISO 8601 time", param_hint="--at") from None
        code |= check_against(_database(ctx), against, cutoff)
    if witnessed:
        code |= check_published(_database(ctx), load_settings())
    return code


@main.command()
@click.option("--base-url", default=None, help="Where the dashboard will be reached (default VIGIL_BASE_URL, "
              "else http://HOST:PORT/).")
def demo(base_url: str | None) -> None:
    """Fill an EMPTY database with a labelled sample quarter (incidents with playbooks, reviews and
    actions; risks with reviews and an acceptance) and print a dashboard token, to look around
    before connecting Slack. Refuses a database that holds anything."""
    from vigil_ir.demo import DemoRefused, fill
    from vigil_ir.playbooks.loader import load_library

    settings = load_settings()
    library = _checked(load_library, settings.playbooks_dir)
    run_migrations(settings.database_url)
    try:
        result = fill(_open_database(settings.database_url), settings, library)
    except DemoRefused as refused:
        raise click.ClickException(str(refused)) from None
    url = base_url or settings.base_url or f"http://{settings.host}:{settings.port}/"
    click.echo(f"Demo quarter {result.period_start} to {result.period_end}: {', '.join(result.incidents)}; "
               f"{', '.join(result.risks)} (every title starts with [Demo]).")
    click.echo(f"Start Vigil (`vigil serve`), open {url} and sign in with this auditor token "
               f"(shown once, valid until {result.token_expires:%Y-%m-%d}):")
    click.echo(result.token)
    click.echo(f"Then try: vigil export bundle --from {result.period_start} --to {result.period_end} -o demo.zip "
               "&& vigil verify --bundle demo.zip")


def load_all_commands() -> click.Group:
    """`main` with every lazy group imported into `main.commands` (for tests and tools that walk the
    whole command tree)."""
    context = click.Context(main)
    for name in LAZY_SUBCOMMANDS:
        main.get_command(context, name)
    return main


if __name__ == "__main__":
    main()
