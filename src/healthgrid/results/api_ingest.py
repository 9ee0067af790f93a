"""REST API of result ingestion under ``/api/results``: parse, one service call, render.

- ``POST /hl7`` — one HL7 v2 message (``text/plain`` or ``application/hl7-v2``, the bytes as
  the LIS sends them: CR between segments, the charset of MSH-18): ``{"ack": <the ACK or NAK
  text>, "report": <the ingestion report>}``, 200 when stored (accepted, or a duplicate of a
  stored message), 422 when refused (the NAK names the problem; the message is kept as
  rejected). FHIR clients post Bundles to ``/fhir`` instead.
- ``GET /messages`` — the ingestion log of one's organisations (reports only, no content);
  ``GET /messages/{id}`` — one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from ..db import utcnow
from ..errors import Invalid
from ..http import SessionDep
from ..security.http import ActorDep
from . import hl7_answer, ingest, ingest_log

router = APIRouter()
MAX_ID = 2**31 - 1
HL7_TYPES = ("text/plain", "application/hl7-v2", "x-application/hl7-v2+er7", "application/octet-stream")
HL7_BODY = {"requestBody": {"required": True, "content": {
    t: {"schema": {"type": "string", "description": "one HL7 v2 message (ORU^R01, ADT^A01/A04/A08)"}}
    for t in HL7_TYPES[:2]}}}


class Hl7Out(BaseModel):
    ack: str
    report: dict[str, Any]


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    channel: str
    source: str
    control_id: str
    status: str
    org_id: int | None
    received_at: datetime
    received_by: str
    report: dict[str, Any]


class MessageList(BaseModel):
    total: int
    items: list[MessageOut]


async def hl7_body(request: Request) -> bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype not in HL7_TYPES:
        raise Invalid("RES-210", f"the body is one HL7 v2 message sent as text/plain or application/hl7-v2, not"
                      f" {ctype}", {"field": "content-type"})
    settings = getattr(request.app.state, "settings", None)
    limit = settings.results.max_message_bytes if settings is not None else ingest.MAX_MESSAGE_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Invalid("RES-210", f"the message has {int(declared):,} bytes; at most {limit:,}", {"field": "body"})
    data = await request.body()
    if not data.strip():
        raise Invalid("RES-020", "the body is empty: send one HL7 v2 message starting with MSH", {"field": "body"})
    return data


@router.post("/hl7", response_model=Hl7Out, openapi_extra=HL7_BODY)
def post_hl7(actor: ActorDep, session: SessionDep, response: Response,
             data: Annotated[bytes, Depends(hl7_body)]) -> Hl7Out:
    # The actor first: an anonymous caller's body is not read before the 401.
    report = ingest.ingest_hl7(session, actor, data, channel="api")
    text = hl7_answer.answer(data, report, now=utcnow(), control_id=f"HG{uuid.uuid4().hex[:18].upper()}")
    response.status_code = 200 if report["status"] in ("accepted", "duplicate") else 422
    return Hl7Out(ack=text, report=report)


@router.get("/messages", response_model=MessageList)
def messages(session: SessionDep, actor: ActorDep,
             status: Annotated[Literal["accepted", "rejected"] | None, Query()] = None,
             kind: Annotated[Literal["hl7_oru", "hl7_adt", "hl7", "fhir_bundle", "fhir_resource"] | None,
                             Query()] = None,
             channel: Annotated[Literal["api", "fhir", "mllp", "file"] | None, Query()] = None,
             offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
             limit: Annotated[int, Query(ge=1, le=200)] = 50) -> MessageList:
    page = ingest_log.list_messages(session, actor, status=status, kind=kind, channel=channel, offset=offset,
                                    limit=limit)
    return MessageList(total=page.total, items=[MessageOut.model_validate(m) for m in page.items])


@router.get("/messages/{message_id}", response_model=MessageOut)
def message(message_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep, actor: ActorDep) -> MessageOut:
    return MessageOut.model_validate(ingest_log.get_message(session, actor, message_id))
