"""Result ingestion throughput: a million observations through the real pipeline.

Generates ``--reports`` laboratory reports (default 100,000) of ``--per-report`` observations
(default 10: 1M observations) for ``--patients`` residents (default one per 5 reports) at the
hospitals of a generated region, as HL7 v2 ORU^R01 messages (bytes as a LIS sends them) and as
FHIR R4 transaction Bundles (JSON bytes: Patient + DiagnosticReport + Observations by
urn:uuid). Each format is ingested into a fresh database through ``results.ingest`` exactly as
``import-hl7`` / a bulk FHIR import does: read (parse / validate each resource against the R4B
models), preheat, check, resolve the patient through the patient index (the first report of a
resident registers them), write all or none per message in chunks of ``--chunk`` messages per
transaction, keep every message encrypted with its report, audit each report and queue its
``results.available`` event. The integration account is a division-scoped facility
administrator (``results.submit`` checked per organisation).

Baselines measured in the same run on the same machine:
  - the storage floor: the same report and observation rows (values already computed) inserted
    with the DB-API's ``executemany`` into the same tables of another fresh database, one
    transaction per chunk;
  - python-hl7's bare ``hl7.parse`` of the same messages (text, no checks, no storage; the first
    20,000 of them).

    python bench/results_ingest.py                              # SQLite, 1M observations
    python bench/results_ingest.py --reports 5000               # a quick run
    HEALTHGRID_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1/postgres python bench/results_ingest.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hl7  # noqa: E402
from _common import fresh_database as common_fresh_database  # noqa: E402
from sqlalchemy import text  # noqa: E402

from healthgrid.config import Settings  # noqa: E402
from healthgrid.db import make_engine, make_sessionmaker  # noqa: E402
from healthgrid.migrate import upgrade  # noqa: E402
from healthgrid.registry import queries as registry_queries  # noqa: E402
from healthgrid.registry import synth as registry_synth  # noqa: E402
from healthgrid.results import bulk  # noqa: E402
from healthgrid.results.catalogue import load_catalogue  # noqa: E402
from healthgrid.security import service as security  # noqa: E402
from healthgrid.security import session_info  # noqa: E402
from healthgrid.security.domain import Actor, id_check_digit  # noqa: E402

SETTINGS = {"env": "test", "secret_key": "bench-secret-key-0123456789abcdefghijklmnop",
            "security": {"pii_keys": {"b1": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
                         "pii_current_key": "b1", "blind_index_key": "bench-blind-index-key-0123456789abcdef",
                         "argon2_time_cost": 1, "argon2_memory_kib": 1024}}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超"]
SYS = Actor.system_actor("bench")


# -- the data ----------------------------------------------------------------------------------------

def analytes() -> list[tuple[str, str, str, float, float]]:
    """(LOINC, name, unit, low, high) of the catalogue's numeric laboratory analytes."""
    out = []
    for item in load_catalogue().items.values():
        if item.category != "laboratory":
            continue
        for a in item.analytes:
            r = a.reference_range()
            if a.loinc and a.value_type == "NM" and r is not None and r.low is not None and r.high is not None:
                out.append((a.loinc, a.zh, a.unit or "1", r.low, r.high))
    return out


class People:
    def __init__(self, n: int, rng: random.Random):
        self.rows = []
        for i in range(n):
            born = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 60))
            sex = rng.choice("MF")
            seq = (i % 499) * 2 + (1 if sex == "M" else 2)
            county = f"{110101 + (i // 499) % 900:06d}"
            first17 = f"{county}{born:%Y%m%d}{seq:03d}"
            self.rows.append((first17 + id_check_digit(first17), rng.choice(SURNAMES) + rng.choice(GIVEN), sex, born,
                              f"MR{i:07d}"))  # the record number hospitals give this resident


def reports(n: int, per: int, people: People, orgs: list[str], rng: random.Random):
    """(org code, patient, filler number, issued, [(loinc, name, unit, value, low, high, flag)]):
    a resident's results come from their usual hospital, one in five from another one."""
    pool = analytes()
    start = datetime(2025, 1, 1, tzinfo=UTC)
    home = [rng.randrange(len(orgs)) for _ in people.rows]
    for i in range(n):
        who = rng.randrange(len(people.rows))
        person = people.rows[who]
        org = orgs[home[who]] if rng.random() < 0.8 else orgs[rng.randrange(len(orgs))]
        issued = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 330))
        values = []
        for loinc, name, unit, low, high in rng.sample(pool, per):
            value = round(rng.uniform(low * 0.7, high * 1.3), 2)
            flag = "H" if value > high else "L" if value < low else "N"
            values.append((loinc, name, unit, value, low, high, flag))
        yield org, person, f"B{i:09d}", issued, values


def as_hl7(org: str, person, filler: str, issued: datetime, values) -> bytes:
    rid, name, sex, born, mrn = person
    ts = issued.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")
    segs = [f"MSH|^~\\&|LIS|{org}^{org}^L|HEALTHGRID|HG|{ts}||ORU^R01^ORU_R01|M{filler}|P|2.5|||AL|NE|CHN|"
            "UNICODE UTF-8",
            f"PID|1||{rid}^^^公安部^ID~{mrn}^^^{org}^MR||{name[0]}^{name[1:]}||{born:%Y%m%d}|{sex}",
            f"OBR|1|P{filler}|{filler}|PANEL^生化^L|||{ts}|||||||||||||||{ts}||CH|F"]
    for n, (loinc, text_, unit, value, low, high, flag) in enumerate(values, 1):
        segs.append(f"OBX|{n}|NM|{loinc}^{text_}^LN||{value}|{unit}|{low:g}-{high:g}|{flag}|||F|||{ts}")
    return ("\r".join(segs) + "\r").encode("utf-8")


def as_fhir(org_id: int, person, filler: str, issued: datetime, values) -> bytes:
    rid, name, sex, born, _ = person
    when = issued.isoformat()
    obs = [{"fullUrl": f"urn:uuid:{filler}-o{n}", "request": {"method": "POST", "url": "Observation"},
            "resource": {"resourceType": "Observation", "status": "final", "subject": {"reference": "urn:uuid:p"},
                         "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": text_}]},
                         "effectiveDateTime": when, "valueQuantity": {"value": value, "unit": unit},
                         "referenceRange": [{"low": {"value": low}, "high": {"value": high}}],
                         "interpretation": [{"coding": [{"code": flag}]}]}}
           for n, (loinc, text_, unit, value, low, high, flag) in enumerate(values)]
    bundle = {"resourceType": "Bundle", "type": "transaction", "identifier": {"system": "urn:bench", "value": filler},
              "entry": [{"fullUrl": "urn:uuid:p", "request": {"method": "POST", "url": "Patient"},
                         "resource": {"resourceType": "Patient", "name": [{"text": name}],
                                      "identifier": [{"system": "urn:oid:2.16.156.10011.1.3", "value": rid}],
                                      "gender": "male" if sex == "M" else "female", "birthDate": born.isoformat()}},
                        {"fullUrl": f"urn:uuid:{filler}", "request": {"method": "POST", "url": "DiagnosticReport"},
                         "resource": {"resourceType": "DiagnosticReport", "status": "final",
                                      "identifier": [{"value": filler}], "subject": {"reference": "urn:uuid:p"},
                                      "category": [{"coding": [{"code": "LAB"}]}],
                                      "code": {"coding": [{"system": "urn:bench", "code": "PANEL"}]},
                                      "issued": when, "performer": [{"reference": f"Organization/{org_id}"}],
                                      "result": [{"reference": o["fullUrl"]} for o in obs]}}, *obs]}
    return json.dumps(bundle, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- the runs ------------------------------------------------------------------------------------------

def fresh_database(admin_url: str | None, label: str):
    """A new database; a SQLite one (a gigabyte or two at 1M observations) is removed afterwards."""
    url, drop = common_fresh_database(admin_url, label)
    if admin_url:
        return url, drop
    return url, lambda: shutil.rmtree(Path(url.removeprefix("sqlite:///")).parent, ignore_errors=True)


def prepare(url: str, info: dict) -> tuple[list[tuple[int, str]], Actor]:
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        registry_synth.generate(conn, size="tiny", seed=3)
    with make_sessionmaker(engine, info=info)() as s:
        hospitals = registry_queries.hospital_ids(s)
        orgs = [(h, registry_queries.organization_by_id(s, h).code) for h in hospitals]
        root = registry_queries.root_division_id(s)
        user = security.create_user(s, SYS, username="lis-gateway", display_name="LIS gateway",
                                    password="Bench-pass-1234",
                                    grants=[security.parse_grant("facility_admin", "division", root)])
        actor = security.actor_for(s, user, surface="file", client=None, mfa=True)
    engine.dispose()
    return orgs, actor


def run_pipeline(url: str, info: dict, actor: Actor, messages, fmt: str, chunk: int, workers: int) -> dict:
    """The messages through ``results.bulk``: read (parse / validate) in a worker process while
    the previous chunk is written, as ``healthgrid results import-hl7`` does."""
    engine = make_engine(url)
    statuses: dict[str, int] = {}
    observations = 0
    read = bulk.read_hl7_chunk if fmt == "hl7" else bulk.read_fhir_transactions
    chunks = (messages[i:i + chunk] for i in range(0, len(messages), chunk))
    with make_sessionmaker(engine, info=info)() as s:
        started = time.perf_counter()
        for out in bulk.import_chunks(s, actor, chunks, read, workers=workers):
            for report in out:
                statuses[report["status"]] = statuses.get(report["status"], 0) + 1
                observations += report["created"].get("Observation", 0)
        seconds = time.perf_counter() - started
        rows = {t: s.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("res_report", "res_observation", "res_message", "pat_patient", "outbox_event", "sec_audit")}
    engine.dispose()
    return {"seconds": seconds, "observations": observations, "statuses": statuses, "rows": rows}


def run_floor(url: str, rows, chunk: int) -> dict:
    """The same report and observation rows with the DB-API's executemany, a chunk per transaction."""
    engine = make_engine(url)
    now = datetime.now(UTC).replace(tzinfo=None)
    report_sql = ("INSERT INTO res_report (id, patient_id, issuer_org_id, lab_org_id, ordering_org_id, filler_number,"
                  " category, code, display, status, issued_at, created_at, updated_at, version)"
                  f" VALUES ({', '.join(['?'] * 14)})")
    obs_sql = ("INSERT INTO res_observation (report_id, patient_id, seq, item, code_system, code, display, value_num,"
               f" unit, ref_low, ref_high, flag, status, effective_at, issuer_org_id) VALUES ({', '.join(['?'] * 15)})")
    with engine.begin() as conn:
        mark = "?" if engine.dialect.name == "sqlite" else "%s"
        conn.exec_driver_sql("INSERT INTO pat_patient (id, name, name_pinyin, name_key, sex, active, created_at,"
                             f" updated_at, version) VALUES (1, 'x', 'x', 'x', 'U', true, {mark}, {mark}, 1)",
                             (now, now))
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name != "sqlite":
            report_sql, obs_sql = report_sql.replace("?", "%s"), obs_sql.replace("?", "%s")
        n = 0
        for start in range(0, len(rows), chunk):
            reps, obs = [], []
            for org_id, filler, issued, values in rows[start:start + chunk]:
                n += 1
                reps.append((n, 1, org_id, org_id, org_id, filler, "LAB", "PANEL", "PANEL", "final", issued, now, now,
                             1))
                obs += [(n, 1, i, None, "http://loinc.org", loinc, name, value, unit, low, high, flag, "final", issued,
                         org_id) for i, (loinc, name, unit, value, low, high, flag) in enumerate(values, 1)]
            cur.executemany(report_sql, reps)
            cur.executemany(obs_sql, obs)
            raw.commit()
    finally:
        raw.close()
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"seconds": seconds, "observations": sum(len(r[3]) for r in rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=100_000)
    ap.add_argument("--per-report", type=int, default=10)
    ap.add_argument("--patients", type=int, default=0, help="default: reports / 5")
    ap.add_argument("--chunk", type=int, default=500)
    ap.add_argument("--formats", default="hl7,fhir")
    ap.add_argument("--workers", type=int, default=1, help="reader processes beside the writer (0: none)")
    ap.add_argument("--pg", default=os.environ.get("HEALTHGRID_BENCH_DATABASE_URL"))
    args = ap.parse_args()
    info = session_info(Settings(data_dir=Path(tempfile.mkdtemp()), **SETTINGS))
    backend = "PostgreSQL" if args.pg else "SQLite"
    people = People(args.patients or max(1, args.reports // 5), random.Random(5))
    print(f"{backend}: {args.reports:,} reports x {args.per_report} observations = "
          f"{args.reports * args.per_report:,} observations, {len(people.rows):,} patients, chunks of {args.chunk}")
    results = {}
    floor_rows = None
    for fmt in args.formats.split(","):
        url, drop = fresh_database(args.pg, f"results_{fmt}")
        try:
            orgs, actor = prepare(url, info)
            codes = [c for _, c in orgs]
            ids = {c: i for i, c in orgs}
            data = list(reports(args.reports, args.per_report, people, codes, random.Random(9)))
            if floor_rows is None:
                floor_rows = [(ids[o], f, issued.replace(tzinfo=None), v) for o, _, f, issued, v in data]
            messages = [as_hl7(*r) if fmt == "hl7" else as_fhir(ids[r[0]], *r[1:]) for r in data]
            results[fmt] = run_pipeline(url, info, actor, messages, fmt, args.chunk, args.workers)
            del messages
            if fmt == "hl7":  # the bare parse of (up to) 20,000 of the same messages
                sample = [as_hl7(*r).decode() for r in data[:20_000]]
                t = time.perf_counter()
                for m in sample:
                    hl7.parse(m)
                results["hl7.parse"] = {"seconds": time.perf_counter() - t,
                                        "observations": len(sample) * args.per_report}
        finally:
            drop()
    url, drop = fresh_database(args.pg, "results_floor")
    try:
        prepare(url, info)
        results["floor"] = run_floor(url, floor_rows, args.chunk)
    finally:
        drop()
    report(results, backend)


def report(results: dict, backend: str) -> None:
    floor = results["floor"]["observations"] / results["floor"]["seconds"]
    print(f"\n{'run':<46}{'observations':>14}{'seconds':>10}{'obs/s':>10}{'/ floor':>9}")
    names = {"hl7": "HL7 v2 ORU^R01 through the pipeline", "fhir": "FHIR transaction Bundles through the pipeline",
             "floor": f"floor: executemany of the same rows ({backend})", "hl7.parse": "python-hl7 bare hl7.parse"}
    for key in ("hl7", "fhir", "floor", "hl7.parse"):
        if key not in results:
            continue
        r = results[key]
        rate = r["observations"] / r["seconds"]
        print(f"{names[key]:<46}{r['observations']:>14,}{r['seconds']:>10.1f}{rate:>10,.0f}{rate / floor:>9.3f}")
    for key in ("hl7", "fhir"):
        if key in results:
            print(f"{key}: messages {results[key]['statuses']}; rows {results[key]['rows']}")


if __name__ == "__main__":
    main()
