"""Reference data of mutual recognition kept on the database: each laboratory's external
quality assessment (EQA, 室间质评) result per item and year, and each facility's local item
codes mapped to the catalogue. The items, the region's recognised-item lists (HR mark, by
level) and the validity days are the catalogue's (``catalogue.json``): a deployment loads its
region's published lists there (a region entry per province or city, matched on the GB/T 2260
prefix of the facility's division) or hands its own ``Catalogue`` to the sessions
(``session.info[CATALOGUE_KEY]``, e.g. ``load_catalogue().with_regions(lists)``).

- EQA results come from the quality-control centres' yearly lists (国卫医发〔2022〕6号 Art. 8:
  the items that passed the QC organisation's assessment are recognised). They are recorded
  by the health commission's staff (``results.reference`` on a *division* grant covering the
  laboratory), one at a time or as a bulk import (CSV or JSON rows), all or none: one refused
  row and nothing is written (RES-100 carries the report, errors by row and code).
- Local code maps are a facility's own (``results.reference`` on the organisation: its
  administrator, or the commission over its division), set as a list, all or none (RES-113).

Every change and every listing is checked and audited. Codes RES-100…RES-119.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from ..db import transaction, utcnow
from ..errors import Invalid, NotFound
from ..registry import queries as registry_queries
from ..security import access, audit
from ..security.domain import Actor, AuditAction, Perm
from .catalogue import Catalogue, LocalCodeMap, load_catalogue
from .models import Eqa, LocalCode

CATALOGUE_KEY = "healthgrid_results_catalogue"
MAX_EQA_ROWS = 20_000
MAX_LOCAL_CODES = 5_000
ERRORS_KEPT = 500
RESULT_WORDS = {"passed": True, "pass": True, "合格": True, "通过": True, "failed": False, "fail": False,
                "不合格": False, "未通过": False}
EQA_CSV_COLUMNS = ("lab_code", "item", "year", "result", "provider")


def catalogue_of(session: Session) -> Catalogue:
    """The catalogue this deployment decides with: the session's own, else the packaged one."""
    found = session.info.get(CATALOGUE_KEY)
    return found if isinstance(found, Catalogue) else load_catalogue()


@dataclass(frozen=True)
class RowError:
    row: int  # 1 = the first record (the line after a CSV header)
    code: str
    field: str
    message: str


@dataclass(frozen=True)
class ImportReport:
    status: str  # accepted | rejected
    rows: int
    created: int
    updated: int
    ignored: int  # the same as stored
    deleted: int
    errors: list[dict[str, Any]]
    errors_by_code: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _report(status: str, n: int, counts: tuple[int, int, int, int], errors: list[RowError]) -> ImportReport:
    return ImportReport(status, n, *counts, [asdict(e) for e in errors[:ERRORS_KEPT]],
                        dict(sorted(Counter(e.code for e in errors).items())))


def _refuse(code: str, what: str, n: int, errors: list[RowError]) -> Invalid:
    report = _report("rejected", n, (0, 0, 0, 0), errors)
    summary = ", ".join(f"{k}×{v}" for k, v in report.errors_by_code.items())
    return Invalid(code, f"{len({e.row for e in errors})} of {n} {what} refused; nothing was written ({summary})",
                   {"field": "records", "report": report.as_dict()})


# -- EQA results --------------------------------------------------------------------------------

@dataclass(frozen=True)
class EqaView:
    id: int
    lab_org_id: int
    lab_name: str
    item: str
    year: int
    passed: bool
    provider: str | None
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class _EqaRow:
    row: int
    lab_org_id: int
    item: str
    year: int
    passed: bool
    provider: str | None


def record_eqa(session: Session, actor: Actor, *, lab_org_id: int, item: str, year: int, passed: bool,
               provider: str | None = None) -> ImportReport:
    """One laboratory's EQA result for one item and year (an import of one row)."""
    return import_eqa(session, actor, records=[{"lab_org_id": lab_org_id, "item": item, "year": year,
                                                "passed": passed, "provider": provider}])


def import_eqa(session: Session, actor: Actor, *, records: Sequence[Mapping[str, Any]],
               provider: str | None = None) -> ImportReport:
    """A QC centre's list: each record names the lab (``lab_org_id`` or ``lab_code``), the
    ``item``, the ``year`` and the outcome (``passed`` true/false, or ``result`` passed/failed/
    合格/不合格), optionally its ``provider``. Upsert on (lab, item, year); all or none."""
    n = len(records)
    if not 1 <= n <= MAX_EQA_ROWS:
        raise Invalid("RES-101", f"records: 1 to {MAX_EQA_ROWS} per import; got {n}", {"field": "records"})
    with transaction(session):
        access.check(session, actor, Perm.RESULT_REFERENCE, AuditAction.CREATE, resource_type="EqaImport",
                     audit_success=False)
        cat = catalogue_of(session)
        labs = _labs(session, records)
        good, errors = _check_eqa_rows(records, labs, cat, provider)
        errors += _check_lab_scope(session, actor, good, labs)
        if errors:
            raise _refuse("RES-100", "EQA records", n, sorted(errors, key=lambda e: (e.row, e.code)))
        counts = _upsert_eqa(session, actor, good)
        audit.record(session, actor, AuditAction.CREATE, resource_type="EqaImport",
                     detail={"rows": n, "created": counts[0], "updated": counts[1], "ignored": counts[2],
                             "labs": sorted({r.lab_org_id for r in good})[:50]})
        return _report("accepted", n, counts, [])


def _labs(session: Session, records: Sequence[Mapping[str, Any]]) -> dict[Any, Any]:
    """The organisations the records name, by id and by code (two queries)."""
    ids = sorted({r.get("lab_org_id") for r in records if isinstance(r.get("lab_org_id"), int)
                  and not isinstance(r.get("lab_org_id"), bool) and 0 < r.get("lab_org_id") < 2**31})
    codes = sorted({str(r.get("lab_code")).strip() for r in records if r.get("lab_code")})
    found: dict[Any, Any] = {}
    for f in (registry_queries.OrgFilter(ids=ids) if ids else None,
              registry_queries.OrgFilter(codes=codes) if codes else None):
        if f is not None:
            for org in registry_queries.search_organizations(session, f, limit=100_000).items:
                found[org.id] = found[("code", org.code)] = org
    return found


def _check_eqa_rows(records: Sequence[Mapping[str, Any]], labs: Mapping[Any, Any], cat: Catalogue,
                    provider: str | None) -> tuple[list[_EqaRow], list[RowError]]:
    good: list[_EqaRow] = []
    errors: list[RowError] = []
    seen: dict[tuple[int, str, int], tuple[int, bool]] = {}
    for i, raw in enumerate(records, start=1):
        before = len(errors)
        lab = labs.get(raw.get("lab_org_id")) or labs.get(("code", str(raw.get("lab_code") or "").strip()))
        if lab is None:
            errors.append(RowError(i, "RES-102", "lab_code", f"lab {raw.get('lab_code') or raw.get('lab_org_id')!r}"
                                   " is not an organisation of the region"))
        item = str(raw.get("item") or "").strip()
        if cat.find(item) is None:
            errors.append(RowError(i, "RES-103", "item", f"item {item!r} is not in the result catalogue"))
        year = _int(raw.get("year"))
        if year is None or not 2000 <= year <= 2100:
            errors.append(RowError(i, "RES-104", "year", f"year {raw.get('year')!r}: a year from 2000 to 2100"))
        passed = _outcome(raw)
        if passed is None:
            errors.append(RowError(i, "RES-105", "result", "result: passed or failed (合格/不合格), or passed:"
                                   " true/false"))
        text = str(raw.get("provider") or provider or "").strip() or None
        if text is not None and len(text) > 120:
            errors.append(RowError(i, "RES-105", "provider", "provider: at most 120 characters"))
        if len(errors) > before:
            continue
        key = (lab.id, item, year)
        if key in seen and seen[key][1] != passed:
            errors.append(RowError(i, "RES-106", "result", f"the same lab, item and year as record {seen[key][0]}"
                                   " with the other result"))
            continue
        seen[key] = (i, passed)
        good.append(_EqaRow(i, lab.id, item, year, passed, text))
    return good, errors


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 4 else None


def _outcome(raw: Mapping[str, Any]) -> bool | None:
    if isinstance(raw.get("passed"), bool):
        return raw["passed"]
    return RESULT_WORDS.get(str(raw.get("result") or "").strip().lower())


def _check_lab_scope(session: Session, actor: Actor, rows: list[_EqaRow], labs: Mapping[Any, Any]) -> list[RowError]:
    """EQA results are the commission's to record: a division grant covering the lab."""
    verdict = {lab_id: access.division_in_scope(session, actor, Perm.RESULT_REFERENCE, labs[lab_id].division_id)
               for lab_id in {r.lab_org_id for r in rows}}
    refused = sorted(k for k, ok in verdict.items() if not ok)
    if refused:
        audit.record_denied(session, actor, AuditAction.CREATE, reason="RES-107", resource_type="EqaImport",
                            detail={"labs": refused[:50]})
    return [RowError(r.row, "RES-107", "lab_code", f"lab {r.lab_org_id} is outside the divisions of your"
                     " results.reference grant (EQA results are recorded by the health commission)")
            for r in rows if not verdict[r.lab_org_id]]


def _upsert_eqa(session: Session, actor: Actor, rows: list[_EqaRow]) -> tuple[int, int, int, int]:
    existing: dict[tuple[int, str, int], Eqa] = {}
    labs = sorted({r.lab_org_id for r in rows})
    for i in range(0, len(labs), 500):
        for e in session.scalars(select(Eqa).where(Eqa.lab_org_id.in_(labs[i:i + 500]),
                                                   Eqa.year.in_(sorted({r.year for r in rows})))):
            existing[(e.lab_org_id, e.item, e.year)] = e
    now, new, changed, same = utcnow(), [], [], 0
    done: set[tuple[int, str, int]] = set()
    for r in rows:
        key = (r.lab_org_id, r.item, r.year)
        old = existing.get(key)
        if key in done:
            same += 1  # the same record twice in the list
        elif old is None:
            new.append({"lab_org_id": r.lab_org_id, "item": r.item, "year": r.year, "passed": r.passed,
                        "provider": r.provider, "recorded_by": actor.username, "recorded_at": now})
        elif (old.passed, old.provider) == (r.passed, r.provider):
            same += 1
        else:
            changed.append({"id": old.id, "passed": r.passed, "provider": r.provider,
                            "recorded_by": actor.username, "recorded_at": now})
        done.add(key)
    if new:
        session.execute(insert(Eqa), new)
    if changed:
        session.execute(update(Eqa), changed)
    return len(new), len(changed), same, 0


def parse_eqa_csv(data: str | bytes) -> list[dict[str, str]]:
    """Records of a QC centre's CSV list. Header (first line, any order): ``lab_code,item,year,
    result`` and optionally ``provider``; UTF-8 (with or without BOM) or GB18030 as exported by
    spreadsheet programs in China. RES-108 for an unreadable file or header."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                data = data.decode("gb18030")
            except UnicodeDecodeError:
                raise Invalid("RES-108", "file: neither UTF-8 nor GB18030 text", {"field": "file"}) from None
    try:
        reader = csv.reader(io.StringIO(data.lstrip("\ufeff"), newline=""))
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in EQA_CSV_COLUMNS[:4] if c not in header]
        unknown = [c for c in header if c not in EQA_CSV_COLUMNS]
        if missing or unknown or len(set(header)) != len(header):
            raise Invalid("RES-108", f"header: expected {','.join(EQA_CSV_COLUMNS[:4])}[,provider]; got"
                          f" {','.join(header) or 'nothing'}", {"field": "file", "header": header[:20]})
        rows = [dict(zip(header, values, strict=False)) for values in reader if any(v.strip() for v in values)]
    except csv.Error as exc:
        raise Invalid("RES-108", f"not a readable CSV file: {exc}", {"field": "file"}) from exc
    return rows


def list_eqa(session: Session, actor: Actor, *, lab_org_id: int | None = None, item: str | None = None,
             year: int | None = None, offset: int = 0, limit: int = 100) -> list[EqaView]:
    """EQA results of the labs in the actor's ``results.reference`` scope (a facility's own,
    the commission's divisions), by lab, item and year; audited as a search."""
    with transaction(session):
        access.check(session, actor, Perm.RESULT_REFERENCE, AuditAction.SEARCH, resource_type="Eqa",
                     org_id=lab_org_id, detail={"item": item, "year": year})
        stmt = select(Eqa)
        scope = None if lab_org_id is not None else access.scope_org_ids(session, actor, Perm.RESULT_REFERENCE)
        if lab_org_id is not None:
            stmt = stmt.where(Eqa.lab_org_id == lab_org_id)
        elif scope is not None:
            stmt = stmt.where(Eqa.lab_org_id.in_(sorted(scope) or [-1]))
        if item:
            stmt = stmt.where(Eqa.item == item)
        if year is not None:
            stmt = stmt.where(Eqa.year == year)
        rows = list(session.scalars(stmt.order_by(Eqa.lab_org_id, Eqa.item, Eqa.year.desc()).offset(offset)
                                    .limit(limit)))
        names = registry_queries.names_of(session, orgs=[r.lab_org_id for r in rows])["org"]
        return [EqaView(r.id, r.lab_org_id, names.get(r.lab_org_id, ""), r.item, r.year, r.passed, r.provider,
                        r.recorded_by, r.recorded_at) for r in rows]


def eqa_records(session: Session, *, labs: Iterable[int], item: str, years: Iterable[int]) -> list[dict[str, Any]]:
    """The stored results for these labs, one item and years, as ``domain.EqaFacts`` reads them."""
    labs, years = sorted(set(labs)), sorted(set(years))
    if not labs or not years:
        return []
    rows = session.execute(select(Eqa.lab_org_id, Eqa.item, Eqa.year, Eqa.passed, Eqa.provider).where(
        Eqa.lab_org_id.in_(labs), Eqa.item == item, Eqa.year.in_(years)))
    return [{"lab": str(lab), "item": it, "year": y, "status": "passed" if ok else "failed", "scheme": p}
            for lab, it, y, ok, p in rows]


# -- local code maps ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LocalCodeView:
    local_code: str
    item: str
    updated_by: str
    updated_at: datetime


def set_local_codes(session: Session, actor: Actor, *, org_id: int, codes: Sequence[tuple[str, str]],
                    replace: bool = False) -> ImportReport:
    """Map the facility's local codes (its LIS/PACS dictionary) onto catalogue items; with
    ``replace`` the codes not listed are removed (the list is the whole map). All or none."""
    n = len(codes)
    if not (0 if replace else 1) <= n <= MAX_LOCAL_CODES:
        raise Invalid("RES-114", f"codes: 1 to {MAX_LOCAL_CODES} per request; got {n}", {"field": "codes"})
    with transaction(session):
        access.check(session, actor, Perm.RESULT_REFERENCE, AuditAction.UPDATE, resource_type="LocalCodeMap",
                     resource_id=org_id, org_id=org_id, audit_success=False)
        if registry_queries.organization_or_none(session, org_id) is None:
            raise NotFound("RES-115", f"no organisation {org_id}", {"field": "org_id"})
        cat = catalogue_of(session)
        wanted, errors = _check_codes(codes, cat)
        if errors:
            raise _refuse("RES-113", "local codes", n, errors)
        counts = _upsert_codes(session, actor, org_id, wanted, replace, n)
        audit.record(session, actor, AuditAction.UPDATE, resource_type="LocalCodeMap", resource_id=org_id,
                     org_id=org_id, detail={"rows": n, "created": counts[0], "updated": counts[1],
                                            "ignored": counts[2], "deleted": counts[3], "replace": replace})
        return _report("accepted", n, counts, [])


def _check_codes(codes: Sequence[tuple[str, str]], cat: Catalogue) -> tuple[dict[str, str], list[RowError]]:
    wanted: dict[str, str] = {}
    first: dict[str, int] = {}
    errors: list[RowError] = []
    for i, (local, item) in enumerate(codes, start=1):
        local, item = str(local or "").strip(), str(item or "").strip()
        if not local or len(local) > 60 or any(ord(c) < 32 for c in local):
            errors.append(RowError(i, "RES-110", "local_code", "local_code: 1 to 60 printable characters"))
        elif cat.find(item) is None:
            errors.append(RowError(i, "RES-111", "item", f"local code {local!r} maps to {item!r}, which is not in"
                                   " the result catalogue"))
        elif wanted.get(local, item) != item:
            errors.append(RowError(i, "RES-112", "local_code", f"local code {local!r} is mapped to"
                                   f" {wanted[local]!r} in row {first[local]} and to {item!r} here"))
        else:
            wanted[local] = item
            first.setdefault(local, i)
    return wanted, errors


def _upsert_codes(session: Session, actor: Actor, org_id: int, wanted: dict[str, str], replace: bool,
                  listed: int) -> tuple[int, int, int, int]:
    stored = {c.local_code: c for c in session.scalars(select(LocalCode).where(LocalCode.org_id == org_id))}
    now = utcnow()
    new = [{"org_id": org_id, "local_code": k, "item": v, "updated_by": actor.username, "updated_at": now}
           for k, v in wanted.items() if k not in stored]
    changed = [{"id": stored[k].id, "item": v, "updated_by": actor.username, "updated_at": now}
               for k, v in wanted.items() if k in stored and stored[k].item != v]
    gone = [c.id for k, c in stored.items() if replace and k not in wanted]
    if new:
        session.execute(insert(LocalCode), new)
    if changed:
        session.execute(update(LocalCode), changed)
    if gone:
        session.execute(delete(LocalCode).where(LocalCode.id.in_(gone)))
    return len(new), len(changed), listed - len(new) - len(changed), len(gone)  # ignored: as stored, or twice


def list_local_codes(session: Session, actor: Actor, *, org_id: int) -> list[LocalCodeView]:
    """A facility's local code map, audited as a search of its reference data."""
    with transaction(session):
        access.check(session, actor, Perm.RESULT_REFERENCE, AuditAction.SEARCH, resource_type="LocalCodeMap",
                     resource_id=org_id, org_id=org_id)
        rows = session.scalars(select(LocalCode).where(LocalCode.org_id == org_id).order_by(LocalCode.local_code))
        return [LocalCodeView(c.local_code, c.item, c.updated_by, c.updated_at) for c in rows]


def local_code_map(session: Session, org_id: int) -> LocalCodeMap:
    """The facility's map for the ingestion (no actor: the caller has checked who sends)."""
    pairs = session.execute(select(LocalCode.local_code, LocalCode.item).where(LocalCode.org_id == org_id)).all()
    return LocalCodeMap(str(org_id), [(a, b) for a, b in pairs], catalogue_of(session))
