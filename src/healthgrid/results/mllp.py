"""The HL7 v2 MLLP listener (``healthgrid results mllp``): hospital LIS/RIS/HIS connect over TCP
and send framed messages (<VT> message <FS><CR>, HL7 v2 Minimal Lower Layer Protocol); each
one is ingested in a worker thread and answered on the same connection, which stays open for
the next message.

Acknowledged means stored: the ACK (AA) is written only after the ingestion's transaction has
committed; a message refused is kept as rejected and answered with a NAK (AE/AR, MSA-3 naming
the problem, ERR locating it); a failure to store it at all (the database is away) is answered
AE 207 — the sender keeps the message and sends it again, and the same control ID then answers
as the first time (``res_message`` is unique on source + MSH-10). Bytes outside a frame, a
frame inside a frame or a message over the size limit get a NAK (AR, RES-030 / RES-210), the
reader skips to the next start block, and the connection carries on.

Who sends: the listener acts as one configured integration account
(``HEALTHGRID_RESULTS__MLLP_USER``); each message's MSH-4 names the issuing organisation, which
must be in that account's ``results.submit`` scope (a facility administrator: its own hospital;
a division-scoped account: a regional gateway's hospitals). asyncio streams
(``asyncio.start_server``) with the framing of ``hl7v2_ack``; python-hl7's ``hl7.mllp`` reader
decodes with one fixed charset before we could read MSH-18, so the frames are read here as bytes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hl7.mllp.streams import END_BLOCK, START_BLOCK
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import Invalid
from ..security.domain import Actor
from . import hl7_answer, hl7v2_ack
from .ingest import ingest_hl7
from .ingest_refs import Run

log = logging.getLogger("healthgrid.results.mllp")
_numbers = itertools.count(1)


@dataclass
class ListenerConfig:
    host: str = "127.0.0.1"
    port: int = 2575
    max_message_bytes: int = 4 * 1024 * 1024
    idle_seconds: float = 600
    workers: int = 2


class Listener:
    """``sessions``: a factory of database sessions (with the keyring); ``actor``: who sends."""

    def __init__(self, sessions: Callable[[], Session], actor: Actor, config: ListenerConfig):
        self.sessions = sessions
        self.actor = actor
        self.config = config
        self.pool = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="mllp-ingest")
        self.server: asyncio.Server | None = None
        self.handled = 0
        self._clients: set[asyncio.Task] = set()

    async def start(self) -> asyncio.Server:
        self.server = await asyncio.start_server(self._client, self.config.host, self.config.port)
        return self.server

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening; connections get a few seconds to finish the message in hand."""
        if self.server is not None:
            self.server.close()
        if self._clients:
            _, late = await asyncio.wait(set(self._clients), timeout=5)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()
        self.pool.shutdown(wait=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        run: Run | None = None  # references looked up once per connection
        buffer = b""
        try:
            while True:
                data = await asyncio.wait_for(reader.read(65536), timeout=self.config.idle_seconds)
                if not data:
                    break
                buffer += data
                buffer, run = await self._drain(buffer, writer, run)
        except (TimeoutError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()
            log.debug("MLLP connection from %s closed", peer)

    async def _drain(self, buffer: bytes, writer: asyncio.StreamWriter, run: Run | None) -> tuple[bytes, Run | None]:
        """Answer every complete frame in ``buffer``; what is left waits for more bytes."""
        while buffer:
            start = buffer.find(START_BLOCK)
            if start != 0:
                junk, buffer = (buffer, b"") if start < 0 else (buffer[:start], buffer[start:])
                if junk.strip():
                    await self._send(writer, self._bad_frame(junk, "bytes outside an MLLP frame (expected 0x0B)"))
                continue
            end = buffer.find(END_BLOCK)
            if end < 0:
                if len(buffer) > self.config.max_message_bytes + 3:
                    await self._send(writer, self._bad_frame(buffer[1:4097], "RES-210"))
                    buffer = b""
                return buffer, run
            if len(buffer) < end + 2:
                return buffer, run  # the CR after FS has not arrived yet
            inner = buffer.find(START_BLOCK, 1, end)
            if inner > 0:  # a frame cut short, then a new one: refuse the stump, read the new frame
                await self._send(writer, self._bad_frame(buffer[1:inner], "a frame ended without 0x1C 0x0D"))
                buffer = buffer[inner:]
                continue
            block, buffer = buffer[:end + 2], buffer[end + 2:]
            try:
                payload = hl7v2_ack.unframe(block)
            except Invalid as exc:
                await self._send(writer, self._bad_frame(block[1:end], exc.message))
                continue
            answer, run = await asyncio.get_running_loop().run_in_executor(self.pool, self._ingest, payload, run)
            await self._send(writer, answer)
        return buffer, run

    def _ingest(self, payload: bytes, run: Run | None) -> tuple[bytes, Run | None]:
        """In a worker thread: store, commit, then build the answer (ACK only after the commit)."""
        control = f"HG{uuid.uuid4().hex[:18].upper()}"
        try:
            with self.sessions() as session:
                run = run or Run.start(session)
                report = ingest_hl7(session, self.actor, payload, channel="mllp", run=run)
            self.handled += 1
            text = hl7_answer.answer(payload, report, now=utcnow(), control_id=control)
        except Exception:  # noqa: BLE001 - not stored: the sender must send it again
            log.exception("an MLLP message could not be stored")
            text, run = hl7_answer.internal_nak(payload, now=utcnow(), control_id=control), None
        return hl7v2_ack.frame(hl7v2_ack.encode(text, hl7_answer.codec_of(payload))), run

    def _bad_frame(self, payload: bytes, why: str) -> bytes:
        code = "RES-210" if why == "RES-210" else "RES-030"
        message = (f"the message is over {self.config.max_message_bytes:,} bytes" if code == "RES-210"
                   else f"MLLP: {why}")
        error = Invalid(code, message, {"field": "MLLP", "segment": "MSH"})
        text = hl7v2_ack.build_nak(payload if payload.lstrip().startswith(b"MSH") else None, error, now=utcnow(),
                                   control_id=f"HG{next(_numbers):06d}", ack_code="AR")
        return hl7v2_ack.frame(text.encode("utf-8"))

    async def _send(self, writer: asyncio.StreamWriter, framed: bytes) -> None:
        writer.write(framed)
        await writer.drain()


async def serve(sessions: Callable[[], Session], actor: Actor, config: ListenerConfig,
                ready: Callable[[int], None] | None = None) -> None:
    """Run the listener until cancelled."""
    listener = Listener(sessions, actor, config)
    server = await listener.start()
    if ready is not None:
        ready(listener.port)
    try:
        async with server:
            await server.serve_forever()
    finally:
        await listener.close()
