"""Shared results' share of the synthetic region: a year of laboratory and imaging results for
the residents, the labs' EQA results, and every order-time recognition decision, written in
bulk (no service calls), deterministic for a seed (and ``now``).

Who is tested, where and why (each resident of the generated region; shares per year):
- the elderly health check (老年人健康管理, ≥ 65: 70 %; 40–64: 25 %) at the township centre or
  the county hospital: blood count, urine, chemistry, ECG, abdominal ultrasound;
- diabetes (6–14 % of adults by age): HbA1c, glucose, creatinine and lipids quarterly at the
  township centre, once a year at the county hospital; HbA1c drifts per patient, glucose
  follows it; chronic kidney disease (6 % of ≥ 50): creatinine rising, three checks a year;
- acute illness (0.35 episodes a person, more in winter) at the township centre or the county
  hospital, referred up the same or next days (30 %), seen again at the township centre 5–20
  days later (50 %), or at another county's hospital (10 %);
- stroke workups (4 % of ≥ 55: head CT at the county hospital, MRI at the city hospital) and
  surgery (3 %: outpatient workup, then the pre-operative panel at admission).
Values come from the catalogue's reference ranges by sex (7 % outside them); imaging reports
carry the study's metadata (no DICOM, no PACS link) and a conclusion; 35 % of township
centres send their specimens to the county hospital's lab (区域检验中心). Reports carry the
province's HR mark on the items its list recognises at the issuer's level (4 % forget it);
2 % are corrected. Labs pass EQA per item and year, 3 % fail.

Every order is checked as ``ordering.check_prior_results`` would (``recognition.decide`` over
the results so far) and logged: no prior, none recognisable (expired, scope, EQA ...), or
recognisable — then the doctor recognises it (80 % at township centres, 62 % at county and
45 % at city hospitals, 35 % before surgery: the test is not done) or repeats with a reason
(before surgery: mostly pre_major_procedure; after an acute turn: changed_condition,
fast_changing, emergency; otherwise judgement, the patient's request ...). Checks of the last
day are sometimes still unanswered. No timestamp passes ``now``.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, text

from ..db import utcnow
from . import recognition as rec
from .catalogue import Catalogue, load_catalogue
from .domain import CN_TZ, EqaFacts, local_day
from .models import Decision, Eqa, ImagingStudy, Observation, Report
from .synth_results import (
    ECG_TEXT,
    IMAGING,
    Chronic,
    Facility,
    RegionFacts,
    Resident,
    age_on,
    bulk_insert,
    chronic_state,
    seasonal,
    study_uid,
    value,
)

Progress = Callable[[str, int, int], None]
SYNTH_USER = "system:synth"
SHARE = {"tiny": 1.0, "small": 1.0, "city": 0.4, "province": 0.08}  # residents given a year of results
BATCH = 20_000
CHEM = ("GLU", "ALT", "AST", "TBIL", "CREA", "UREA", "UA", "TC", "TG", "HDLC", "LDLC", "K", "NA", "CL")
PANELS = {"checkup": ("CBC", "URINE", *CHEM, "ECG", "US-ABD"), "diabetes": ("HBA1C", "GLU", "CREA", "TC", "TG", "LDLC"),
          "kidney": ("CREA", "UREA", "K", "NA", "URINE"), "acute": ("CBC", "GLU", "CREA", "XR-CHEST"),
          "followup": ("CBC", "GLU", "CREA", "XR-CHEST"), "stroke": ("CT-HEAD", "CBC", "GLU", "K", "NA", "ECG"),
          "stroke_up": ("MR-BRAIN", "CT-HEAD", "CBC", "GLU", "TC", "LDLC", "ECG"),
          "workup": ("CBC", *CHEM[:6], "XR-CHEST", "ECG", "US-ABD"),
          "preop": ("CBC", "PT", "APTT", "HBSAG", "HIV", "TPAB", "HCV", *CHEM[:6], "ECG", "XR-CHEST")}
RECOGNISE = {"L1": 0.8, "L2": 0.62}  # the doctor recognises an offered result; 0.45 above L2
REASONS = {
    "preop": (("pre_major_procedure", 70), ("physician_judgement", 20), ("other", 10)),
    "acute": (("changed_condition", 40), ("fast_changing", 25), ("emergency", 15), ("physician_judgement", 10),
              ("patient_request", 5), ("other", 5)),
    None: (("physician_judgement", 35), ("patient_request", 25), ("changed_condition", 20), ("too_old", 10),
           ("other", 10)),
}
OTHER_TEXT = ("外院报告信息不全，无法核对检测方法", "患者对外院结果存疑，要求本院复查",
              "外院报告为手写，无互认标识二维码")


def generate(conn: Connection, *, size: str, seed: int, info: dict[str, Any], progress: Progress | None = None,
             now: datetime | None = None, share: float | None = None) -> dict[str, int]:
    """Results, EQA and decisions for the generated region (``share`` overrides the size's
    share of residents, e.g. for the benchmark's million observations)."""
    facts = RegionFacts(conn)
    if not facts.residents or not facts.facilities:
        return {"res_reports": 0}
    rng = random.Random(seed * 7919 + 23)
    gen = _Builder(conn, facts, load_catalogue(), rng, now or utcnow(), seed)
    gen.eqa()
    people = [r for r in facts.residents if rng.random() < (SHARE.get(size, 1.0) if share is None else share)]
    for i, resident in enumerate(people):
        gen.resident(resident)
        if len(gen.rows[Observation]) >= BATCH:
            gen.flush()  # in batches: a province's results never sit in memory at once
        if progress and i % 2000 == 0:
            progress("results", i, len(people))
    gen.flush()
    gen.finish()
    return gen.report()


class _Builder:
    def __init__(self, conn: Connection, facts: RegionFacts, cat: Catalogue, rng: random.Random, now: datetime,
                 seed: int):
        self.conn, self.facts, self.cat, self.rng, self.now, self.seed = conn, facts, cat, rng, now, seed
        self.start = now - timedelta(days=365)
        self.ids = {m: conn.scalar(select(func.max(m.id))) or 0 for m in (Report, Observation, ImagingStudy,
                                                                          Decision)}
        self.rows: dict[type, list[dict[str, Any]]] = defaultdict(list)
        self.listed = {f.id: cat.recognised_items(f.region, f.level) for f in facts.facilities}
        self.category: dict[int, str] = {}
        self.central_lab = {}  # township centre -> the county hospital whose lab tests its specimens
        for f in facts.facilities:
            if f.level == "L1" and rng.random() < 0.35:
                hospital = facts.county_hospitals.get(f.county)
                if hospital:
                    self.central_lab[f.id] = hospital[0].id
        self.outcomes: Counter[str] = Counter()
        self.written: Counter[type] = Counter()

    def next_id(self, model: type) -> int:
        self.ids[model] += 1
        return self.ids[model]

    # -- EQA ------------------------------------------------------------------------------------------
    def eqa(self) -> None:
        """Every lab, for each item it may report, this year and last: passed, or failed (3 %)."""
        have = set(self.conn.execute(select(Eqa.lab_org_id, Eqa.item, Eqa.year)).all())
        next_id = (self.conn.scalar(select(func.max(Eqa.id))) or 0) + 1  # ids given here, as the others
        years = sorted({self.start.astimezone(CN_TZ).year, self.now.astimezone(CN_TZ).year})
        rows = []
        for f in self.facts.facilities:
            items = sorted(i for i in self.cat.items if f.level != "L1" or i in self.listed[f.id])
            for item in items:
                for year in years:
                    if (f.id, item, year) not in have:
                        rows.append({"id": next_id + len(rows), "lab_org_id": f.id, "item": item, "year": year,
                                     "passed": self.rng.random() >= 0.03, "provider": "省临床检验中心",
                                     "recorded_by": SYNTH_USER, "recorded_at": self.start})
        for start in range(0, len(rows), BATCH):
            self.conn.execute(insert(Eqa.__table__), rows[start:start + BATCH])
        self.eqa_count = len(rows)
        self.facts_eqa = EqaFacts({"lab": str(lab), "item": item, "year": year,
                                   "status": "passed" if ok else "failed"}
                                  for lab, item, year, ok in self.conn.execute(
                                      select(Eqa.lab_org_id, Eqa.item, Eqa.year, Eqa.passed)))

    # -- a resident's year ----------------------------------------------------------------------------
    def resident(self, r: Resident) -> None:
        rng, f = self.rng, self.facts
        age = age_on(r.born, local_day(self.now))
        state = chronic_state(rng, age)
        centre, county = f.centre.get(r.township), f.county_hospital(rng, r)
        plan: list[tuple[float, Facility | None, str, str | None]] = []  # (day, where, panel, reason kind)
        if rng.random() < (0.7 if age >= 65 else 0.25 if age >= 40 else 0.0):
            plan.append((rng.uniform(0, 365), centre if rng.random() < 0.75 else county, "checkup", None))
        if state.hba1c is not None:
            first = rng.uniform(0, 90)
            plan += [(first + 91 * k + rng.uniform(-15, 15), centre, "diabetes", None) for k in range(4)]
            plan.append((rng.uniform(0, 365), county, "diabetes", None))
        if state.crea is not None:
            plan += [(rng.uniform(0, 365), county, "kidney", None) for _ in range(3)]
        for _ in range(self._poisson(0.35)):
            plan += self._acute(r, seasonal(rng), centre, county)
        if age >= 55 and rng.random() < 0.04:
            day = rng.uniform(0, 360)
            plan += [(day, county, "stroke", "acute"), (day + rng.uniform(1, 5), f.city_hospital(rng, r), "stroke_up",
                                                        "acute")]
        if age >= 30 and rng.random() < 0.03:
            day, hospital = rng.uniform(0, 350), county if rng.random() < 0.6 else f.city_hospital(rng, r)
            plan += [(day, hospital, "workup", None), (day + rng.uniform(1, 10), hospital, "preop", "preop")]
        priors: dict[str, list[rec.PriorResult]] = defaultdict(list)
        for day, where, panel, kind in sorted((p for p in plan if p[1] is not None and 0 <= p[0] < 365),
                                              key=lambda p: p[0]):
            self._episode(r, state, day, where, panel, kind, priors)

    def _poisson(self, lam: float) -> int:
        n, p, limit = 0, 1.0, math.exp(-lam)
        while True:
            p *= self.rng.random()
            if p <= limit:
                return n
            n += 1

    def _acute(self, r: Resident, day: float, centre: Facility | None, county: Facility | None) -> list[tuple]:
        rng = self.rng
        first = centre if rng.random() < 0.6 and centre else county
        out = [(day, first, "acute", None)]
        if rng.random() < 0.3:
            up = county if first is centre else self.facts.city_hospital(rng, r)
            out.append((day + rng.uniform(0, 3), up, "acute", "acute"))
        elif rng.random() < 0.1 and first is county:
            out.append((day + rng.uniform(1, 7), self.facts.other_county_hospital(rng, r), "acute", "acute"))
        if rng.random() < 0.5:
            out.append((day + rng.uniform(5, 20), centre, "followup", None))
        return out

    def _episode(self, r: Resident, state: Chronic, day: float, where: Facility, panel: str, kind: str | None,
                 priors: dict[str, list[rec.PriorResult]]) -> None:
        rng = self.rng
        start_local = self.start.astimezone(CN_TZ)
        at = (start_local + timedelta(days=int(day))).replace(hour=8, minute=0, second=0, microsecond=0) \
            + timedelta(minutes=rng.uniform(0, 540))
        if at > self.now:
            return
        doctor = rng.choice(self.facts.doctors[where.id]) if self.facts.doctors.get(where.id) else None
        done = []
        for item in dict.fromkeys(PANELS[panel]):
            if self._decide(r, where, item, at, kind, priors, doctor):
                done.append(item)
        chem = [i for i in done if i in CHEM]
        for item in [i for i in done if i not in CHEM] + (["CHEM"] if chem else []):
            self._report(r, state, where, item, chem if item == "CHEM" else [item], at, doctor, priors)

    def _decide(self, r: Resident, org: Facility, item: str, at: datetime, kind: str | None,
                priors: dict[str, list[rec.PriorResult]], doctor: int | None) -> bool:
        """Log the order's decision; True when the test is done (not recognised, not pending)."""
        rng = self.rng
        order = rec.Order(item=item, org=str(org.id), level=org.level, region=org.region)
        known = [p for p in priors[item] if p.reported_at <= at]  # what the platform holds at the order
        d = rec.decide(order, known, catalogue=self.cat, eqa=self.facts_eqa, now=at)
        row = {"id": self.next_id(Decision), "patient_id": r.id, "item": item, "ordering_org_id": org.id,
               "physician": f"practitioner:{doctor}" if doctor else SYNTH_USER, "outcome": str(d.outcome),
               "recognised_report_id": None, "candidates": [self._offer(c) for c in d.recognisable],
               "rejections": [{**x.as_dict(), "level": x.result.level, "version": 1, "status": x.result.status}
                              for x in d.not_recognisable], "override_reason": None, "override_text": None,
               "patient_informed": None, "price_cny": d.price_cny, "catalogue_version": self.cat.version,
               "decided_at": at}
        self.rows[Decision].append(row)
        done = True
        if d.recognisable:
            if self.now - at < timedelta(days=1) and rng.random() < 0.15:
                row["outcome"], done = "pending", False
            elif rng.random() < (0.35 if kind == "preop" else RECOGNISE.get(org.level, 0.45)):
                row["outcome"], row["recognised_report_id"], done = "recognised", int(d.best.result.id), False
            else:
                reason = rng.choices(*zip(*REASONS.get(kind, REASONS[None]), strict=True))[0]
                row.update(outcome="repeat_with_reason", override_reason=reason,
                           override_text=rng.choice(OTHER_TEXT) if reason == "other" else None,
                           patient_informed=rng.random() < 0.7 if reason == "emergency" else True)
        self.outcomes[row["outcome"]] += 1
        return done

    def _report(self, r: Resident, state: Chronic, org: Facility, item: str, members: list[str], at: datetime,
                doctor: int | None, priors: dict[str, list[rec.PriorResult]]) -> None:
        rng = self.rng
        imaging = item in IMAGING
        issued = at + timedelta(hours=rng.uniform(0.5, 24) if imaging else rng.uniform(0.3, 0.8) if item == "ECG"
                                else rng.uniform(1.5, 6))
        if issued > self.now:
            return
        rid = self.next_id(Report)
        found = self.cat.find(item)
        lab = self.central_lab.get(org.id) if not imaging and item != "ECG" else None
        mark = self.cat.issuing_mark(org.region) if item in self.listed[org.id] or item == "CHEM" else None
        mark = None if rng.random() < 0.04 else mark
        status = "corrected" if rng.random() < 0.02 else "final"
        category = self.category[rid] = "RAD" if imaging else "EC" if item == "ECG" else "LAB"
        abnormal = rng.random() < 0.25
        conclusion = (IMAGING[item][4][abnormal] if imaging else None)
        self.rows[Report].append({
            "id": rid, "patient_id": r.id, "issuer_org_id": org.id, "lab_org_id": lab, "ordering_org_id": org.id,
            "ordering_practitioner_id": doctor, "filler_number": f"S{rid:09d}", "placer_number": f"O{rid:09d}",
            "category": category, "item": found.code if found else None,
            "code_system": "http://loinc.org" if found and found.loinc else None,
            "code": (found.loinc or found.code) if found else "CHEM", "display": found.zh if found else "生化全项",
            "status": status, "mark": mark, "effective_at": at + timedelta(minutes=15), "issued_at": issued,
            "conclusion": conclusion, "message_id": None, "created_at": issued, "updated_at": issued,
            "version": 2 if status == "corrected" else 1})
        if imaging:
            self._study(r, org, item, rid, at, issued)
        else:
            self._observations(r, state, org, members, rid, at, status)
        for m in members:
            priors[m].append(rec.PriorResult(id=str(rid), item=m, org=str(org.id), level=org.level, region=org.region,
                                             lab=str(lab or org.id), reported_at=issued, mark=mark, status=status))

    def _observations(self, r: Resident, state: Chronic, org: Facility, members: list[str], rid: int, at: datetime,
                      status: str) -> None:
        days = (at - self.start).total_seconds() / 86400
        seq = 0
        for item in members:
            for a in self.cat.item(item).analytes:
                seq += 1
                if item == "ECG":
                    got, flag, ref = self.rng.choices(ECG_TEXT, (80, 12, 6, 2))[0], None, None
                else:
                    got, flag, ref = value(self.rng, a, r.sex, state, days)
                if got is None and item != "ECG":
                    continue
                self.rows[Observation].append({
                    "id": self.next_id(Observation), "report_id": rid, "patient_id": r.id, "seq": seq, "item": item,
                    "code_system": "http://loinc.org" if a.loinc else None, "code": a.loinc or a.code,
                    "display": a.zh, "value_num": got if isinstance(got, float) else None,
                    "value_text": got if isinstance(got, str) else None, "unit": a.unit or None,
                    "ref_low": ref.low if ref else None, "ref_high": ref.high if ref else None,
                    "ref_text": ref.text if ref else None, "flag": flag, "status": status,
                    "effective_at": at + timedelta(minutes=15), "issuer_org_id": org.id})

    def _study(self, r: Resident, org: Facility, item: str, rid: int, at: datetime, issued: datetime) -> None:
        modality, site, series, per, _texts = IMAGING[item]
        sid = self.next_id(ImagingStudy)
        self.rows[ImagingStudy].append({
            "id": sid, "study_uid": study_uid(self.seed, sid), "report_id": rid, "patient_id": r.id,
            "issuer_org_id": org.id, "accession_number": f"S{rid:09d}", "modality": modality, "body_site": site,
            "description": self.cat.item(item).zh, "started_at": at + timedelta(minutes=20), "series_count": series,
            "instance_count": series * per, "dicomweb_base": None, "pacs_study_id": None, "created_at": issued})

    def _offer(self, c: rec.Candidate) -> dict[str, Any]:
        """What ``ordering`` stores with an offer: the candidate and the report's version."""
        return {**c.as_dict(), "version": 2 if c.result.status == "corrected" else 1, "status": c.result.status,
                "category": self.category.get(int(c.result.id))}

    # -- writing ----------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write what is built, parents first (a recognised report was written before)."""
        for model in (Report, Observation, ImagingStudy):
            bulk_insert(self.conn, model.__table__, self.rows[model])
        if self.rows[Decision]:
            self.conn.execute(insert(Decision.__table__), self.rows[Decision])
        for model in (Report, Observation, ImagingStudy, Decision):
            self.written[model] += len(self.rows[model])
            self.rows[model] = []

    def finish(self) -> None:
        if self.conn.dialect.name == "postgresql":
            for model in (Report, Observation, ImagingStudy, Decision, Eqa):
                table = model.__tablename__
                self.conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                                       f" GREATEST((SELECT MAX(id) FROM {table}), 1))"))
                self.conn.execute(text(f"ANALYZE {table}"))

    def report(self) -> dict[str, int]:
        w = self.written
        out = {"res_reports": w[Report], "res_observations": w[Observation], "res_imaging_studies": w[ImagingStudy],
               "res_decisions": w[Decision], "res_eqa": self.eqa_count}
        out.update({f"res_decisions_{k}": v for k, v in sorted(self.outcomes.items())})
        return out

