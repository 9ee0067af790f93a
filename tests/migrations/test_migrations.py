"""The Alembic history builds exactly the models' schema, on SQLite and PostgreSQL."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from healthgrid.db import make_engine
from healthgrid.migrate import alembic_config, current, upgrade
from healthgrid.schema import metadata


def test_upgrade_from_empty_to_head_leaves_no_autogenerate_diff(fresh_databases):
    url = fresh_databases.create("mig")
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        assert diff == []
        assert "reg_organization" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back_again(fresh_databases):
    url = fresh_databases.create("mig")
    upgrade(url)
    head = current(url)
    command.downgrade(alembic_config(url), "base")
    engine = make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    upgrade(url)
    assert current(url) == head
