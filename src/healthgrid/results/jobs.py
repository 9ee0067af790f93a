"""The worker's share of shared results: tell the ordering doctor and the patient that a result
is available (or was corrected), from the ``results.available`` events the ingestion writes in
the same transaction as the report (issue 7 item 6).

Recipients: the ordering practitioner (a "practitioner" inbox) — or, when the message named
none the registry knows, the ordering organisation's desk ("org") — and the patient ("patient").
The text names the item and the issuing organisation only, never a value: a result is read on
the timeline, where access is checked and audited. Idempotent: each (report, version,
recipient) is notified once (``dedupe_key``), so a redelivered event notifies nobody twice and a
correction (a new version) notifies again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..notifications import service as notifications
from ..registry import queries as registry_queries
from .ingest_refs import catalogue_of
from .models import Report

TITLES = {"available": ("检查检验结果已出", "Result available"),
          "corrected": ("检查检验结果已更正", "Result corrected")}


def _item_name(session: Session, report: Report) -> tuple[str, str]:
    item = catalogue_of(session).find(report.item) if report.item else None
    if item is not None:
        return item.zh, item.en
    return report.display, report.display


def on_result_available(session: Session, payload: dict[str, Any]) -> None:
    # populate_existing: a long-lived worker session may hold the row from an earlier event, and the
    # pipeline writes with Core statements that do not refresh it
    report = session.get(Report, payload.get("report_id"), populate_existing=True)
    if report is None:
        return
    kind = "corrected" if report.status in ("corrected", "amended") else "available"
    title = TITLES[kind]
    zh_item, en_item = _item_name(session, report)
    issuer = registry_queries.organization_or_none(session, report.issuer_org_id)
    where = issuer.name if issuer is not None else ""
    body = {"zh": f"{where}{zh_item}报告{'已更正' if kind == 'corrected' else '已出'}，请在检查检验结果中查看。",
            "en": f"{en_item} report from {where} {'corrected' if kind == 'corrected' else 'available'};"
                  " see the results timeline."}
    recipients = [("patient", report.patient_id)]
    if report.ordering_practitioner_id:
        recipients.append(("practitioner", report.ordering_practitioner_id))
    elif report.ordering_org_id:
        recipients.append(("org", report.ordering_org_id))
    for recipient_kind, rid in recipients:
        notifications.notify(session, notifications.Note(
            recipient_kind=recipient_kind, recipient_id=rid, topic=f"results.{kind}",
            title={"zh": title[0], "en": title[1]}, body=body, link=f"/patients/{report.patient_id}",
            dedupe_key=f"results:{report.id}:{report.version}:{recipient_kind}:{rid}"))


HANDLERS = {"results.available": [on_result_available]}
