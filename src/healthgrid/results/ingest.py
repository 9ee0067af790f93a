"""Ingestion of results: the staged writer behind every channel (FHIR Bundles and resources,
HL7 v2 over the API, files and MLLP). CONVENTIONS "Bulk ingestion", per message:

1. read — the adapter turns the bytes into intake items (``from_hl7`` / ``from_fhir``) or the
   coded reason it cannot (RES-020…030 for HL7, RES-200… for FHIR);
2. preheat — once per run / chunk: organisations by code, local code maps and the catalogue,
   practitioners, the stored reports, studies and messages the chunk may touch (``ingest_refs``);
3. validate — the sender (``results.submit`` for the issuing organisation, SEC-103 audited
   when refused), the content (``intake.check_message``), then against what is stored and the
   patient index (``ingest_plan``), collecting every coded error;
4. write — all or none per message: a message with any error writes nothing of its content (a
   savepoint undoes a patient registered for it), the written ones a chunk at a time
   (``ingest_write``);
5. report — created / updated / ignored by resource type, errors by code, warnings, the patient
   outcome (created | linked | review, with the review-queue ids) and the report ids.

Every message is kept in ``res_message``, verbatim (encrypted with purpose "results.message";
text as ``text:…``, other bytes as ``base64:…``), with its report — rejected ones too (status
``rejected``), so nothing received is lost. A message received again (same source and control
ID: MSH-10, Bundle.identifier, or a digest of the content) answers the first report and writes
nothing. The source is "<organisation code>|<application>" (MSH-4 | MSH-3, or "FHIR"). A
rejected message is kept under "<control ID>!<digest>", so a corrected message sent again
with the same control ID is processed, and the same wrong one is not stored twice.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..config import ResultsSettings
from ..db import transaction, utcnow
from ..errors import HealthGridError
from ..security import ALL_SETTINGS_KEY, access, pii
from ..security.domain import Actor, AuditAction, Perm
from . import from_hl7, hl7v2, hl7v2_ack
from .hl7_answer import localise
from .ingest_patients import Refused
from .ingest_plan import MessagePlan, Stored, check_sender, own_org, plan_message
from .ingest_refs import Org, Run, StoredReport, catalogue_of, stored_messages, stored_reports, stored_studies
from .ingest_write import set_reports, write_messages, write_plans
from .intake import MessageItem, Problem, Tally, check_message

PURPOSE = "results.message"
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
CHUNK = 500


@dataclass
class Received:
    """A message as received, read or not."""

    content: bytes
    channel: str  # api | fhir | mllp | file
    kind: str  # hl7_oru | hl7_adt | hl7 (unreadable) | fhir_bundle | fhir_resource
    item: MessageItem | None = None
    problems: tuple[Problem, ...] = ()  # why it could not be read
    charset: str | None = None
    issuer: str | None = None  # for an unreadable message: MSH-4 as far as it can be read
    control_id: str | None = None
    application: str = ""
    want_ids: bool = False  # the adapter needs every written row's id (FHIR responses)
    source_org: str | None = None  # the organisation the channel stands for (CLI --source)


def digest(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def settings_of(session: Session) -> ResultsSettings:
    settings = session.info.get(ALL_SETTINGS_KEY)
    return settings.results if settings is not None else ResultsSettings()


def read_hl7(data: bytes, *, channel: str, catalogue: Any, charset: str | None = None,
             max_bytes: int = MAX_MESSAGE_BYTES, source_org: str | None = None) -> Received:
    """Parse one HL7 v2 message into a ``Received``; an unreadable one keeps its coded error."""
    if len(data) > max_bytes:
        head = hl7v2_ack.read_header(data[:4096])
        return Received(data, channel, "hl7", problems=(Problem("RES-210", f"the message has {len(data):,} bytes;"
                                                                 f" at most {max_bytes:,}", "message"),),
                        issuer=_issuer(head), control_id=head.control_id if head else None, source_org=source_org)
    try:
        msg = hl7v2.parse_message(data, charset=charset)
    except HealthGridError as exc:
        head = hl7v2_ack.read_header(data)
        return Received(data, channel, "hl7", problems=(Problem.of(exc),), issuer=_issuer(head),
                        control_id=head.control_id if head else None,
                        application=head.sending_application if head else "", source_org=source_org)
    item = from_hl7.to_intake(msg, catalogue=catalogue)
    return Received(data, channel, item.kind, item=item, charset=msg.codec, application=item.application,
                    source_org=source_org)


def _issuer(head: hl7v2.Header | None) -> str | None:
    return (head.sending_facility_id or head.sending_facility or None) if head else None


# -- the pipeline ----------------------------------------------------------------------------------

class _Chunk:
    """The stored facts a chunk touches, the plans waiting to be written, and their keys."""

    def __init__(self, session: Session, run: Run, received: Sequence[Received], actor: Actor):
        items = [r.item for r in received if r.item is not None]
        run.preheat_orgs(session, items)
        self.keys: dict[int, tuple[str, str, Org | None]] = {}
        msg_keys, rep_keys, uids = set(), set(), set()
        self.mismatch: dict[int, Problem] = {}
        for i, rec in enumerate(received):
            org = run.org(session, (rec.item.issuer if rec.item else rec.issuer) or own_org(actor))
            if rec.source_org:
                org = self._source(session, run, i, rec, org)
            source, control = _key(rec, org)
            self.keys[i] = (source, control, org)
            msg_keys.add((source, control))
            if rec.item is not None and org is not None:
                rep_keys |= {(org.id, r.filler_number) for r in rec.item.reports}
                uids |= {s.study_uid for r in rec.item.reports for s in r.studies}
                uids |= {s.study_uid for s in rec.item.studies}
        self.messages = stored_messages(session, msg_keys)
        self.stored = Stored(stored_reports(session, rep_keys), stored_studies(session, uids))
        self.pending: list[tuple[int, Received, MessagePlan]] = []
        self.pending_keys: set[tuple] = set()

    def _source(self, session: Session, run: Run, i: int, rec: Received, org: Org | None) -> Org | None:
        """A channel that stands for one organisation (a file imported with --source): a message
        from another one is refused; a sender named by something else than its code is taken
        as that organisation."""
        mine = run.org(session, rec.source_org)
        if mine is None or org is None or org.id == mine.id:
            return mine if org is None else org
        self.mismatch[i] = Problem("RES-192", f"the message is from {org.code} ({org.name}) but the channel stands for"
                                   f" {mine.code}", "message", "MSH-4")
        return org


def _key(rec: Received, org: Org | None) -> tuple[str, str]:
    app = _printable((rec.item.application if rec.item else rec.application) or "")
    who = org.code if org is not None else f"?{_printable((rec.item.issuer if rec.item else rec.issuer) or '')}"
    control = (rec.item.control_id if rec.item else rec.control_id) or digest(rec.content)
    if len(control) > 100 or _printable(control) != control:
        control = digest(control.encode("utf-8", errors="replace"))
    return f"{who[:59]}|{app[:60]}", control


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def ingest(session: Session, actor: Actor, received: Sequence[Received], *, run: Run | None = None,
           now: datetime | None = None) -> list[dict[str, Any]]:
    """Validate and write each message (all or none per message) in one transaction; the
    answer per message, in order. Call it with chunks of a few hundred messages."""
    with transaction(session):
        if not actor.can(Perm.RESULT_SUBMIT):  # refused whole and audited: not a sender at all
            access.check(session, actor, Perm.RESULT_SUBMIT, AuditAction.CREATE, resource_type="DiagnosticReport")
        run = run or Run.start(session)
        now = now or utcnow()
        out: list[dict[str, Any] | None] = [None] * len(received)
        for start in range(0, len(received), CHUNK):
            part = received[start:start + CHUNK]
            chunk = _Chunk(session, run, part, actor)
            for i, rec in enumerate(part):
                out[start + i] = _stage(session, actor, run, chunk, i, rec, now, out, start)
            _flush(session, actor, chunk, now, out, start)
        return out  # type: ignore[return-value]  # every message answered by now


def _stage(session: Session, actor: Actor, run: Run, chunk: _Chunk, i: int, rec: Received, now: datetime,
           out: list, start: int) -> dict[str, Any] | None:
    """Validate one message: its answer now (duplicate, rejected) or None (planned, answered at
    the flush)."""
    source, control, org = chunk.keys[i]
    if rec.item is None:
        return _reject(session, actor, chunk, rec, source, control, org, list(rec.problems), now)
    if i in chunk.mismatch:
        return _reject(session, actor, chunk, rec, source, control, org, [chunk.mismatch[i]], now)
    if org is None:
        shown = rec.item.issuer or "(none)"
        problem = Problem("RES-192", f"the sending organisation {shown!r} is not an organisation code of the"
                          " registry (MSH-4 / DiagnosticReport.performer; a token without one organisation must"
                          " name it)", "message", "MSH-4" if rec.kind.startswith("hl7") else "performer")
        return _reject(session, actor, chunk, rec, source, control, None, [problem], now)
    keys = _keys(rec.item, org, source, control)
    if keys & chunk.pending_keys:
        _flush(session, actor, chunk, now, out, start)
    try:
        check_sender(session, actor, run, org)  # before a duplicate's answer: it is the sender's report
        if (source, control) in chunk.messages:
            mid, report = chunk.messages[(source, control)]
            return {**report, "status": "duplicate", "duplicate_of": mid}
        problems = check_message(rec.item, now=now)
        if problems:
            raise Refused(*problems)
        plan = _plan(session, actor, run, chunk, rec, org, source, control, now)
    except Refused as exc:
        return _reject(session, actor, chunk, rec, source, control, org, exc.problems, now)
    chunk.pending.append((i, rec, plan))
    chunk.pending_keys |= keys
    return None


def _keys(item: MessageItem, org: Org, source: str, control: str) -> set[tuple]:
    studies = [s for r in item.reports for s in r.studies] + list(item.studies)
    return ({("m", source, control)} | {("r", org.id, r.filler_number) for r in item.reports}
            | {("s", s.study_uid) for s in studies})


def _plan(session: Session, actor: Actor, run: Run, chunk: _Chunk, rec: Received, org: Org, source: str,
          control: str, now: datetime) -> MessagePlan:
    """plan_message in a savepoint when it may register a patient, so a refusal undoes it."""
    item = rec.item
    cached = item.patient is None or item.patient.patient_id is not None or (org.id, item.patient.key()) in run.patients
    before = set(run.patients)
    try:
        with contextlib.nullcontext() if cached else session.begin_nested():
            return plan_message(session, actor, run, chunk.stored, item, org=org, source=source, control_id=control,
                                today=now.date())
    except Refused:
        for key in set(run.patients) - before:  # the registration was undone with the savepoint
            del run.patients[key]
        raise


def _flush(session: Session, actor: Actor, chunk: _Chunk, now: datetime, out: list, start: int) -> None:
    """Write the planned messages: all in one go, or — when a concurrent writer took a report or
    study number meanwhile — one by one, refusing only those."""
    if not chunk.pending:
        return
    pending, chunk.pending, chunk.pending_keys = chunk.pending, [], set()
    try:
        with session.begin_nested():
            answers = _write(session, actor, pending, now)
    except IntegrityError:
        answers = []
        for one in pending:
            try:
                with session.begin_nested():
                    answers += _write(session, actor, [one], now)
            except IntegrityError:
                i, rec, plan = one
                problem = Problem("RES-199", "another message stored the same report or study at the same moment;"
                                  " send this message again", "message")
                answers.append((i, _reject(session, actor, chunk, rec, plan.source, plan.control_id, plan.org,
                                           [problem], now)))
    for i, answer in answers:
        out[start + i] = answer
        if answer["status"] == "accepted":
            chunk.messages[(answer["source"], answer["control_id"])] = (answer["message_id"], answer)
    for _, _, plan in pending:
        for rp in plan.reports:
            if rp.report_id is not None:
                version = (rp.stored.version + (rp.outcome == "updated")) if rp.stored else 1
                chunk.stored.reports[(plan.org.id, rp.values["filler_number"])] = StoredReport(
                    rp.report_id, rp.values["patient_id"], rp.values["status"], version)
            for s in rp.studies:
                chunk.stored.studies[s.values["study_uid"]] = (s.study_id, s.values["patient_id"], plan.org.id)


def _write(session: Session, actor: Actor, pending: list[tuple[int, Received, MessagePlan]],
           now: datetime) -> list[tuple[int, dict[str, Any]]]:
    rows = [_message_row(session, actor, rec, plan.source, plan.control_id, plan.org, "accepted", now)
            for _, rec, plan in pending]
    ids = write_messages(session, rows)
    plans = [plan for _, _, plan in pending]
    write_plans(session, actor, plans, ids, now=now, want_ids=any(rec.want_ids for _, rec, _ in pending))
    answers = [(i, _accepted(rec, plan, mid, now)) for (i, rec, plan), mid in zip(pending, ids, strict=True)]
    set_reports(session, [(a["message_id"], a) for _, a in answers])
    return answers


def _message_row(session: Session, actor: Actor, rec: Received, source: str, control: str, org: Org | None,
                 status: str, now: datetime) -> dict[str, Any]:
    try:
        content = "text:" + rec.content.decode("utf-8")
        if "\x00" in content:
            raise UnicodeDecodeError("utf-8", rec.content, 0, 1, "NUL")  # no text column takes NUL
    except UnicodeDecodeError:
        content = "base64:" + base64.b64encode(rec.content).decode("ascii")
    return {"kind": rec.kind, "source": source, "control_id": control, "channel": rec.channel,
            "content_enc": pii.seal(session, content, PURPOSE), "charset": rec.charset, "status": status,
            "report": {}, "received_at": now, "received_by": actor.username[:100],
            "org_id": org.id if org is not None else None}


def _reject(session: Session, actor: Actor, chunk: _Chunk, rec: Received, source: str, control: str,
            org: Org | None, problems: list[Problem], now: datetime) -> dict[str, Any]:
    """Keep the refused message (status rejected) with its report; the same refused bytes twice
    are kept once."""
    if org is not None and not access.in_scope(session, actor, Perm.RESULT_SUBMIT, org.id):
        org = None  # a claim the sender may not make: the message is logged as theirs, not the organisation's
    key = f"{control[:100]}!{hashlib.sha256(rec.content).hexdigest()[:16]}"
    answer = _answer(rec, "rejected", source, control, org, now, Tally(), problems=problems,
                     warnings=list(rec.item.warnings) if rec.item else [])
    found = chunk.messages.get((source, key)) or stored_messages(session, {(source, key)}).get((source, key))
    if found is not None:
        return {**answer, "message_id": found[0]}
    row = _message_row(session, actor, rec, source, key, org, "rejected", now)
    mid = write_messages(session, [{**row, "report": answer}])[0]
    answer["message_id"] = mid
    set_reports(session, [(mid, answer)])
    chunk.messages[(source, key)] = (mid, answer)
    return answer


def _accepted(rec: Received, plan: MessagePlan, mid: int, now: datetime) -> dict[str, Any]:
    tally = Tally()
    if plan.patient is not None and plan.patient.outcome in ("created", "review"):
        tally.add("created", "Patient")
    elif plan.patient is not None and rec.kind == "hl7_adt":
        tally.add("updated", "Patient")
    resources: list[list[Any]] = []
    for rp in plan.reports:
        tally.add(rp.outcome, "DiagnosticReport")
        version = 1 if rp.stored is None else rp.stored.version + (rp.outcome == "updated")
        resources.append(["DiagnosticReport", rp.report_id, rp.item.where, rp.outcome, version])
        for o in rp.observations:
            tally.add(o.outcome if rp.outcome != "ignored" else "ignored", "Observation")
            resources.append(["Observation", o.observation_id, o.item.where, o.outcome])
        if rp.retired:
            tally.add("updated", "Observation", len(rp.retired))
        for s in rp.studies:
            tally.add(s.outcome, "ImagingStudy")
            resources.append(["ImagingStudy", s.study_id, s.item.where, s.outcome])
    for s in plan.studies:
        tally.add(s.outcome, "ImagingStudy")
        resources.append(["ImagingStudy", s.study_id, s.item.where, s.outcome])
    answer = _answer(rec, "accepted", plan.source, plan.control_id, plan.org, now, tally, warnings=plan.warnings)
    answer.update(message_id=mid, patient=plan.patient.as_dict() if plan.patient else None,
                  reports=[{"id": rp.report_id, "filler_number": rp.values["filler_number"],
                            "status": rp.values["status"], "item": rp.values["item"], "outcome": rp.outcome}
                           for rp in plan.reports])
    if rec.want_ids:
        answer["resources"] = resources
    return answer


def _answer(rec: Received, status: str, source: str, control: str, org: Org | None, now: datetime, tally: Tally, *,
            problems: Sequence[Problem] = (), warnings: Sequence[Problem] = ()) -> dict[str, Any]:
    if rec.kind.startswith("hl7"):
        problems, warnings = [localise(p) for p in problems], [localise(p) for p in warnings]
    return {"message_id": None, "status": status, "kind": rec.kind, "channel": rec.channel, "source": source,
            "control_id": control, "org": org.code if org else None, "received_at": now.isoformat(),
            **tally.as_dict(), "errors": [p.as_dict() for p in problems],
            "errors_by_code": dict(Counter(p.code for p in problems)),
            "warnings": [p.as_dict() for p in warnings], "patient": None, "reports": []}


def ingest_hl7(session: Session, actor: Actor, data: bytes, *, channel: str, run: Run | None = None,
               source_org: str | None = None) -> dict[str, Any]:
    """One HL7 v2 message, read and ingested; its report."""
    cfg = settings_of(session)
    received = read_hl7(data, channel=channel, catalogue=catalogue_of(session), charset=cfg.hl7_charset or None,
                        max_bytes=cfg.max_message_bytes, source_org=source_org)
    return ingest(session, actor, [received], run=run)[0]
