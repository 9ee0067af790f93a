"""Registration latency of the master patient index with a region of residents loaded.

Loads ``--residents`` (default 1,000,000) synthetic residents into a fresh database (the
registry's ``city`` region, then the patient index's bulk generator), then times
``patients.service.register_patient`` one call after another, a mix of
  - a returning resident giving the ID number (deterministic link),
  - a returning resident without ID, name as a homophone or day and month swapped
    (probabilistic link or review, over the blocks),
  - a newcomer (blocks searched, nothing found, a new record),
and prints p50 / p99 per kind. The baseline, timed the same way in the same run, is the
smallest audited write transaction on the same database: one outbox row plus one audit row.

    python bench/registration.py                       # SQLite, 1M residents
    python bench/registration.py --pg postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fresh_database  # noqa: E402
from sqlalchemy import select  # noqa: E402

from healthgrid import outbox  # noqa: E402
from healthgrid.config import Settings  # noqa: E402
from healthgrid.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from healthgrid.migrate import upgrade  # noqa: E402
from healthgrid.patients import people, service  # noqa: E402
from healthgrid.patients import synth as patients_synth  # noqa: E402
from healthgrid.patients.models import Patient  # noqa: E402
from healthgrid.registry import queries as registry_queries  # noqa: E402
from healthgrid.registry import synth as registry_synth  # noqa: E402
from healthgrid.security import audit, session_info  # noqa: E402
from healthgrid.security.domain import Actor, AuditAction  # noqa: E402

SETTINGS = {"env": "test", "secret_key": "bench-secret-key-0123456789abcdefghijklmnop",
            "security": {"pii_keys": {"b1": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
                         "pii_current_key": "b1", "blind_index_key": "bench-blind-index-key-0123456789abcdef"}}


def load(url: str, residents: int, info: dict) -> float:
    started = time.perf_counter()
    engine = make_engine(url)
    with engine.begin() as conn:
        registry_synth.generate(conn, size="city", seed=3)
    with engine.begin() as conn:
        patients_synth.generate(conn, size="city", seed=3, info=info, residents=residents,
                                progress=lambda _s, done, total: print(f"\r  loading {done:,}/{total:,}", end=""))
    print()
    engine.dispose()
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def requests(session, n: int, rng: random.Random) -> list[tuple[str, service.PatientIn, int]]:
    """(kind, registration, organisation) for n registrations against the loaded index."""
    from healthgrid.patients import queries

    hospitals = registry_queries.hospital_ids(session)
    top = session.scalar(select(Patient.id).order_by(Patient.id.desc()).limit(1))
    out = []
    for i in range(n):
        p = session.get(Patient, rng.randint(1, top))
        view = queries.view(session, p, unmasked=True)
        kind = ("id", "no_id", "new")[i % 3]
        if kind == "id":
            data = service.PatientIn(name=p.name, resident_id=view.identifier("resident_id"))
        elif kind == "no_id":
            born = p.birth_date
            if born.day <= 12 and born.day != born.month:
                born = born.replace(month=born.day, day=born.month)
            data = service.PatientIn(name=p.name, sex=p.sex, birth_date=born, division_id=p.division_id)
        else:
            villages = [(p.division_id, p.township_id, "910102")]
            q = people.make_people(rng, 1, villages, date.today())[0]
            data = service.PatientIn(name=q.name, sex=q.sex, birth_date=q.birth_date, phone=q.phone,
                                     division_id=q.village_id)
        out.append((kind, data, rng.choice(hospitals)))
    session.rollback()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--residents", type=int, default=1_000_000)
    ap.add_argument("--registrations", type=int, default=300)
    ap.add_argument("--pg", help="PostgreSQL admin URL; default SQLite")
    args = ap.parse_args()
    settings = Settings(data_dir=Path(tempfile.mkdtemp()), **SETTINGS)
    info = session_info(settings)
    url, drop = fresh_database(args.pg, "registration")
    try:
        upgrade(url)
        seconds = load(url, args.residents, info)
        print(f"{'PostgreSQL' if args.pg else 'SQLite'}: {args.residents:,} residents loaded in {seconds:.0f} s")
        engine = make_engine(url)
        maker = make_sessionmaker(engine, info=info)
        actor = Actor.system_actor("bench")
        rng = random.Random(11)
        with maker() as s:
            work = requests(s, args.registrations, rng)
        times: dict[str, list[float]] = {"id": [], "no_id": [], "new": [], "baseline": []}
        outcomes: dict[str, int] = {}
        with maker() as s:
            for kind, data, org in work:
                t = time.perf_counter()
                reg = service.register_patient(s, actor, org_id=org, data=data)
                times[kind].append(time.perf_counter() - t)
                outcomes[f"{kind}:{reg.outcome}"] = outcomes.get(f"{kind}:{reg.outcome}", 0) + 1
                t = time.perf_counter()
                with transaction(s):
                    outbox.publish(s, "bench.baseline", {"n": 1})
                    audit.record(s, actor, AuditAction.CREATE, resource_type="Bench")
                times["baseline"].append(time.perf_counter() - t)
        base = statistics.median(times["baseline"])
        print(f"{'registrations':<24}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'p50 / baseline':>16}")
        for kind in ("id", "no_id", "new", "baseline"):
            v = times[kind]
            print(f"{kind:<24}{len(v):>6}{statistics.median(v) * 1e3:>10.2f}{percentile(v, 0.99) * 1e3:>10.2f}"
                  f"{statistics.median(v) / base:>16.1f}")
        allreg = times["id"] + times["no_id"] + times["new"]
        print(f"{'all registrations':<24}{len(allreg):>6}{statistics.median(allreg) * 1e3:>10.2f}"
              f"{percentile(allreg, 0.99) * 1e3:>10.2f}{statistics.median(allreg) / base:>16.1f}")
        print("outcomes:", ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
        engine.dispose()
    finally:
        drop()


if __name__ == "__main__":
    main()
