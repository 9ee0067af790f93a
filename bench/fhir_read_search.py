"""FHIR read and search throughput on the generated ``city`` region, over HTTP.

HealthGrid (``healthgrid serve``) and a bare ASGI endpoint (``bench/bare_asgi.py``) are
served by the same uvicorn, one process each, the same way, in the same run; wrk drives
each with the same concurrency. The ratio HealthGrid / bare is the figure to compare.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import free_port, fresh_database, server, uvicorn_args, wrk  # noqa: E402
from sqlalchemy import select  # noqa: E402

from healthgrid.config import Settings  # noqa: E402
from healthgrid.db import make_engine, make_sessionmaker  # noqa: E402
from healthgrid.migrate import upgrade  # noqa: E402
from healthgrid.registry.models import Division, Organization  # noqa: E402
from healthgrid.security import service as security_service  # noqa: E402
from healthgrid.security import session_info  # noqa: E402
from healthgrid.security.domain import Actor  # noqa: E402
from healthgrid.synth import generate_region  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--database-url", help="PostgreSQL admin URL; default: a temp SQLite file")
    ap.add_argument("--size", default="city")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()

    url, drop = fresh_database(args.database_url, "fhir")
    data_dir = tempfile.mkdtemp(prefix="hgbench-")
    # dev settings keep their keys in the data dir: the server below uses the same dir.
    info = session_info(Settings(env="dev", data_dir=data_dir))
    try:
        upgrade(url)
        engine = make_engine(url)
        report = generate_region(engine, size=args.size, seed=1, info=info)
        with make_sessionmaker(engine, info=info)() as s:
            user = security_service.user_by_name(s, "demo-clinician")
            args.token = security_service.create_token(s, Actor.system_actor("bench"), user_id=user.id,
                                                       name="bench").token
        args.data_dir = data_dir
        with engine.connect() as conn:
            org_ids = conn.scalars(select(Organization.id)).all()
            levels = Division.level.in_(["county", "township"])
            names = conn.scalars(select(Division.name).where(levels)).all()
        engine.dispose()
        rng = random.Random(1)
        reads = [f"/fhir/Organization/{i}" for i in rng.sample(org_ids, min(500, len(org_ids)))]
        picked = rng.sample(names, min(200, len(names)))
        searches = [f"/fhir/Organization?name={quote(n[:2])}&_count=20" for n in picked]
        print(f"region '{args.size}': {report.counts['reg_organization']:,} organisations, "
              f"database {url.split('://')[0]}, wrk -t1 -c{args.connections} -d{args.seconds}s")
        results = measure(url, reads, searches, args)
    finally:
        drop()
    print_table(results)


def measure(url: str, reads: list[str], searches: list[str], args) -> dict[str, dict]:
    hg_port, bare_port = free_port(), free_port()
    hg_cmd = [sys.executable, "-m", "healthgrid.cli", "serve", "--port", str(hg_port), "--no-access-log",
              "--database-url", url]
    results = {}
    with server(uvicorn_args("bare_asgi:app", bare_port), bare_port,
                env={"PYTHONPATH": str(Path(__file__).parent)}) as bare:
        results["bare ASGI endpoint"] = wrk(bare, ["/x"], seconds=args.seconds, connections=args.connections)
    env = {"HEALTHGRID_ENV": "dev", "HEALTHGRID_DATA_DIR": args.data_dir}
    tok = args.token
    with server(hg_cmd, hg_port, env=env) as hg:
        wrk(hg, reads[:50], seconds=2, connections=args.connections, token=tok)  # warm-up
        # Our own app's floor: routing + a sync endpoint, no database.
        results["HealthGrid /healthz"] = wrk(hg, ["/healthz"], seconds=args.seconds,
                                             connections=args.connections)
        # The cost of authentication alone: the capability statement is public, and the
        # same small document behind a token is measured through /api/security/me.
        results["/api/security/me (token only)"] = wrk(hg, ["/api/security/me"], seconds=args.seconds,
                                                       connections=args.connections, token=tok)
        results["Organization/{id} read"] = wrk(hg, reads, seconds=args.seconds, connections=args.connections,
                                                token=tok)
        results["Organization?name= search"] = wrk(hg, searches, seconds=args.seconds,
                                                  connections=args.connections, token=tok)
    # The same read with outgoing validation (fhir.resources R4B) switched off: its cost.
    hg_port = free_port()
    hg_cmd[hg_cmd.index("--port") + 1] = str(hg_port)
    no_validation = {**env, "HEALTHGRID_FHIR__VALIDATE_OUTPUT": "false"}
    with server(hg_cmd, hg_port, env=no_validation) as hg:
        wrk(hg, reads[:50], seconds=2, connections=args.connections, token=tok)
        results["read, validation off"] = wrk(hg, reads, seconds=args.seconds, connections=args.connections,
                                              token=tok)
    return results


def print_table(results: dict[str, dict]) -> None:
    base = results["bare ASGI endpoint"]["rps"]
    print(f"{'scenario':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>9}{'ratio':>9}")
    for name, r in results.items():
        print(f"{name:<28}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}{r['non2xx']:>9}"
              f"{r['rps'] / base:>9.3f}")


if __name__ == "__main__":
    main()
