"""The worker's share of surveillance: react to report cards and signals through the outbox,
and the periodic jobs.

- ``surveillance.card_reported`` — a case of a fixed-threshold disease (plague, cholera,
  SARS, polio, novel influenza, pulmonary anthrax, pneumonia of unknown cause) is a signal
  at once (CIDARS real-time single-case alert, ../shared/specs/domain-rules.md §5.4).
- ``surveillance.signal_generated`` — the county CDC's desk is notified; the signal becomes
  NOTIFIED.
- ``tick``: yesterday's detection once the local clock has passed ``detection_hour``
  (``surv_run`` makes it once per day, whatever the number of workers; up to a week missed
  while the worker was down is caught up), and one reminder
  for each signal still unverified 24 hours after it was generated.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..db import transaction, utcnow
from . import detection, signals


def on_card_reported(session: Session, payload: dict[str, Any]) -> None:
    signals.raise_for_card(session, payload)


def on_signal_generated(session: Session, payload: dict[str, Any]) -> None:
    signal_id = payload.get("signal_id")
    if isinstance(signal_id, int):
        signals.notify_signal(session, signal_id)


HANDLERS = {"surveillance.card_reported": [on_card_reported],
            "surveillance.signal_generated": [on_signal_generated]}


def tick(session: Session, now: datetime | None = None) -> dict[str, int]:
    now = now or utcnow()
    done = {"surveillance_detected": 0, "surveillance_signals": 0}
    with transaction(session):
        days = detection.due_days(session, now)
    for day in days:
        report = detection.run_day(session, day, now=now)
        done["surveillance_detected"] += 0 if report.get("skipped") else 1
        done["surveillance_signals"] += len(report.get("signal_ids", []))
    done["surveillance_reminders"] = signals.remind_overdue(session, now)
    return done
