"""Test fixtures: a migrated database per run (SQLite by default, PostgreSQL when
HEALTHGRID_TEST_DATABASE_URL points at a server), a per-test transaction rolled back at the
end, an HTTP client, and a live server on a generated region for real FHIR clients and the
browser."""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from healthgrid.app import create_app
from healthgrid.config import Settings
from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.http import get_session
from healthgrid.migrate import upgrade
from healthgrid.security import session_info
from healthgrid.security.domain import Actor
from healthgrid.security.http import optional_actor

PG_ADMIN_URL = os.environ.get("HEALTHGRID_TEST_DATABASE_URL", "")
_counter = itertools.count()

# Secrets of the test settings (env=test refuses placeholders, like production).
SECRETS = {
    "secret_key": "test-secret-key-0123456789abcdefghijklmnop",
    "security": {"pii_keys": {"t1": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
                 "pii_current_key": "t1",
                 "blind_index_key": "test-blind-index-key-0123456789abcdefghij",
                 # cheap hashing in tests only; production keeps RFC 9106's cost
                 "argon2_time_cost": 1, "argon2_memory_kib": 1024},
}


def make_settings(**kw) -> Settings:
    return Settings(env="test", **{**SECRETS, **kw})


SESSION_INFO = session_info(make_settings(data_dir="."))


def on_postgres() -> bool:
    return PG_ADMIN_URL.startswith("postgresql")


def pytest_collection_modifyitems(config, items):
    if on_postgres():
        # The PostgreSQL pass runs what touches a database (every database fixture comes
        # from ``fresh_databases``); pure tests already ran on the SQLite pass of CI.
        pure = [item for item in items if "fresh_databases" not in getattr(item, "fixturenames", ())]
        if pure:
            config.hook.pytest_deselected(items=pure)
            items[:] = [item for item in items if "fresh_databases" in getattr(item, "fixturenames", ())]
        return
    skip = pytest.mark.skip(reason="PostgreSQL-only; set HEALTHGRID_TEST_DATABASE_URL to run")
    for item in items:
        if "pg" in item.keywords:
            item.add_marker(skip)


class FreshDatabases:
    """Creates empty databases (SQLite files or PostgreSQL databases) and drops them."""

    def __init__(self, tmp_dir):
        self.tmp_dir = tmp_dir
        self.created: list[str] = []

    def create(self, label: str) -> str:
        name = f"hgtest_{label}_{os.getpid()}_{next(_counter)}"
        if not on_postgres():
            return f"sqlite:///{self.tmp_dir / (name + '.sqlite3')}"
        admin = create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.created.append(name)
        url = make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
        return url.render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self.created:
            return
        admin = create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def fresh_databases(tmp_path_factory) -> Iterator[FreshDatabases]:
    dbs = FreshDatabases(tmp_path_factory.mktemp("db"))
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def database_url(fresh_databases) -> str:
    url = fresh_databases.create("main")
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url):
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine) -> Iterator[Session]:
    """A session whose commits become savepoints of an outer transaction rolled back at
    the end of the test (SQLAlchemy's 'join an external transaction' recipe)."""
    conn = engine.connect()
    outer = conn.begin()
    s = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False,
                info=dict(SESSION_INFO))
    try:
        yield s
    finally:
        s.close()
        outer.rollback()
        conn.close()


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:
    return make_settings(data_dir=tmp_path, database_url=database_url)


async def _platform_actor(request: Request) -> Actor:
    """Tests of a context's behaviour act as the platform itself; authentication and scope
    are tested with real users, tokens and cookies in tests/security (``secure_app``)."""
    actor = Actor.system_actor("tests", surface="api")
    request.state.actor = actor
    request.state.web_user = {"name": "tests", "username": "tests", "perms": {str(p) for p in actor.perms()},
                              "csrf": "", "mfa": True, "needs_mfa": False}
    return actor


@pytest.fixture
def app(settings, session):
    application = create_app(settings)
    application.dependency_overrides[get_session] = lambda: session
    application.dependency_overrides[optional_actor] = _platform_actor
    yield application
    application.state.engine.dispose()


@pytest.fixture
def secure_app(settings, session):
    """The app with its real authentication: requests need a token or a session cookie."""
    application = create_app(settings)
    application.dependency_overrides[get_session] = lambda: session
    yield application
    application.state.engine.dispose()


@pytest.fixture
def secure_client(secure_app) -> Iterator[TestClient]:
    with TestClient(secure_app) as c:
        yield c


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def region_url(fresh_databases) -> str:
    """A database holding the generated ``tiny`` region (seed 7), migrated to head."""
    from healthgrid.synth import generate_region

    url = fresh_databases.create("region")
    upgrade(url)
    eng = make_engine(url)
    try:
        generate_region(eng, size="tiny", seed=7, info=SESSION_INFO)
    finally:
        eng.dispose()
    return url


@pytest.fixture(scope="session")
def region_session(region_url) -> Iterator[Session]:
    eng = make_engine(region_url)
    # A long-lived reader: DEFERRED, so its open transaction does not hold SQLite's write
    # lock against the live server and the other tests on this database.
    with make_sessionmaker(eng.execution_options(sqlite_begin="DEFERRED"), info=dict(SESSION_INFO))() as s:
        yield s
    eng.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(region_url, tmp_path_factory) -> Iterator[str]:
    """The real app under uvicorn on 127.0.0.1, serving the generated tiny region."""
    settings = make_settings(data_dir=tmp_path_factory.mktemp("live"), database_url=region_url)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("live server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_token(region_url) -> str:
    """An API token of the generated region's demo clinician, for real clients."""
    from healthgrid.security import service

    eng = make_engine(region_url)
    try:
        with make_sessionmaker(eng, info=dict(SESSION_INFO))() as s:
            user = service.user_by_name(s, "demo-clinician")
            return service.create_token(s, Actor.system_actor("tests"), user_id=user.id, name="live tests").token
    finally:
        eng.dispose()
