"""Synthetic region generation time per size, beside a raw DB-API baseline.

For each size: ``generate_region`` end to end (generation + bulk write through SQLAlchemy
Core), then — in the same run, into a second fresh database — the very same rows written
with the driver's own ``executemany`` (generation timed in both). The ratio says what our
write path costs over the bare driver; the seconds answer "province in under a minute".
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fresh_database  # noqa: E402

from healthgrid.config import Settings  # noqa: E402
from healthgrid.db import make_engine  # noqa: E402
from healthgrid.migrate import upgrade  # noqa: E402
from healthgrid.registry import synth as registry_synth  # noqa: E402
from healthgrid.security import session_info  # noqa: E402
from healthgrid.synth import generate_region  # noqa: E402


def raw_write(url: str, size: str, seed: int) -> tuple[float, int]:
    """Generate the same rows the same way, then write them with the bare driver."""
    started = time.perf_counter()
    builder = registry_synth.RegionBuilder(random.Random(seed), registry_synth.SIZES[size],
                                           datetime.now(UTC).replace(microsecond=0))
    builder.build(seed)
    builder.finish_city_alliances()
    builder.multi_site_practice()
    engine = make_engine(url)
    raw = engine.raw_connection()
    rows_written = 0
    try:
        cur = raw.cursor()
        paramstyle = "?" if engine.dialect.name == "sqlite" else "%s"
        if engine.dialect.name == "sqlite":
            cur.execute("BEGIN")  # our engine runs pysqlite in autocommit; BEGIN as SQLAlchemy does
        for model in registry_synth.WRITE_ORDER:
            rows = builder.rows.tables[model]
            if not rows:
                continue
            cols = list(rows[0])
            sql = (f"INSERT INTO {model.__tablename__} ({', '.join(cols)}) "
                   f"VALUES ({', '.join([paramstyle] * len(cols))})")
            values = [tuple(_plain(r[c]) for c in cols) for r in rows]
            cur.executemany(sql, values)
            rows_written += len(rows)
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    return time.perf_counter() - started, rows_written


def _plain(v):
    return v.replace(tzinfo=None).isoformat(" ") if isinstance(v, datetime) else v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--database-url", help="PostgreSQL admin URL; default: temp SQLite files")
    ap.add_argument("--sizes", default="tiny,small,city,province")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    backend = "postgresql" if args.database_url else "sqlite"
    print(f"backend {backend}, seed {args.seed}")
    print(f"{'size':<10}{'seconds':>9}{'rows':>10}{'rows/s':>10}{'raw s':>9}{'ratio':>8}  counts")
    for size in args.sizes.split(","):
        url, drop = fresh_database(args.database_url, f"synth{size}")
        url2, drop2 = fresh_database(args.database_url, f"raw{size}")
        try:
            upgrade(url)
            upgrade(url2)
            engine = make_engine(url)
            info = session_info(Settings(env="dev", data_dir=tempfile.mkdtemp(prefix="hgsynth-")))
            report = generate_region(engine, size=size, seed=args.seed, info=info)
            engine.dispose()
            raw_seconds, raw_rows = raw_write(url2, size, args.seed)
        finally:
            drop()
            drop2()
        rows = sum(report.counts.values())
        assert rows == raw_rows
        counts = ", ".join(f"{k.removeprefix('reg_')} {v:,}" for k, v in report.counts.items())
        print(f"{size:<10}{report.seconds:>9.2f}{rows:>10,}{rows / report.seconds:>10,.0f}"
              f"{raw_seconds:>9.2f}{report.seconds / raw_seconds:>8.2f}  {counts}")


if __name__ == "__main__":
    main()
