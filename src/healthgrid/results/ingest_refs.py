"""The references an ingestion run looks up once (the "preheat" of the staged pipeline):
organisations by code or id (the sender, the ordering facility, the performing lab), the
issuers' local code maps (``res_local_code``) and the catalogue, practitioners by licence
number, and per chunk of messages the stored reports, imaging studies and accepted messages
the chunk may touch — one query each, never one per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from ..errors import NotFound
from ..registry import queries as registry_queries
from .catalogue import Catalogue
from .intake import Code, MessageItem, is_loinc
from .models import ImagingStudy, LocalCode, Message, Report
from .reference import catalogue_of  # the deployment's catalogue (H7's reference data)

__all__ = ["Org", "Run", "StoredReport", "catalogue_of", "stored_messages", "stored_reports", "stored_studies"]


@dataclass(frozen=True)
class Org:
    id: int
    code: str
    name: str
    level: str
    region: str  # the division code (GB/T 2260)


@dataclass
class StoredReport:
    id: int
    patient_id: int
    status: str
    version: int


@dataclass
class Run:
    """Facts that do not change during one ingestion run (a file, a connection, a request)."""

    catalogue: Catalogue
    orgs: dict[str, Org | None] = field(default_factory=dict)  # "code" or "#id" -> org
    local_codes: dict[int, dict[str, str]] = field(default_factory=dict)
    practitioners: dict[str, int | None] = field(default_factory=dict)  # licence or "#id" -> id
    patients: dict[Any, Any] = field(default_factory=dict)  # ingest_patients' cache
    allowed: set[int] = field(default_factory=set)  # organisations the actor may submit for

    @classmethod
    def start(cls, session: Session) -> Run:
        return cls(catalogue_of(session))

    # -- organisations --------------------------------------------------------------------------
    def org(self, session: Session, ref: str | None) -> Org | None:
        if not ref:
            return None
        if ref not in self.orgs:
            self.orgs[ref] = _load_org(session, ref)
        return self.orgs[ref]

    def preheat_orgs(self, session: Session, items: Iterable[MessageItem]) -> None:
        """The chunk's organisation codes in one query, and their local code maps in another."""
        codes: set[str] = set()
        for item in items:
            codes.update(c for c in (item.issuer, *(x for r in item.reports for x in (r.ordering_org, r.lab)))
                         if c and not c.startswith("#") and c not in self.orgs)
        if codes:
            page = registry_queries.search_organizations(session, registry_queries.OrgFilter(codes=sorted(codes)),
                                                         limit=len(codes) + 1)
            found = {o.code: _org(o) for o in page.items}
            for code in codes:
                self.orgs[code] = found.get(code)

    def local_map(self, session: Session, org_id: int) -> dict[str, str]:
        if org_id not in self.local_codes:
            rows = session.execute(select(LocalCode.local_code, LocalCode.item).where(LocalCode.org_id == org_id))
            self.local_codes[org_id] = {code.strip(): item for code, item in rows}
        return self.local_codes[org_id]

    # -- practitioners ---------------------------------------------------------------------------
    def practitioner(self, session: Session, ref: str | None) -> int | None:
        if not ref:
            return None
        if ref not in self.practitioners:
            if ref.startswith("#"):
                pid = int(ref[1:]) if ref[1:].isdigit() else None
                ok = pid is not None and pid < 2**31 and registry_queries.practitioner_exists(session, pid)
                self.practitioners[ref] = pid if ok else None
            else:
                page = registry_queries.search_practitioners(session, licence_nos=[ref], limit=1)
                self.practitioners[ref] = page.items[0].id if page.items else None
        return self.practitioners[ref]

    # -- items -------------------------------------------------------------------------------------
    def item_for(self, session: Session, code: Code, org_id: int) -> str | None:
        """The catalogue item a code stands for: by LOINC, else by the issuer's local codes."""
        for system, value in code.all_codes():
            if is_loinc(system):
                found = self.catalogue.by_loinc(value)
                if found is not None:
                    return found[0].code
        local = self.local_map(session, org_id)
        for system, value in code.all_codes():
            if not is_loinc(system) and value.strip() in local:
                return local[value.strip()]
        return None

    def mark_for(self, item: str | None, org: Org) -> str | None:
        """The recognition mark the issuer prints (§4.2): its region's mark (鄂HR …) when the item is
        on the recognised list for its level, else none."""
        if item is None:
            return None
        try:
            if item in self.catalogue.recognised_items(org.region, org.level):
                return self.catalogue.issuing_mark(org.region)
        except Exception:  # noqa: BLE001 - a division code the catalogue cannot place: no mark
            return None
        return None


def _org(o: Any) -> Org:
    return Org(o.id, o.code, o.name, o.level, o.division.code if o.division is not None else "")


def _load_org(session: Session, ref: str) -> Org | None:
    if ref.startswith("#"):
        oid = int(ref[1:]) if ref[1:].isdigit() and len(ref) < 12 else None
        found = registry_queries.organization_or_none(session, oid) if oid is not None and oid < 2**31 else None
        return _org(found) if found is not None else None
    try:
        return _org(registry_queries.organization_by_code(session, ref))
    except NotFound:
        return None


# -- per chunk: what is stored already ------------------------------------------------------------

def stored_reports(session: Session, keys: set[tuple[int, str]]) -> dict[tuple[int, str], StoredReport]:
    if not keys:
        return {}
    rows = session.execute(select(Report.id, Report.issuer_org_id, Report.filler_number, Report.patient_id,
                                  Report.status, Report.version)
                           .where(tuple_(Report.issuer_org_id, Report.filler_number).in_(sorted(keys))))
    return {(r.issuer_org_id, r.filler_number): StoredReport(r.id, r.patient_id, r.status, r.version) for r in rows}


def stored_studies(session: Session, uids: set[str]) -> dict[str, tuple[int, int, int]]:
    """study UID -> (id, patient_id, issuer_org_id)."""
    if not uids:
        return {}
    rows = session.execute(select(ImagingStudy.id, ImagingStudy.study_uid, ImagingStudy.patient_id,
                                  ImagingStudy.issuer_org_id).where(ImagingStudy.study_uid.in_(sorted(uids))))
    return {r.study_uid: (r.id, r.patient_id, r.issuer_org_id) for r in rows}


def stored_messages(session: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, dict]]:
    """(source, control id) -> (message id, its report) of the messages already stored."""
    if not keys:
        return {}
    rows = session.execute(select(Message.id, Message.source, Message.control_id, Message.report)
                           .where(tuple_(Message.source, Message.control_id).in_(sorted(keys))))
    return {(r.source, r.control_id): (r.id, r.report) for r in rows}
