"""A background sealer per server process: audited commits wake it, it chains what is
waiting in one transaction (audit.seal), so the request path pays one insert and no lock,
and the chain's commits are shared by every row written meanwhile.

Without a sealer in the session's info (tests, the CLI), rows are chained right after the
commit that wrote them, in the same thread."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("healthgrid.audit")
SEALER_KEY = "healthgrid_audit_sealer"


class Sealer:
    def __init__(self) -> None:
        self.maker: sessionmaker[Session] | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._dirty = False  # woken since the last seal

    def start(self, maker: sessionmaker[Session]) -> None:
        self.maker = maker
        if self._thread is None or not self._thread.is_alive():
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="audit-sealer", daemon=True)
            self._thread.start()

    def notify(self) -> None:
        self._dirty = True
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
            if self._dirty:
                self._seal_once()  # what the last requests wrote

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping.is_set()

    def _run(self) -> None:
        # Works only when woken: a commit that wrote audit rows. Leftovers of a crash are
        # chained by `healthgrid worker` and `healthgrid audit verify`.
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping.is_set():
                return
            self._seal_once()

    def _seal_once(self) -> None:
        from .audit import seal

        if self.maker is None:
            return
        self._dirty = False
        try:
            with self.maker() as session:
                seal(session)
        except Exception:  # noqa: BLE001 - logged; the next wake-up retries
            log.exception("sealing the audit chain failed; retrying")
