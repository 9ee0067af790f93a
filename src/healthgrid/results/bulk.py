"""Bulk ingestion of many messages (a file import, a backlog, the benchmark): the pipeline's read
stage (HL7 parsing, FHIR validation — pure CPU) runs in a worker process on the next chunk while
this process writes the current one, so the two stages use two cores instead of one. The write
stage is ``ingest.ingest`` as for every channel: one transaction per chunk, all or none per
message. The readers are module-level functions, so a worker process can run them; they use the
packaged catalogue (a deployment's own catalogue is read in the writing process: pass
``workers=0``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from ..security.domain import Actor
from . import from_fhir_bundle as fb
from .catalogue import load_catalogue
from .ingest import MAX_MESSAGE_BYTES, Received, ingest, read_hl7
from .ingest_refs import Run
from .intake import Problem

Reader = Callable[[list[Any]], list[Received]]  # a chunk as the caller holds it -> what was read


def read_hl7_chunk(payloads: list[bytes], channel: str = "file", charset: str | None = None,
                   max_bytes: int = MAX_MESSAGE_BYTES, source_org: str | None = None) -> list[Received]:
    catalogue = load_catalogue()
    return [read_hl7(p, channel=channel, catalogue=catalogue, charset=charset, max_bytes=max_bytes,
                     source_org=source_org) for p in payloads]


def read_fhir_transactions(payloads: list[bytes], channel: str = "fhir") -> list[Received]:
    """Transaction Bundles as ``POST /fhir`` reads them: each resource validated, references
    resolved, one unit per Bundle (kept whole, verbatim)."""
    catalogue = load_catalogue()
    out = []
    for raw in payloads:
        try:
            bundle = json.loads(raw)
        except ValueError:
            out.append(Received(raw, channel, "fhir_bundle", problems=(Problem("RES-203", "not JSON", "Bundle"),)))
            continue
        entries, problems = fb.read_entries(bundle)
        unit = fb.merge(fb.units_of(entries, catalogue), entries)
        ident = bundle.get("identifier") or {}
        control = f"{ident.get('system') or ''}|{ident['value']}" if ident.get("value") else ""
        problems += unit.problems
        if problems or unit.item is None:
            out.append(Received(raw, channel, "fhir_bundle", problems=tuple(problems) or (
                Problem("RES-203", "the Bundle holds no result", "Bundle"),), control_id=control or None,
                application="FHIR", want_ids=True))
        else:
            out.append(Received(raw, channel, "fhir_bundle", item=replace(unit.item, control_id=control),
                                application="FHIR", want_ids=True))
    return out


def import_chunks(session: Session, actor: Actor, chunks: Iterable[list[Any]], read: Reader, *, workers: int = 1,
                  run: Run | None = None, **read_args: Any) -> Iterator[list[dict[str, Any]]]:
    """The reports of each chunk, in order; chunk i+1 is read in a worker while chunk i is
    written (``workers=0``: everything in this process)."""
    run = run or Run.start(session)
    if workers <= 0:
        for chunk in chunks:
            yield ingest(session, actor, read(chunk, **read_args), run=run)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: list[Future] = []
        for chunk in chunks:
            pending.append(pool.submit(read, chunk, **read_args))
            if len(pending) > workers:
                yield ingest(session, actor, pending.pop(0).result(), run=run)
        for future in pending:
            yield ingest(session, actor, future.result(), run=run)
