"""Key rotation: re-encrypt every column marked ``info={"pii": <purpose>}`` in any context's
models with the current key, in batches, one transaction per batch (a crash loses no
data: each value is either still under its old key, which is still configured, or under
the new one)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .. import schema
from ..db import transaction
from . import audit
from .domain import Actor, AuditAction
from .pii import keyring


def pii_columns() -> list[tuple[str, str, str]]:
    """(table, column, purpose) of every encrypted column in the schema."""
    found = []
    for table in schema.metadata.sorted_tables:
        for column in table.columns:
            if "pii" in column.info:
                found.append((table.name, column.name, column.info["pii"]))
    return found


def rotate(session: Session, actor: Actor, *, batch: int = 1000) -> dict[str, int]:
    ring = keyring(session)
    prefix = ring.current + ":"
    counts: dict[str, int] = {}
    for table_name, column_name, purpose in pii_columns():
        table = schema.metadata.tables[table_name]
        col, pk = table.c[column_name], table.primary_key.columns.values()[0]
        done, last_id = 0, None
        while True:
            stmt = select(pk, col).where(col.is_not(None), ~col.startswith(prefix)).order_by(pk).limit(batch)
            if last_id is not None:
                stmt = stmt.where(pk > last_id)
            rows = session.execute(stmt).all()
            session.rollback()
            if not rows:
                break
            with transaction(session):
                for row_id, value in rows:
                    session.execute(update(table).where(pk == row_id, col == value)
                                    .values({column_name: ring.encrypt(ring.decrypt(value, purpose), purpose)}))
            done += len(rows)
            last_id = rows[-1][0]
        counts[f"{table_name}.{column_name}"] = done
    audit.record(session, actor, AuditAction.KEY_ROTATION, resource_type="Key",
                 resource_id=ring.current, detail=counts)
    return counts
