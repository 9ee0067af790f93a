"""FHIR writes of shared results: the transaction / batch Bundle handler registered with the
platform's system-level ``POST /fhir``, and ``create_resource`` / ``update_resource`` for the
providers' single-resource create and update. All go through the ingestion pipeline
(``results.ingest``), so a Bundle is checked, written all or none, audited and notified like an
HL7 message, and kept verbatim in ``res_message``.

Transaction (R4 http.html#transaction): all entries one unit — any error and nothing is written
(the Bundle is kept as rejected) and the answer is an OperationOutcome with one issue per error,
each naming the element (``expression``: ``Bundle.entry[3].resource.valueQuantity.value``);
400 for a Bundle that cannot be read, 403 for a sender refused, 409 for a conflict with a stored
result, 422 otherwise. Batch: each unit (a report with what it points at, an Observation or
ImagingStudy alone) on its own; every entry's ``response`` says how its unit fared. A Bundle
sent again with the same ``Bundle.identifier`` answers as the first time and writes nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from ...errors import Conflict, Forbidden, HealthGridError, Invalid, NotFound
from ...fhir import ERROR_SYSTEM, BundleAnswer, BundleHandler, BundleRequest, FhirRegistry
from ...security.domain import Actor
from .. import from_fhir as ff
from .. import from_fhir_bundle as fb
from .. import ingest_stored as stored
from ..ingest import Received, ingest
from ..ingest_refs import catalogue_of
from ..intake import MessageItem, Problem

TYPES = frozenset(fb.SUPPORTED)
READ_CODES = frozenset({"RES-200", "RES-201", "RES-202", "RES-203"})
CONFLICT_CODES = frozenset({"RES-193", "RES-194", "RES-196", "RES-197", "RES-199"})
REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 403: "Forbidden", 409: "Conflict",
           422: "Unprocessable Entity"}


def register(fhir: FhirRegistry) -> None:
    fhir.register_bundle_handler(BundleHandler(
        name="results", resource_types=TYPES, handle=handle_bundle,
        documentation="Results (检查检验结果): DiagnosticReport with its Observations, ImagingStudies, Specimens,"
                      " ServiceRequest and subject Patient; transaction = all or none, batch = per report."))


def control_of(bundle: dict[str, Any]) -> str | None:
    ident = bundle.get("identifier") or {}
    value = ident.get("value")
    return f"{ident.get('system') or ''}|{value}" if value else None


def handle_bundle(session: Session, request: BundleRequest) -> BundleAnswer:
    entries, problems = fb.read_entries(request.bundle)
    units = fb.units_of(entries, catalogue_of(session)) if not problems else []
    control = control_of(request.bundle)
    if request.kind == "transaction":
        unit = fb.merge(units, entries) if not problems else fb.Unit([e.index for e in entries])
        rec = _received(request.raw, unit.item, problems + _ordered(unit.problems), control)
        answer = ingest(session, request.actor, [rec])[0]
        if answer["status"] == "rejected":
            return BundleAnswer(_status(answer["errors"]), outcome(answer["errors"]))
        return BundleAnswer(200, _response("transaction-response", request.bundle, [(range(len(entries)), answer)]))
    if problems:  # a batch too large to read: refused whole, kept once
        answer = ingest(session, request.actor, [_received(request.raw, None, problems, control)])[0]
        return BundleAnswer(_status(answer["errors"]), outcome(answer["errors"]))
    recs = [_received(_unit_bytes(request.bundle, u), u.item, u.problems, f"{control}#{u.entries[0]}"
                      if control else None) for u in units]
    answers = ingest(session, request.actor, recs) if recs else []
    return BundleAnswer(200, _response("batch-response", request.bundle,
                                       [(u.entries, a) for u, a in zip(units, answers, strict=True)]))


def _ordered(problems: list[Problem]) -> list[Problem]:
    """Problems in entry order (entry 10 after entry 9), then the Bundle's own."""
    def key(p: Problem) -> tuple[int, str]:
        found = re.match(r"^Bundle\.entry\[(\d+)\]", p.where)
        return (int(found.group(1)) if found else 1 << 30, p.where)
    return sorted(problems, key=key)


def _received(content: bytes, item: MessageItem | None, problems: list[Problem], control: str | None,
              kind: str = "fhir_bundle") -> Received:
    if problems or item is None:
        issuer = item.issuer if item else None
        return Received(content, "fhir", kind, problems=tuple(problems) or (Problem(
            "RES-203", "the Bundle holds no result", "Bundle"),), issuer=issuer, control_id=control,
            application="FHIR", want_ids=True)
    return Received(content, "fhir", kind, item=replace(item, kind=kind, control_id=control or ""),
                    application="FHIR", want_ids=True)


def _unit_bytes(bundle: dict[str, Any], unit: fb.Unit) -> bytes:
    """A batch unit kept as its own message: its entries, as received, in a batch Bundle."""
    entries = [bundle["entry"][i] for i in sorted(unit.entries)]
    shell = {"resourceType": "Bundle", "type": "batch", "entry": entries}
    if bundle.get("identifier"):
        shell["identifier"] = bundle["identifier"]
    return json.dumps(shell, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- answers ------------------------------------------------------------------------------------------

def _status(errors: list[dict[str, Any]]) -> int:
    codes = {e["code"] for e in errors}
    if codes & READ_CODES:
        return 400
    if any(c.startswith("SEC-") for c in codes):
        return 403
    return 409 if codes & CONFLICT_CODES else 422


def outcome(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """An OperationOutcome with one issue per coded error, each naming its element."""
    issues = []
    for e in errors:
        code = e["code"]
        where = ".".join(p for p in (e.get("where"), e.get("field")) if p)
        issue = ("forbidden" if code.startswith("SEC-") else "structure" if code in READ_CODES
                 else "conflict" if code in CONFLICT_CODES else "invalid")
        issues.append({"severity": "error", "code": issue,
                       "details": {"coding": [{"system": ERROR_SYSTEM, "code": code}], "text": e["message"]},
                       "diagnostics": e["message"], "expression": [where] if where else []})
    return {"resourceType": "OperationOutcome", "issue": issues}


def _response(kind: str, bundle: dict[str, Any], parts: list[tuple[Any, dict[str, Any]]]) -> dict[str, Any]:
    count = len(bundle.get("entry") or [])
    out: list[dict[str, Any]] = [{"response": {"status": "200 OK"}} for _ in range(count)]
    # refused units first: an entry two units share (their Patient) answers as the one that passed
    for indexes, answer in sorted(parts, key=lambda part: part[1]["status"] != "rejected"):
        if answer["status"] == "rejected":
            status = _status(answer["errors"])
            for i in indexes:
                mine = [e for e in answer["errors"] if str(e.get("where", "")).startswith(f"Bundle.entry[{i}]")]
                out[i] = {"response": {"status": f"{status} {REASONS[status]}",
                                       "outcome": outcome(mine or answer["errors"])}}
            continue
        located = _locations(answer)
        for i in indexes:
            found = located.get(f"Bundle.entry[{i}].resource")
            if found is not None:
                out[i] = {"response": found if answer["status"] != "duplicate" else {**found, "status": "200 OK"}}
        patient = answer.get("patient")
        for i in indexes:
            res = bundle["entry"][i].get("resource") or {}
            if res.get("resourceType") == "Patient" and patient:
                created = patient["outcome"] in ("created", "review") and answer["status"] != "duplicate"
                out[i] = {"response": {"status": "201 Created" if created else "200 OK",
                                       "location": f"Patient/{patient['patient_id']}"}}
    return {"resourceType": "Bundle", "type": kind, "entry": out}


def _locations(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for rtype, rid, where, result, *version in answer.get("resources", []):
        if rid is None:
            continue
        location = f"{rtype}/{rid}" + (f"/_history/{version[0]}" if version else "")
        found[where] = {"status": "201 Created" if result == "created" else "200 OK", "location": location}
        if version:
            found[where]["etag"] = f'W/"{version[0]}"'
    return found


# -- one resource: the providers' create and update -----------------------------------------------------

def create_resource(session: Session, actor: Actor, resource_type: str, body: dict[str, Any]) -> int:
    """Create a DiagnosticReport (with contained Observations), an Observation (its own report:
    its identifier numbers it) or an ImagingStudy; the id of the row written. Coded errors as
    ``Invalid`` / ``Conflict`` / ``Forbidden`` naming the element."""
    return _one(session, actor, resource_type, {k: v for k, v in body.items() if k != "id"}, None)


def update_resource(session: Session, actor: Actor, resource_type: str, resource_id: int, body: dict[str, Any]) -> int:
    """Replace ``<resource_type>/<resource_id>`` with ``body`` through the pipeline: a released
    report changes only as a correction (status corrected / amended)."""
    return _one(session, actor, resource_type, body, resource_id)


def _one(session: Session, actor: Actor, rtype: str, body: dict[str, Any], target: int | None) -> int:
    if rtype not in fb.RESULT_TYPES or body.get("resourceType") != rtype:
        raise Invalid("RES-201", f"{body.get('resourceType')!r}: results are written as "
                      f"{', '.join(fb.RESULT_TYPES)}", {"field": "resourceType"})
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    problems = ff.validate(body, rtype)
    item: MessageItem | None = None
    if not problems:
        item, problems = _item(session, rtype, body, target)
    answer = ingest(session, actor, [_received(raw, item, problems, None, "fhir_resource")])[0]
    if answer["status"] == "rejected":
        raise _error(answer["errors"])
    ids = [rid for t, rid, *_ in answer.get("resources", []) if t == rtype and rid is not None]
    if target is not None and target in ids:
        return target
    if not ids:
        raise Invalid("RES-203", f"nothing of the {rtype} was written", {"field": rtype})
    return ids[0]


def _item(session: Session, rtype: str, body: dict[str, Any], target: int | None) -> tuple[MessageItem | None,
                                                                                          list[Problem]]:
    body = dict(body)
    kept: set[int] = set()
    ref = None
    if target is not None:
        ref = {"DiagnosticReport": stored.report_ref, "Observation": stored.observation_ref,
               "ImagingStudy": stored.study_ref}[rtype](session, target)
        if ref is None:
            raise NotFound("RES-208", f"{rtype}/{target} is not known", {"field": "id"})
        body.setdefault("subject", {"reference": f"Patient/{ref.patient_id}"})
        if rtype != "ImagingStudy":
            body.setdefault("performer", [{"reference": f"Organization/{ref.issuer_org_id}"}])
        if not body.get("identifier") and ref.filler_number and rtype != "ImagingStudy":
            body["identifier"] = [{"value": ref.filler_number}]
        if rtype == "DiagnosticReport":  # results naming this report's stored observations are kept
            kept = {int(r["reference"].split("/")[1]) for r in body.get("result", [])
                    if str(r.get("reference", "")).startswith("Observation/")
                    and r["reference"].split("/")[1].isdigit()}
            body["result"] = [r for r in body.get("result", []) if not str(r.get("reference", "")).startswith(
                "Observation/")]
    entry = fb.Entry(0, body, rtype, method="PUT" if target else "POST", target_id=target)
    units = fb.units_of([entry], catalogue_of(session))
    unit = units[0]
    if unit.problems or unit.item is None:
        return unit.item, unit.problems
    item = unit.item
    if target is not None and rtype == "Observation":
        item = _observation_update(session, item, ref, target)
    elif kept:
        report = item.reports[0]
        again = stored.observation_items(session, target, kept)
        item = replace(item, reports=(replace(report, observations=tuple(again) + report.observations),))
    return item, []


def _observation_update(session: Session, item: MessageItem, ref: stored.StoredRef, target: int) -> MessageItem:
    """An Observation updated alone: its stored report again, with this observation replaced."""
    report = stored.report_item(session, ref.report_id, "Observation")
    new = replace(item.reports[0].observations[0], observation_id=target)
    others = tuple(o for o in report.observations if o.observation_id != target)
    status = "corrected" if new.status in ("corrected", "amended") else report.status
    return replace(item, reports=(replace(report, observations=(*others, new), status=status),))


def _error(errors: list[dict[str, Any]]) -> HealthGridError:
    first = errors[0]
    detail = {"field": ".".join(p for p in (first.get("where"), first.get("field")) if p), "errors": errors}
    status = _status(errors)
    cls = Forbidden if status == 403 else Conflict if status == 409 else Invalid
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return cls(first["code"], first["message"] + more, detail)
