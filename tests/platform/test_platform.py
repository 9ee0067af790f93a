"""Platform pieces: settings, the transaction helper, the outbox."""

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from healthgrid.config import Settings
from healthgrid.db import transaction
from healthgrid.outbox import OutboxEvent, deliver_pending, publish


def test_settings_default_to_sqlite_under_the_data_dir(tmp_path):
    s = Settings(data_dir=tmp_path)
    assert s.effective_database_url == f"sqlite:///{tmp_path.resolve()}/healthgrid.sqlite3"


def test_settings_read_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HEALTHGRID_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("HEALTHGRID_FHIR__MAX_COUNT", "50")
    s = Settings()
    assert s.effective_database_url == "postgresql+psycopg://u@h/db"
    assert s.fhir.max_count == 50


def test_outside_dev_placeholder_or_missing_secrets_are_refused():
    real = {"secret_key": "a-real-and-long-secret-value-0123456789",
            "security": {"pii_keys": {"k1": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
                         "pii_current_key": "k1", "blind_index_key": "b" * 40}}
    for env in ("prod", "test"):
        with pytest.raises(ValidationError, match="SECRET_KEY"):
            Settings(env=env)
        with pytest.raises(ValidationError, match="PII_KEYS"):
            Settings(env=env, secret_key=real["secret_key"])
        with pytest.raises(ValidationError, match="BLIND_INDEX_KEY"):
            Settings(env=env, secret_key=real["secret_key"],
                     security={**real["security"], "blind_index_key": "change-me"})
        assert Settings(env=env, **real).env == env
    assert Settings(env="dev").env == "dev"  # the demo runs with keys kept in its data dir


def test_unknown_database_backend_is_refused():
    with pytest.raises(ValidationError, match="sqlite:// or postgresql://"):
        Settings(database_url="mysql://x")


def test_nested_transactions_join_and_an_error_rolls_back_everything(session):
    with pytest.raises(RuntimeError), transaction(session):
        publish(session, "test.outer", {"n": 1})
        with transaction(session):
            publish(session, "test.inner", {"n": 2})
        raise RuntimeError("boom")
    assert session.scalars(select(OutboxEvent).where(OutboxEvent.topic.like("test.%"))).all() == []


def test_outbox_delivers_each_event_once_and_retries_a_failing_handler(session):
    seen: list[int] = []

    def ok(_s, payload):
        seen.append(payload["n"])

    def broken(_s, payload):
        raise ValueError("receiver down")

    with transaction(session):
        publish(session, "test.ok", {"n": 1})
        publish(session, "test.broken", {"n": 2})
    handlers = {"test.ok": [ok], "test.broken": [broken]}
    assert deliver_pending(session, handlers) == 1
    assert deliver_pending(session, handlers) == 0
    assert seen == [1]
    failed = session.scalar(select(OutboxEvent).where(OutboxEvent.topic == "test.broken"))
    assert failed.delivered_at is None
    assert failed.attempts == 2
    assert "receiver down" in failed.last_error


def test_sqlite_writers_of_one_process_queue_and_every_ending_releases_the_queue(tmp_path):
    import threading
    import time

    from sqlalchemy import text

    from healthgrid.db import make_engine, make_sessionmaker, transaction

    engine = make_engine(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    maker = make_sessionmaker(engine)
    with maker() as s, pytest.raises(RuntimeError), transaction(s):
        s.execute(text("INSERT INTO t VALUES (1)"))
        raise RuntimeError("rolled back")
    order: list[str] = []

    def second() -> None:
        with maker() as s2, transaction(s2):
            s2.execute(text("INSERT INTO t VALUES (2)"))
            order.append("second")

    with maker() as s, transaction(s):
        s.execute(text("SELECT count(*) FROM t")).scalar()
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.2)  # the second writer waits in the queue, it does not fail
        order.append("first")
        s.execute(text("INSERT INTO t VALUES (3)"))
    t.join(timeout=10)
    assert order == ["first", "second"]
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT n FROM t")).scalars()) == [2, 3]
    engine.dispose()
