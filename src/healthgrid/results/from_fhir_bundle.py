"""A transaction or batch Bundle (or one resource) as units of ingestion.

A unit is what is written all or none: a DiagnosticReport with everything it points at
(its subject Patient, the Observations of ``result``, the ImagingStudies of ``imagingStudy``,
its Specimens and the ServiceRequest of ``basedOn``), or an Observation or ImagingStudy sent
without a report (an Observation alone is its own one-result report and needs an identifier).
References are resolved inside the Bundle — ``urn:uuid:`` (or any ``fullUrl``), ``#id`` to a
contained resource — or name a stored record (``Patient/<id>``, ``Organization/<id>``,
``Practitioner/<id>``). A transaction is one unit of all its entries (and names one patient:
RES-204 otherwise); a batch is processed unit by unit. Entries of other types, other methods
than POST and PUT, or entries nothing points at are refused (RES-201, RES-202): nothing sent
is silently dropped. Pure: no session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import from_fhir as ff
from .catalogue import Catalogue
from .intake import Code, MessageItem, PatientItem, Problem, ReportItem, StudyItem

RESULT_TYPES = ("DiagnosticReport", "Observation", "ImagingStudy")
SUPPORTED = ("Patient", *RESULT_TYPES, "Specimen", "ServiceRequest", "Endpoint")
CATEGORY_OF = {"laboratory": "LAB", "imaging": "RAD", "electrophysiology": "EC", "pathology": "PAT"}
_PUT_URL = re.compile(r"^(?:[A-Za-z]+)/(\d{1,10})$")
MAX_ENTRIES = 5000


@dataclass
class Entry:
    index: int
    resource: dict[str, Any]
    where: str
    full_url: str = ""
    method: str = "POST"
    target_id: int | None = None
    problems: list[Problem] = field(default_factory=list)  # why it cannot be read: not mapped then


@dataclass
class Unit:
    entries: list[int]
    item: MessageItem | None = None
    problems: list[Problem] = field(default_factory=list)


class _Reader:
    def __init__(self, entries: list[Entry], catalogue: Catalogue):
        self.entries = entries
        self.catalogue = catalogue
        self.by_url = {e.full_url: e for e in entries if e.full_url}
        self.claimed: dict[int, int] = {}  # entry index -> the unit's first entry
        self.at = {e.where: e for e in entries}

    def resolve(self, owner: Entry, ref: dict[str, Any] | None, want: str, unit: list[int],
                problems: list[Problem]) -> tuple[dict[str, Any], str] | str | None:
        """(resource, where) inside the Bundle, or "Type/id" of a stored record, or None."""
        text = str((ref or {}).get("reference") or "")
        if not text:
            return None
        if text.startswith("#"):
            for j, c in enumerate(owner.resource.get("contained", [])):
                if c.get("id") == text[1:] and c.get("resourceType") == want:
                    return c, f"{owner.where}.contained[{j}]"
        elif text in self.by_url:
            target = self.by_url[text]
            if target.resource.get("resourceType") == want:
                self._claim(target, unit, problems)
                if target.problems:  # the unit fails with the entry's own problems
                    problems += [p for p in target.problems if p not in problems]
                    return None
                return target.resource, target.where
        elif re.match(rf"^{want}/\d{{1,10}}$", text):
            return text
        problems.append(Problem("RES-202", f"reference {text!r} resolves to no {want} in the Bundle (urn:uuid or"
                                " fullUrl of an entry, #id of a contained resource) nor a stored one",
                                owner.where, want))
        return None

    def _claim(self, target: Entry, unit: list[int], problems: list[Problem]) -> None:
        if target.index in unit:
            return
        if target.index in self.claimed and target.resource.get("resourceType") != "Patient":
            problems.append(Problem("RES-202", "this entry belongs to two results of the Bundle", target.where))
        self.claimed.setdefault(target.index, unit[0])
        unit.append(target.index)


def read_entries(bundle: dict[str, Any]) -> tuple[list[Entry], list[Problem]]:
    """The entries (each with the problems that keep it from being read) and the problems of
    the Bundle as a whole."""
    entries, problems = [], []
    raw = bundle.get("entry") or []
    if len(raw) > MAX_ENTRIES:
        return [], [Problem("RES-203", f"{len(raw)} entries; at most {MAX_ENTRIES}", "Bundle.entry")]
    for i, e in enumerate(raw):
        where = f"Bundle.entry[{i}].resource"
        res = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(res, dict):
            res = {}
        request = e.get("request") or {} if isinstance(e, dict) else {}
        method = str(request.get("method") or "POST").upper()
        entry = Entry(i, res, where, str(e.get("fullUrl") or "") if isinstance(e, dict) else "", method)
        entry.problems = (_check_entry(entry, str(request.get("url") or "")) if res
                          else [Problem("RES-200", "the entry has no resource", f"Bundle.entry[{i}]", "resource")])
        entries.append(entry)
    return entries, problems


def _check_entry(entry: Entry, url: str) -> list[Problem]:
    rtype = entry.resource.get("resourceType")
    if rtype not in SUPPORTED:
        return [Problem("RES-201", f"{rtype!r} entries are not taken here; a results Bundle holds "
                        f"{', '.join(SUPPORTED)}", entry.where, "resourceType")]
    if entry.method not in ("POST", "PUT"):
        return [Problem("RES-201", f"request.method {entry.method}: results are created (POST) or updated (PUT)",
                        entry.where.removesuffix(".resource") + ".request", "method")]
    if entry.method == "PUT":
        found = _PUT_URL.match(url)
        if rtype not in RESULT_TYPES or found is None or not url.startswith(f"{rtype}/"):
            return [Problem("RES-201", f"request.url {url!r}: a PUT names a stored {rtype} as {rtype}/<id>",
                            entry.where.removesuffix(".resource") + ".request", "url")]
        entry.target_id = int(found.group(1))
    return ff.validate(entry.resource, entry.where)


def units_of(entries: list[Entry], catalogue: Catalogue) -> list[Unit]:
    """One unit per DiagnosticReport, then per Observation or ImagingStudy nothing claimed;
    entries left over are refused."""
    reader = _Reader(entries, catalogue)
    units = []
    for e in entries:
        if e.resource.get("resourceType") == "DiagnosticReport" and not e.problems:
            units.append(_report_unit(reader, e))
    for e in entries:
        if e.index in reader.claimed:
            continue
        rtype = e.resource.get("resourceType")
        if e.problems:
            units.append(Unit([e.index], problems=list(e.problems)))
            reader.claimed[e.index] = e.index
        elif rtype == "Observation":
            units.append(_observation_unit(reader, e))
        elif rtype == "ImagingStudy":
            units.append(_study_unit(reader, e))
    covered = {i for u in units for i in u.entries}
    for e in entries:
        if e.index not in covered:
            units.append(Unit([e.index], problems=[Problem(
                "RES-202", f"nothing in the Bundle points at this {e.resource.get('resourceType')} (a Patient is"
                " sent as the subject of a result, a Specimen or ServiceRequest as a report's)", e.where)]))
    return units


def _subject(reader: _Reader, e: Entry, unit: list[int], problems: list[Problem]) -> PatientItem | None:
    subject = e.resource.get("subject")
    if not subject:
        problems.append(Problem("RES-204", "subject is missing: whose result is it?", e.where, "subject"))
        return None
    ident = subject.get("identifier") or {}
    if not subject.get("reference") and ident.get("system") in ff.RESIDENT_ID_SYSTEMS and ident.get("value"):
        return PatientItem(where=f"{e.where}.subject", resident_id=str(ident["value"]))
    found = reader.resolve(e, subject, "Patient", unit, problems)
    if isinstance(found, str):
        return PatientItem(where=f"{e.where}.subject", patient_id=int(found.split("/")[1]))
    return ff.patient_item(found[0], found[1]) if found else None


def _report_unit(reader: _Reader, e: Entry) -> Unit:
    unit, problems = [e.index], []
    res = e.resource
    reader.claimed[e.index] = e.index
    patient = _subject(reader, e, unit, problems)
    observations = []
    for seq, ref in enumerate(res.get("result", []), 1):
        found = reader.resolve(e, ref, "Observation", unit, problems)
        if isinstance(found, str):
            problems.append(Problem("RES-202", f"result {found}: a report's results are sent with it (Bundle entries"
                                    " or contained)", e.where, "result"))
        elif found:
            target = reader.at.get(found[1])
            obs, more = ff.observation_item(found[0], found[1], seq,
                                            observation_id=target.target_id if target else None)
            problems += more + _same_subject(found[0], res, found[1])
            if obs is not None:
                observations.append(obs)
    studies = [s for ref in res.get("imagingStudy", []) if (s := _study_of(reader, e, ref, unit, problems))]
    code = ff.codeable(res.get("code")) or Code("", None, "")
    effective = ff.effective(res) or _specimen_time(reader, e, unit, problems)
    ordering_doc, ordering_org = _ordering(reader, e, unit, problems)
    report = ReportItem(where=e.where, filler_number=ff.filler_number(res), category=_category(res, code, reader),
                        code=code, status=res.get("status") or "", issued_at=ff.instant(res.get("issued")),
                        placer_number=ff.placer_number(res), effective_at=effective, conclusion=res.get("conclusion"),
                        ordering_practitioner=ordering_doc, ordering_org=ordering_org,
                        observations=tuple(observations), studies=tuple(studies), report_id=e.target_id)
    issuer = next((o for o in map(ff.org_ref, res.get("performer", [])) if o), None)
    return Unit(unit, MessageItem("fhir_bundle", "", issuer, patient, reports=(report,), application="FHIR"),
                problems)


def _same_subject(obs: dict[str, Any], report: dict[str, Any], where: str) -> list[Problem]:
    mine, theirs = (obs.get("subject") or {}).get("reference"), (report.get("subject") or {}).get("reference")
    if mine and theirs and mine != theirs:
        return [Problem("RES-204", f"subject {mine!r} is not the report's subject {theirs!r}", where, "subject")]
    return []


def _specimen_time(reader: _Reader, e: Entry, unit: list[int], problems: list[Problem]):
    for ref in e.resource.get("specimen", []):
        found = reader.resolve(e, ref, "Specimen", unit, problems)
        if isinstance(found, tuple):
            collection = found[0].get("collection") or {}
            moment = ff.instant(collection.get("collectedDateTime")) or ff.instant(
                (collection.get("collectedPeriod") or {}).get("start"))
            if moment is not None:
                return moment
    return None


def _ordering(reader: _Reader, e: Entry, unit: list[int], problems: list[Problem]) -> tuple[str | None, str | None]:
    for ref in e.resource.get("basedOn", []):
        if not str(ref.get("reference") or "").startswith(("urn:", "#")) and ref.get("reference") not in reader.by_url:
            continue  # a ServiceRequest held elsewhere: nothing to read here
        found = reader.resolve(e, ref, "ServiceRequest", unit, problems)
        if isinstance(found, tuple):
            requester = found[0].get("requester") or {}
            return ff.practitioner_ref(requester), ff.org_ref(requester)
    return None, None


def _category(res: dict[str, Any], code: Code, reader: _Reader) -> str:
    found = ff.category(res)
    if found:
        return found
    if code.is_loinc and (hit := reader.catalogue.by_loinc(code.code)) is not None:
        return CATEGORY_OF.get(hit[0].category, "LAB")
    return "LAB"


def _study_of(reader: _Reader, owner: Entry, ref: dict[str, Any], unit: list[int],
              problems: list[Problem]) -> StudyItem | None:
    found = reader.resolve(owner, ref, "ImagingStudy", unit, problems)
    if isinstance(found, str):
        problems.append(Problem("RES-202", f"imagingStudy {found}: send the study with the report", owner.where,
                                "imagingStudy"))
        return None
    if not found:
        return None
    entry = reader.at.get(found[1])  # None: a study contained in the report
    endpoint = _endpoint(reader, entry or owner, found[0], unit, problems)
    return ff.study_item(found[0], found[1], endpoint=endpoint, study_id=entry.target_id if entry else None)


def _endpoint(reader: _Reader, holder: Entry, study: dict[str, Any], unit: list[int],
              problems: list[Problem]) -> str | None:
    """The DICOMweb address of the study's Endpoint (``holder``: whose contained list holds it)."""
    for ref in study.get("endpoint", []):
        found = reader.resolve(holder, ref, "Endpoint", unit, problems)
        if isinstance(found, tuple) and found[0].get("address"):
            return str(found[0]["address"])
    return None


def _observation_unit(reader: _Reader, e: Entry) -> Unit:
    """An Observation without a report: its own one-result report (its identifier numbers it)."""
    unit, problems = [e.index], []
    res = e.resource
    reader.claimed[e.index] = e.index
    patient = _subject(reader, e, unit, problems)
    obs, more = ff.observation_item(res, e.where, 1, observation_id=e.target_id)
    problems += more
    number = ff.filler_number(res)
    if not number:
        problems.append(Problem("RES-206", "an Observation sent without a DiagnosticReport needs an identifier"
                                " (the issuer's result number)", e.where, "identifier"))
    code = obs.code if obs else Code("", None, "")
    report = ReportItem(where=e.where, filler_number=number, category=_category(res, code, reader), code=code,
                        status=res.get("status") or "", issued_at=ff.instant(res.get("issued")) or ff.effective(res),
                        effective_at=ff.effective(res), observations=(obs,) if obs else ())
    issuer = next((o for o in map(ff.org_ref, res.get("performer", [])) if o), None)
    return Unit(unit, MessageItem("fhir_bundle", "", issuer, patient, reports=(report,), application="FHIR"),
                problems)


def _study_unit(reader: _Reader, e: Entry) -> Unit:
    unit, problems = [e.index], []
    reader.claimed[e.index] = e.index
    patient = _subject(reader, e, unit, problems)
    endpoint = _endpoint(reader, e, e.resource, unit, problems)
    study = ff.study_item(e.resource, e.where, endpoint=endpoint, study_id=e.target_id)
    return Unit(unit, MessageItem("fhir_bundle", "", None, patient, studies=(study,), application="FHIR"), problems)


def merge(units: list[Unit], entries: list[Entry]) -> Unit:
    """A transaction: every unit in one, with one patient and one issuer (RES-204, RES-205)."""
    problems = [p for u in units for p in u.problems]
    items = [u.item for u in units if u.item is not None]
    keys = {i.patient.key() for i in items if i.patient}
    if len(keys) > 1:
        problems.append(Problem("RES-204", f"a transaction names {len(keys)} different patients; send one"
                                " Bundle per patient (or a batch)", "Bundle", "subject"))
    issuers = {i.issuer for i in items if i.issuer}
    if len(issuers) > 1:
        problems.append(Problem("RES-205", f"a transaction names several issuing organisations ({', '.join(issuers)})",
                                "Bundle", "performer"))
    if not items and not problems:
        problems.append(Problem("RES-203", "the Bundle holds no result (DiagnosticReport, Observation or"
                                " ImagingStudy)", "Bundle.entry"))
    first = items[0] if items else None
    item = MessageItem("fhir_bundle", "", next(iter(issuers), None), first.patient if first else None,
                       reports=tuple(r for i in items for r in i.reports),
                       studies=tuple(s for i in items for s in i.studies), application="FHIR") if first else None
    return Unit([e.index for e in entries], item, problems)
