"""Command line: ``healthgrid serve | demo | synth | db | worker | user | token | audit | keys``.

Every command builds its settings from the environment (``HEALTHGRID_DATABASE_URL``,
``HEALTHGRID_DATA_DIR``, …); options given on the command line win.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .config import Settings, load_settings
from .errors import HealthGridError

app = typer.Typer(help="HealthGrid — regional health information platform (分级诊疗).",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
user_app = typer.Typer(help="User accounts (as the platform operator).", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for system integrations.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail: verify the chain, purge beyond retention.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys of personal information.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
patients_app = typer.Typer(help="The master patient index (患者主索引).", no_args_is_help=True)
app.add_typer(patients_app, name="patients")
surveillance_app = typer.Typer(help="Infectious-disease surveillance (传染病监测预警): feeds and detection.",
                               no_args_is_help=True)
app.add_typer(surveillance_app, name="surveillance")


def _results_app() -> typer.Typer:
    from .results import cli as results_cli

    return results_cli.app


app.add_typer(_results_app(), name="results")
console = Console()

DatabaseUrl = Annotated[str | None, typer.Option("--database-url", help="overrides HEALTHGRID_DATABASE_URL")]
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="overrides HEALTHGRID_DATA_DIR")]


def _settings(database_url: str | None = None, data_dir: Path | None = None) -> Settings:
    return load_settings(database_url=database_url, data_dir=data_dir)


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Migrate the database to the newest schema."""
    from .migrate import current, upgrade

    url = _settings(database_url, data_dir).effective_database_url
    upgrade(url)
    console.print(f"database at revision [bold]{current(url)}[/bold]")


@db_app.command("current")
def db_current(database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Show the database's schema revision."""
    from .migrate import current

    console.print(current(_settings(database_url, data_dir).effective_database_url) or "empty (not migrated)")


@app.command()
def synth(
    size: Annotated[str, typer.Option(help="tiny | small | city | province")] = "small",
    seed: Annotated[int, typer.Option(help="same seed, same region")] = 1,
    database_url: DatabaseUrl = None, data_dir: DataDir = None,
) -> None:
    """Generate a synthetic region into an empty (migrated) database."""
    from .migrate import upgrade

    url = _settings(database_url, data_dir).effective_database_url
    upgrade(url)
    report = _run_synth(_settings(database_url, data_dir), url, size, seed)
    _print_report(report)
    _print_logins(report)


def _run_synth(settings: Settings, url: str, size: str, seed: int):
    from .db import make_engine
    from .security import session_info
    from .synth import generate_region

    info = session_info(settings)
    engine = make_engine(url)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"synth {size} (seed {seed})", total=None)

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(task, description=f"{stage}: writing rows", completed=done, total=total)

            return generate_region(engine, size=size, seed=seed, progress=progress, info=info)
    finally:
        engine.dispose()


def _print_logins(report) -> None:
    from .security.synth import DEMO_PASSWORD

    if not report.demo_logins:
        return
    table = Table(title=f"demo log-ins (password for all: {DEMO_PASSWORD})")
    # User names and secrets are copied into a form and an authenticator: never cut or
    # folded (the user name already says the role); the scope may wrap.
    table.add_column("user (role)", no_wrap=True, min_width=23)
    table.add_column("scope", overflow="fold")
    table.add_column("TOTP secret", no_wrap=True, min_width=32)
    for login in report.demo_logins:
        table.add_row(login.username, login.scope, login.totp_secret or "—")
    console.print(table)
    console.print("Roles marked with a TOTP secret log in with a code from an authenticator app holding"
                  " that secret, or from [bold]healthgrid user totp-now NAME[/bold] (development only).")


def _print_report(report) -> None:
    table = Table(title=f"synthetic region '{report.size}' (seed {report.seed}) in {report.seconds:.1f} s")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in report.counts.items():
        table.add_row(name, f"{n:,}")
    console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    access_log: Annotated[bool, typer.Option(help="log every request")] = True,
    database_url: DatabaseUrl = None, data_dir: DataDir = None,
) -> None:
    """Serve the web UI, the REST API (/api) and FHIR R4 (/fhir)."""
    import uvicorn

    from .app import create_app

    uvicorn.run(create_app(_settings(database_url, data_dir)), host=host, port=port, log_level="info",
                access_log=access_log)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1")] = 8000,
    size: Annotated[str, typer.Option(help="region size")] = "small",
    seed: Annotated[int, typer.Option(help="region seed")] = 1,
    data_dir: DataDir = None,
) -> None:
    """Fresh embedded SQLite database, a generated region, served on 127.0.0.1."""
    import uvicorn

    from .app import create_app
    from .migrate import upgrade

    settings = _settings(data_dir=data_dir)
    if not settings.database_url:
        db_file = settings.data_dir / "healthgrid.sqlite3"
        for stale in (db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm")):
            stale.unlink(missing_ok=True)
    url = settings.effective_database_url
    upgrade(url)
    report = _run_synth(settings, url, size, seed)
    _print_report(report)
    _print_logins(report)
    console.print(f"\n[bold green]HealthGrid demo[/bold green] at http://127.0.0.1:{port}/  "
                  f"(FHIR: /fhir/metadata, API docs: /api/docs; English: ?lang=en)\n")
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="deliver what is pending and exit")] = False,
    interval: Annotated[float, typer.Option(help="seconds between polls")] = 2.0,
    database_url: DatabaseUrl = None, data_dir: DataDir = None,
) -> None:
    """Run the periodic jobs (open sessions, release reserved places back, no-shows,
    reminders), deliver outbox events to their handlers, chain leftover audit rows, forget
    stale log-in failures and sessions."""
    from .db import make_engine, make_sessionmaker, utcnow
    from .jobs import HANDLERS, PERIODIC
    from .outbox import deliver_pending
    from .security import audit, session_info
    from .security import service as security_service

    settings = _settings(database_url, data_dir)
    engine = make_engine(settings.effective_database_url)
    with make_sessionmaker(engine, info=session_info(settings))() as session:
        while True:
            for job in PERIODIC:
                done = {k: v for k, v in job(session, utcnow()).items() if v}
                if done:
                    console.print(f"{job.__module__}: {done}")
            n = deliver_pending(session, HANDLERS)
            if n:
                console.print(f"delivered {n} event(s)")
            # Audit rows left unchained (a sealer skipped, a process died) are chained here.
            audit.seal(session)
            security_service.housekeeping(session)
            if once:
                break
            time.sleep(interval)


def _operator_session(database_url: str | None, data_dir: Path | None):
    """A database session for an operator's command, with the security keyring."""
    from .db import make_engine, make_sessionmaker
    from .security import session_info

    settings = _settings(database_url, data_dir)
    engine = make_engine(settings.effective_database_url)
    return settings, make_sessionmaker(engine, info=session_info(settings))()


def _operator(name: str):
    from .security.domain import Actor

    return Actor.system_actor(f"cli:{name}", surface="cli")


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument()],
    display_name: Annotated[str, typer.Option("--name", help="full name shown in pages")],
    role: Annotated[list[str], typer.Option(help="ROLE:SCOPE_KIND:SCOPE_ID, e.g. clinician:organization:12"
                                                 " or resident:self; repeatable")],
    org_id: Annotated[int | None, typer.Option(help="home organisation id")] = None,
    practitioner_id: Annotated[int | None, typer.Option()] = None,
    id_number: Annotated[str | None, typer.Option(help="resident ID number (residents)")] = None,
    database_url: DatabaseUrl = None, data_dir: DataDir = None,
) -> None:
    """Create a user; the password is asked for (twice) and never echoed."""
    from .security import service

    grants = []
    for spec in role:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and not parts[2].isdigit()):
            raise typer.BadParameter(f"{spec!r}: expected ROLE:SCOPE_KIND[:SCOPE_ID]", param_hint="--role")
        grants.append(service.parse_grant(parts[0], parts[1], int(parts[2]) if len(parts) == 3 else None))
    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    _, session = _operator_session(database_url, data_dir)
    with session:
        user = service.create_user(session, _operator("user-create"), username=username, display_name=display_name,
                                   password=password, grants=grants, org_id=org_id,
                                   practitioner_id=practitioner_id, id_number=id_number)
        console.print(f"created user [bold]{user.username}[/bold] (id {user.id})")


@user_app.command("totp-now")
def user_totp_now(username: str, database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Print a user's current TOTP code — development (HEALTHGRID_ENV=dev) only, for the demo."""
    from .errors import Forbidden
    from .security import service

    settings, session = _operator_session(database_url, data_dir)
    if settings.env != "dev":
        raise Forbidden("SEC-109", "totp-now works only with HEALTHGRID_ENV=dev")
    with session:
        console.print(service.totp_now(session, service.user_by_name(session, username).id))


@user_app.command("unlock")
def user_unlock(username: str, database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Unlock an account locked after failed log-ins (and enable it)."""
    from .security import service

    _, session = _operator_session(database_url, data_dir)
    with session:
        user = service.user_by_name(session, username)
        service.set_active(session, _operator("user-unlock"), user.id, True)
        console.print(f"{username} is unlocked")


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", help="the user the token acts as")],
    name: Annotated[str, typer.Option(help="what the token is for")] = "integration",
    perm: Annotated[list[str] | None, typer.Option(help="limit to this permission; repeatable")] = None,
    expires_days: Annotated[int, typer.Option(help="days until it expires")] = 365,
    database_url: DatabaseUrl = None, data_dir: DataDir = None,
) -> None:
    """Create an API token and print it (once): send it as ``Authorization: Bearer <token>``."""
    from .security import service

    _, session = _operator_session(database_url, data_dir)
    with session:
        found = service.user_by_name(session, user)
        new = service.create_token(session, _operator("token-create"), user_id=found.id, name=name,
                                   perms=perm or None, expires_days=expires_days)
    typer.echo(new.token)


@token_app.command("revoke")
def token_revoke(token_id: int, database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Revoke an API token by id."""
    from .security import service

    _, session = _operator_session(database_url, data_dir)
    with session:
        service.revoke_token(session, _operator("token-revoke"), token_id)
    console.print(f"token {token_id} revoked")


@audit_app.command("verify")
def audit_verify(database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Walk the hash chain; exit 1 and name the rows if any was changed or deleted."""
    from .security import audit

    _, session = _operator_session(database_url, data_dir)
    with session:
        sealed = audit.seal(session)
        report = audit.verify(session)
    if report.ok:
        console.print(f"[green]audit chain intact[/green]: {report.checked:,} rows checked, last row {report.last_seq}"
                      + (f" ({sealed:,} rows chained just now)" if sealed else ""))
        return
    console.print(f"[red]audit chain broken[/red] ({report.checked:,} rows checked):")
    for problem in report.problems:
        console.print(f"  - {problem}")
    raise typer.Exit(1)


@audit_app.command("purge")
def audit_purge(database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Delete audit rows older than the retention period (HEALTHGRID_SECURITY__AUDIT_RETENTION_DAYS)."""
    from .security import audit

    settings, session = _operator_session(database_url, data_dir)
    with session:
        n = audit.purge_expired(session, _operator("audit-purge"),
                                retention_days=settings.security.audit_retention_days)
    console.print(f"purged {n:,} audit rows older than {settings.security.audit_retention_days} days")


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new random AES-256 key (base64) for HEALTHGRID_SECURITY__PII_KEYS."""
    from .security.pii import new_key

    typer.echo(new_key())


@keys_app.command("rotate")
def keys_rotate(database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Re-encrypt every personal-information column with the current key."""
    from .security import keys

    _, session = _operator_session(database_url, data_dir)
    with session:
        counts = keys.rotate(session, _operator("keys-rotate"))
    for column, n in counts.items():
        console.print(f"{column}: {n:,} values re-encrypted")


@surveillance_app.command("import-feed")
def surveillance_import_feed(
    feed: Annotated[str, typer.Argument(help="fever | ed | pharmacy | school | lab")],
    csv_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                             help="CSV with header source,division_code,date,metric,count[,total]"
                                                  " (UTF-8 or GB18030)")],
    database_url: DatabaseUrl = None, data_dir: DataDir = None,
) -> None:
    """Import a file of daily counts (all rows or none) and print the ingestion report."""
    from .errors import Invalid
    from .surveillance import feed_domain, feeds

    _, session = _operator_session(database_url, data_dir)
    with session:
        rows = feed_domain.parse_feed_csv(csv_file.read_bytes())
        try:
            report = feeds.ingest_feed(session, _operator("surveillance-import-feed"), feed=feed, rows=rows,
                                       filename=csv_file.name).as_dict()
        except Invalid as exc:
            report = (exc.detail or {}).get("report")
            if report is None:
                raise
    console.print(f"{report['feed']} {report['filename']}: {report['status']} — {report['rows']:,} rows,"
                  f" {report['created']:,} created, {report['updated']:,} updated, {report['ignored']:,} unchanged")
    for error in report["errors"][:50]:
        console.print(f"  row {error.get('row')}: {error.get('code')} {error.get('field')}: {error.get('message')}")
    if report["status"] != "accepted":
        raise SystemExit(2)


@surveillance_app.command("detect")
def surveillance_detect(
    day: Annotated[str | None, typer.Option(help="a past day YYYY-MM-DD; default: the days the worker would run now")]
    = None,
    database_url: DatabaseUrl = None, data_dir: DataDir = None,
) -> None:
    """Run the outbreak detectors for a past day (idempotent; the worker does it every morning)."""
    from datetime import date as date_cls

    from .db import utcnow
    from .errors import Invalid
    from .surveillance import detection

    _, session = _operator_session(database_url, data_dir)
    with session:
        if day is None:
            days = detection.due_days(session, utcnow())
        else:
            try:
                days = [date_cls.fromisoformat(day)]
            except ValueError:
                raise Invalid("SURV-481", f"--day: expected YYYY-MM-DD, got {day!r}", {"field": "day"}) from None
        for d in days:
            report = detection.run_day(session, d)
            summary = ", ".join(f"{k} {v}" for k, v in report.items() if isinstance(v, int) and not isinstance(v, bool))
            console.print(f"{d.isoformat()}: {'already run' if report.get('skipped') else 'detected'} ({summary})")
        if not days:
            console.print("nothing to detect now")


def main() -> None:
    try:
        app()
    except HealthGridError as exc:
        console.print(f"[red]{exc.code}[/red]: {exc.message}")
        raise SystemExit(2) from None


@patients_app.command("dedupe")
def patients_dedupe(database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Batch de-duplication of the whole index (after an import): Splink (DuckDB) scores the
    candidate pairs; pairs above the review threshold go to the stewards' review queue."""
    from .patients import merging

    _, session = _operator_session(database_url, data_dir)
    with session:
        report = merging.dedupe_index(session, _operator("patients-dedupe"),
                                      progress=lambda message: console.print(f"  {message}"))
    console.print(f"{report.records:,} active records, {report.pairs:,} pairs at or above the review threshold:"
                  f" {report.queued:,} queued for review, {report.already_known:,} already known"
                  f" (trained prior {report.prior:.2g}; "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items()) + ")")


if __name__ == "__main__":  # last: every command above is registered first
    main()
