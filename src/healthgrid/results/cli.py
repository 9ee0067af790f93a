"""``healthgrid results …``: HL7 v2 file import and the MLLP listener.

    healthgrid results import-hl7 FILE... --source 420100001 [--user lis-first]
    healthgrid results mllp [--host 127.0.0.1] [--port 2575] [--user lis-first]

``import-hl7`` reads one or more messages per file (MLLP-framed, or one after another with CR,
LF or CRLF between segments), ingests them through the pipeline (a chunk of messages per
transaction) and prints each message's report; the exit code is 2 if any was refused. The
files are those of one organisation (``--source``: its code): a message whose MSH-4 names
another is refused, one whose MSH-4 is a name rather than a code is taken as the source's.
It acts as the operator (the platform itself), or as ``--user``'s account.

``mllp`` listens until stopped (Ctrl-C), as the integration account ``--user`` or
``HEALTHGRID_RESULTS__MLLP_USER`` (docs/operator/configuration.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..config import load_settings

app = typer.Typer(help="Shared results (检查检验结果互认): HL7 v2 import and the MLLP listener.", no_args_is_help=True)
console = Console()
DatabaseUrl = Annotated[str | None, typer.Option("--database-url", help="overrides HEALTHGRID_DATABASE_URL")]
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="overrides HEALTHGRID_DATA_DIR")]
User = Annotated[str | None, typer.Option("--user", help="act as this integration account (results.submit)")]


def _sessions(database_url: str | None, data_dir: Path | None):
    from ..db import make_engine, make_sessionmaker
    from ..security import session_info

    settings = load_settings(database_url=database_url, data_dir=data_dir)
    engine = make_engine(settings.effective_database_url)
    return settings, make_sessionmaker(engine, info=session_info(settings))


def _actor(session, username: str | None, surface: str):
    from ..security import service as security
    from ..security.domain import Actor, Perm

    if not username:
        return Actor.system_actor(f"cli:results-{surface}", surface="cli")
    user = security.user_by_name(session, username)
    if user is None:
        raise typer.BadParameter(f"no user {username!r}", param_hint="--user")
    actor = security.actor_for(session, user, surface=surface, client=None, mfa=True)
    if not actor.can(Perm.RESULT_SUBMIT):
        raise typer.BadParameter(f"{username} does not hold results.submit", param_hint="--user")
    return actor


def _line(where: str, report: dict) -> str:
    counts = " ".join(f"{k} {sum(v.values())}" for k in ("created", "updated", "ignored") if (v := report[k]))
    first = report["errors"][0] if report["errors"] else None
    why = f" — {first['code']} {first.get('field') or first.get('where')}: {first['message']}" if first else ""
    more = f" (+{len(report['errors']) - 1} more)" if len(report["errors"]) > 1 else ""
    return " ".join(p for p in (f"{where} {report['control_id']}: {report['status']}", counts) if p) + why + more


@app.command("import-hl7")
def import_hl7(files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
               source: Annotated[str, typer.Option("--source", help="code of the organisation the files come from")],
               user: User = None,
               workers: Annotated[int, typer.Option(help="processes parsing the next chunk while one is written"
                                                         " (0: none; they use the packaged catalogue)")] = 0,
               database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Import HL7 v2 ORU^R01 / ADT^A01/A04/A08 files; print each message's report."""
    from ..registry import queries as registry_queries
    from . import bulk, from_hl7
    from .ingest import CHUNK, settings_of

    _, sessions = _sessions(database_url, data_dir)
    failed = 0
    with sessions() as session:
        registry_queries.organization_by_code(session, source)  # REG-013 for an unknown --source
        actor, cfg = _actor(session, user, "file"), settings_of(session)
        for path in files:
            parts = from_hl7.split_file(path.read_bytes())
            chunks = [parts[i:i + CHUNK] for i in range(0, len(parts), CHUNK)]
            reader = _Reader(cfg.hl7_charset or None, cfg.max_message_bytes, source)
            n = 0
            for out in bulk.import_chunks(session, actor, chunks, reader, workers=workers):
                for report in out:
                    n += 1
                    failed += report["status"] == "rejected"
                    console.print(_line(f"{path.name}#{n}", report), highlight=False, soft_wrap=True)
    if failed:
        console.print(f"[red]{failed} message(s) refused[/red]")
        raise typer.Exit(2)


class _Reader:
    """Reads a chunk of a file's (part, why-not-a-message) pairs; picklable, for a worker process.
    A part that is not a message keeps its framing error (RES-030) and is kept as rejected."""

    def __init__(self, charset: str | None, max_bytes: int, source: str):
        self.charset, self.max_bytes, self.source = charset, max_bytes, source

    def __call__(self, parts: list[tuple[bytes, str | None]]) -> list:
        from . import bulk
        from .ingest import Received
        from .intake import Problem

        read = iter(bulk.read_hl7_chunk([p for p, why in parts if why is None], "file", self.charset,
                                        self.max_bytes, self.source))
        return [next(read) if why is None else Received(p, "file", "hl7", source_org=self.source,
                                                        problems=(Problem("RES-030", why, "file"),))
                for p, why in parts]


@app.command("mllp")
def mllp(host: Annotated[str | None, typer.Option(help="interface (default HEALTHGRID_RESULTS__MLLP_HOST)")] = None,
         port: Annotated[int | None, typer.Option(help="TCP port (default HEALTHGRID_RESULTS__MLLP_PORT)")] = None,
         user: User = None, database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Listen for HL7 v2 messages over MLLP and answer each with ACK/NAK once stored."""
    from .mllp import ListenerConfig, serve

    settings, sessions = _sessions(database_url, data_dir)
    cfg = settings.results
    name = user or cfg.mllp_user
    if not name:
        raise typer.BadParameter("configure the integration account: HEALTHGRID_RESULTS__MLLP_USER or --user",
                                 param_hint="--user")
    with sessions() as session:
        actor = _actor(session, name, "mllp")
    config = ListenerConfig(host=host or cfg.mllp_host, port=port or cfg.mllp_port,
                            max_message_bytes=cfg.max_message_bytes, idle_seconds=cfg.mllp_idle_seconds,
                            workers=cfg.mllp_workers)
    ready = lambda p: console.print(f"MLLP listening on {config.host}:{p} as {name}")  # noqa: E731
    try:
        asyncio.run(serve(sessions, actor, config, ready=ready))
    except KeyboardInterrupt:
        console.print("stopped")
