"""Command line: ``healthgrid serve | demo | synth | db upgrade | db current | worker``.

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
    report = _run_synth(url, size, seed)
    _print_report(report)


def _run_synth(url: str, size: str, seed: int):
    from .db import make_engine
    from .synth import generate_region

    engine = make_engine(url)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"synth {size} (seed {seed})", total=None)

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(task, description=f"{stage}: writing rows", completed=done, total=total)

            return generate_region(engine, size=size, seed=seed, progress=progress)
    finally:
        engine.dispose()


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
    _print_report(_run_synth(url, size, seed))
    console.print(f"\n[bold green]HealthGrid demo[/bold green] at http://127.0.0.1:{port}/  "
                  f"(FHIR: /fhir/metadata, API docs: /api/docs; English: ?lang=en)")
    console.print("Log-in: none yet — the demo serves the public registry of the region only; "
                  "accounts and roles arrive with the security context.\n")
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="deliver what is pending and exit")] = False,
    interval: Annotated[float, typer.Option(help="seconds between polls")] = 2.0,
    database_url: DatabaseUrl = None, data_dir: DataDir = None,
) -> None:
    """Deliver outbox events to their handlers."""
    from .db import make_engine, make_sessionmaker
    from .jobs import HANDLERS
    from .outbox import deliver_pending

    engine = make_engine(_settings(database_url, data_dir).effective_database_url)
    with make_sessionmaker(engine)() as session:
        while True:
            n = deliver_pending(session, HANDLERS)
            if n:
                console.print(f"delivered {n} event(s)")
            if once:
                break
            time.sleep(interval)


def main() -> None:
    try:
        app()
    except HealthGridError as exc:
        console.print(f"[red]{exc.code}[/red]: {exc.message}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
