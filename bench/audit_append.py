"""Audited writes: what the hash-chained audit trail costs a transaction.

Every audited transaction writes one row with its content seal; a background sealer links
the rows into the chain, many per transaction. This measures, with the same threads in
the same run:

- baseline: a transaction that updates one row of its own (an outbox-sized write);
- audited:  the same transaction plus ``audit.record`` (one chained row at commit).

The ratio audited / baseline is the figure to compare across machines.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fresh_database  # noqa: E402
from sqlalchemy import text  # noqa: E402

from healthgrid.config import Settings  # noqa: E402
from healthgrid.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from healthgrid.migrate import upgrade  # noqa: E402
from healthgrid.security import Sealer, audit, session_info  # noqa: E402
from healthgrid.security.domain import Actor, AuditAction  # noqa: E402


def run(maker, threads: int, seconds: float, audited: bool) -> float:
    stop = time.monotonic() + seconds
    counts = [0] * threads

    def worker(n: int) -> None:
        actor = Actor(user_id=n + 1, username=f"bench-{n}")
        with maker() as s:
            while time.monotonic() < stop:
                with transaction(s):
                    s.execute(text("UPDATE bench_counter SET n = n + 1 WHERE id = :id"), {"id": n})
                    if audited:
                        audit.record(s, actor, AuditAction.VIEW, resource_type="Bench", resource_id=counts[n])
                counts[n] += 1

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--database-url", help="PostgreSQL admin URL; default: a temp SQLite file")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    url, drop = fresh_database(args.database_url, "audit")
    try:
        upgrade(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE bench_counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
            for i in range(args.threads):
                conn.execute(text("INSERT INTO bench_counter VALUES (:i, 0)"), {"i": i})
        # As in the server: a background sealer chains the rows (security/sealer.py).
        sealer = Sealer()
        maker = make_sessionmaker(engine, info=session_info(Settings(env="dev", data_dir=tempfile.mkdtemp()),
                                                            sealer))
        sealer.start(maker)
        run(maker, args.threads, 1, audited=True)  # warm-up
        base = run(maker, args.threads, args.seconds, audited=False)
        chained = run(maker, args.threads, args.seconds, audited=True)
        sealer.stop()
        with maker() as s:
            report = audit.verify(s)
        engine.dispose()
    finally:
        drop()
    print(f"database {url.split('://')[0]}, {args.threads} threads, {args.seconds:.0f} s each")
    print(f"{'transaction':<34}{'tx/s':>10}")
    print(f"{'baseline (one-row update)':<34}{base:>10.0f}")
    print(f"{'audited (+ one chained row)':<34}{chained:>10.0f}")
    print(f"ratio audited / baseline: {chained / base:.2f}; chain verified: {report.ok} ({report.checked:,} rows,"
          f" {report.unsealed} left unchained)")


if __name__ == "__main__":
    main()
