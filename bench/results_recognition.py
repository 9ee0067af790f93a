"""The recognition lookup at order time (互认判定) with a million observations loaded.

Loads a region into a fresh database: the registry's ``small`` region, ``--observations``
/ 13.5 residents (the patient index's bulk generator), then a year of results for every one
of them (``results.synth``: bulk inserts, as the synthetic region does) — about
``--observations`` observations, their reports, imaging studies, EQA rows and decisions —
and prints the load rate. Then times ``ordering.check_prior_results`` one call after another
for ``--lookups`` random (patient, item) pairs: the doctor of a hospital that issued one of
the patient's results (a care relationship, so the real access decision runs) orders an item
the patient had (80 %) or another (20 %); each call decides, writes the decision row and two
audit rows and commits, with the background audit sealer running as in the server.

The baseline, timed in the same run on the same pairs, is the bare indexed SQL query of the
patient's prior reports of the item (what any lookup must at least do).

    python bench/results_recognition.py                      # SQLite, 1M observations
    HEALTHGRID_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python bench/results_recognition.py
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fresh_database  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from healthgrid.config import Settings  # noqa: E402
from healthgrid.db import make_engine, make_sessionmaker  # noqa: E402
from healthgrid.migrate import upgrade  # noqa: E402
from healthgrid.patients import synth as patients_synth  # noqa: E402
from healthgrid.registry import synth as registry_synth  # noqa: E402
from healthgrid.results import ordering  # noqa: E402
from healthgrid.results import synth as results_synth  # noqa: E402
from healthgrid.results.models import Observation, Report  # noqa: E402
from healthgrid.security import Sealer, session_info  # noqa: E402
from healthgrid.security import service as security  # noqa: E402
from healthgrid.security.domain import Actor  # noqa: E402

SETTINGS = {"env": "test", "secret_key": "bench-secret-key-0123456789abcdefghijklmnop",
            "security": {"pii_keys": {"b1": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
                         "pii_current_key": "b1", "blind_index_key": "bench-blind-index-key-0123456789abcdef"}}
PER_RESIDENT = 13.5  # observations a resident gets in the synthetic year (measured on the tiny region)
OTHER_ITEMS = ("GLU", "CBC", "CREA", "HBA1C", "XR-CHEST", "CT-HEAD", "US-ABD", "ALT", "TSH", "ECG")
BASELINE = text("SELECT id, issuer_org_id, issued_at, mark, status FROM res_report WHERE patient_id = :p"
                " AND (item = :i OR id IN (SELECT report_id FROM res_observation WHERE patient_id = :p"
                " AND item = :i))")


def load(url: str, observations: int, info: dict) -> tuple[float, float, dict]:
    """(seconds for the region and residents, seconds for the results, the results' counts)."""
    engine = make_engine(url)
    started = time.perf_counter()
    with engine.begin() as conn:
        registry_synth.generate(conn, size="small", seed=3)
    with engine.begin() as conn:
        patients_synth.generate(conn, size="small", seed=3, info=info, residents=int(observations / PER_RESIDENT),
                                progress=lambda _s, done, total: print(f"\r  residents {done:,}/{total:,}", end=""))
    print()
    region = time.perf_counter() - started
    started = time.perf_counter()
    with engine.begin() as conn:
        counts = results_synth.generate(conn, size="small", seed=3, info=info, share=1.0,
                                        progress=lambda _s, done, total: print(f"\r  results {done:,}/{total:,}",
                                                                               end=""))
    print()
    engine.dispose()
    return region, time.perf_counter() - started, counts


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def pairs(session, n: int, rng: random.Random) -> list[tuple[int, str, int]]:
    """(patient, item, ordering organisation): a random report's patient, ordered by one of the
    facilities that issued a result of theirs; the report's item, or another."""
    top = session.scalar(select(func.max(Report.id)))
    out: list[tuple[int, str, int]] = []
    while len(out) < n:
        r = session.get(Report, rng.randint(1, top))
        if r is None:
            continue
        item = r.item or session.scalar(select(Observation.item).where(Observation.report_id == r.id).limit(1))
        issuers = sorted(set(session.scalars(select(Report.issuer_org_id).where(Report.patient_id == r.patient_id))))
        out.append((r.patient_id, item if rng.random() < 0.8 else rng.choice(OTHER_ITEMS), rng.choice(issuers)))
    session.rollback()
    return out


def doctors(maker, orgs: set[int]) -> dict[int, Actor]:
    """A clinician account per ordering organisation, as a hospital would have."""
    out = {}
    with maker() as s:
        for org in sorted(orgs):
            user = security.create_user(s, Actor.system_actor("bench"), username=f"bench-doc-{org}",
                                        display_name="医生", password="Bench-pass-2026",
                                        grants=[security.parse_grant("clinician", "organization", org)], org_id=org)
            out[org] = security.actor_for(s, user, surface="api", client="127.0.0.1", mfa=True)
    return out


def run(url: str, args, info_settings: Settings) -> None:
    region_s, results_s, counts = load(url, args.observations, session_info(info_settings))
    n_obs = counts["res_observations"]
    print(f"{'PostgreSQL' if url.startswith('postgresql') else 'SQLite'}: region and"
          f" {int(args.observations / PER_RESIDENT):,} residents in {region_s:.0f} s; results in {results_s:.0f} s:"
          f" {n_obs:,} observations ({n_obs / results_s:,.0f} observations/s with their {counts['res_reports']:,}"
          f" reports, {counts['res_imaging_studies']:,} studies, {counts['res_decisions']:,} decisions)")
    engine = make_engine(url)
    sealer = Sealer()
    maker = make_sessionmaker(engine, info=session_info(info_settings, sealer))
    sealer.start(maker)
    try:
        rng = random.Random(args.seed)
        with maker() as s:
            work = pairs(s, args.lookups, rng)
        actors = doctors(maker, {org for _p, _i, org in work})
        times: dict[str, list[float]] = {"lookup": [], "baseline": []}
        outcomes: Counter[str] = Counter()
        with maker() as s:
            for patient, item, org in work[:20]:  # warm-up: caches, statement compilation
                ordering.check_prior_results(s, actors[org], patient_id=patient, item=item, ordering_org_id=org)
            for patient, item, org in work:
                t = time.perf_counter()
                view = ordering.check_prior_results(s, actors[org], patient_id=patient, item=item,
                                                    ordering_org_id=org)
                times["lookup"].append(time.perf_counter() - t)
                outcomes[view.outcome] += 1
                t = time.perf_counter()
                s.execute(BASELINE, {"p": patient, "i": item}).all()
                s.commit()
                times["baseline"].append(time.perf_counter() - t)
    finally:
        sealer.stop()
        engine.dispose()
    base = statistics.median(times["baseline"])
    print(f"{'':<34}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'p50 / baseline':>16}")
    for kind, label in (("lookup", "check_prior_results (decide, log)"), ("baseline", "bare indexed SQL query")):
        v = times[kind]
        print(f"{label:<34}{len(v):>6}{statistics.median(v) * 1e3:>10.2f}{percentile(v, 0.99) * 1e3:>10.2f}"
              f"{statistics.median(v) / base:>16.1f}")
    print("outcomes:", ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--observations", type=int, default=1_000_000)
    ap.add_argument("--lookups", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--pg", default=os.environ.get("HEALTHGRID_BENCH_DATABASE_URL"),
                    help="PostgreSQL admin URL (default: $HEALTHGRID_BENCH_DATABASE_URL); SQLite as well")
    args = ap.parse_args()
    settings = Settings(data_dir=Path(tempfile.mkdtemp()), **SETTINGS)
    for admin in [None] + ([args.pg] if args.pg else []):
        url, drop = fresh_database(admin, "recognition")
        try:
            upgrade(url)
            run(url, args, settings)
        finally:
            drop()


if __name__ == "__main__":
    main()
