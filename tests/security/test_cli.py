"""The operator's commands as real processes: ``audit verify`` catches a changed row,
``token create`` prints a working token, and the SQLite file holds no plaintext ID number."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from tests.conftest import SECRETS, SESSION_INFO
from tests.factories import SYS, make_small_region
from tests.security.conftest import ID_NUMBER, PASSWORD

from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.migrate import upgrade
from healthgrid.security import service


def _env(db_url: str, tmp_path) -> dict[str, str]:
    sec = SECRETS["security"]
    return {"PATH": "/usr/bin:/bin", "HEALTHGRID_ENV": "test", "HEALTHGRID_DATABASE_URL": db_url,
            "HEALTHGRID_DATA_DIR": str(tmp_path), "HEALTHGRID_SECRET_KEY": SECRETS["secret_key"],
            "HEALTHGRID_SECURITY__PII_KEYS": json.dumps(sec["pii_keys"]),
            "HEALTHGRID_SECURITY__PII_CURRENT_KEY": sec["pii_current_key"],
            "HEALTHGRID_SECURITY__BLIND_INDEX_KEY": sec["blind_index_key"]}


def _cli(env, *args):
    return subprocess.run([sys.executable, "-m", "healthgrid.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_audit_verify_detects_a_tampered_row_and_the_file_holds_no_plaintext_id(tmp_path):
    db = tmp_path / "hg.sqlite3"
    url = f"sqlite:///{db}"
    upgrade(url)
    engine = make_engine(url)
    with make_sessionmaker(engine, info=dict(SESSION_INFO))() as s:
        region = make_small_region(s)
        from healthgrid.security.domain import Role, ScopeKind

        service.create_user(s, SYS, username="resident-1", display_name="R", password=PASSWORD,
                            grants=[service.GrantSpec(Role.RESIDENT, ScopeKind.SELF)], id_number=ID_NUMBER,
                            phone="13812345678")
        service.create_user(s, SYS, username="admin-1", display_name="A", password=PASSWORD,
                            grants=[service.GrantSpec(Role.FACILITY_ADMIN, ScopeKind.ORGANIZATION,
                                                      region.county_hospital.id)])
    engine.dispose()
    env = _env(url, tmp_path)
    ok = _cli(env, "audit", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "intact" in ok.stdout

    token = _cli(env, "token", "create", "--user", "admin-1", "--name", "his")
    assert token.returncode == 0 and token.stdout.strip().startswith("hg_")

    # Everything is on disk (WAL checkpointed): scan the raw bytes.
    with sqlite3.connect(db) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = b"".join(p.read_bytes() for p in tmp_path.glob("hg.sqlite3*"))
    assert ID_NUMBER.encode() not in data and b"13812345678" not in data
    assert token.stdout.strip().encode() not in data

    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE sec_audit SET username = 'nobody' WHERE seq = 3")
    broken = _cli(env, "audit", "verify")
    assert broken.returncode == 1
    assert "row 3: its content was changed" in broken.stdout

    with sqlite3.connect(db) as raw:
        last = raw.execute("SELECT max(seq) FROM sec_audit").fetchone()[0]
        raw.execute("DELETE FROM sec_audit WHERE seq = ?", (last,))
    cut = _cli(env, "audit", "verify")
    assert cut.returncode == 1 and "rows at the end were deleted" in cut.stdout
