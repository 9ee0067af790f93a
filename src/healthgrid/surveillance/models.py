"""Tables of the surveillance context (prefix ``surv_``).

- ``surv_card`` — a notifiable-disease report card (传染病报告卡) as it stands now, with its
  reporting and review clocks; ``surv_card_event`` — every first report, correction,
  deletion, review and return, with who and when. The card's personal fields (name, ID
  number, phone, parent, work unit, addresses in words) are one AES-GCM ciphertext
  (``security.pii``, rotated by ``healthgrid keys rotate``); what surveillance counts by —
  disease, dates, sex, age, population group, address *codes* — stays in clear.
- ``surv_feed_batch`` / ``surv_feed_count`` — the daily counts of the other channels
  (多点触发: fever clinics and EDs, pharmacies, schools, laboratories), one row per feed,
  source, place, day and metric, with the ingestion report of each batch.
- ``surv_run`` — one row per day the detectors ran, so the daily job is idempotent.
- ``surv_signal`` / ``surv_signal_event`` — early-warning signals and their response
  (CIDARS lifecycle, ../shared/specs/domain-rules.md §5.4). ``open_key`` is
  ``"<stream>|<division>"`` while a signal is open and NULL once closed: a unique
  constraint then keeps one open signal per disease (or feed metric) and place, on SQLite
  and PostgreSQL alike (NULLs are distinct).
- ``surv_warning`` — the three warning products of 传染病疫情预警管理办法(试行) (2025),
  drafted from a signal and issued.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, utcnow


class Card(Base):
    """One report card, current version. Corrections and deletions change it in place and
    are logged as events (NIDRIS keeps one card number through its 订正 and 删除)."""

    __tablename__ = "surv_card"
    __table_args__ = (
        Index("ix_surv_card_county_disease", "county_code", "disease", "diagnosed_at"),
        Index("ix_surv_card_status_review", "status", "review_due_at"),
        Index("ix_surv_card_org_reported", "report_org_id", "reported_at"),
        UniqueConstraint("idem_owner", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_number: Mapped[str] = mapped_column(String(30), unique=True)
    report_type: Mapped[str] = mapped_column(String(12))  # first | correction | deletion (the last action)
    status: Mapped[str] = mapped_column(String(12), index=True)  # reported | reviewed | returned | deleted
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("pat_patient.id"), index=True)
    # Personal fields, encrypted as one JSON document; the ID number also as a blind index
    # to find the same person's earlier cards (重卡 checks) without decrypting.
    personal_enc: Mapped[str] = mapped_column(Text, info={"pii": "surv.card.personal"})
    id_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    # What surveillance counts by, in clear
    sex: Mapped[str | None] = mapped_column(String(8))
    birth_date: Mapped[date | None] = mapped_column(Date)
    age: Mapped[int | None] = mapped_column(Integer)
    age_unit: Mapped[str | None] = mapped_column(String(8))
    population_group: Mapped[str | None] = mapped_column(String(40))
    current_address_code: Mapped[str | None] = mapped_column(String(12))
    county_code: Mapped[str | None] = mapped_column(String(6))  # the county of the current address
    belongs_to: Mapped[int | None] = mapped_column(Integer)  # 病人属于 1..6
    disease: Mapped[str] = mapped_column(String(10), index=True)  # NIDRIS code (catalogue.json)
    subtype: Mapped[str | None] = mapped_column(String(10))
    case_class: Mapped[str | None] = mapped_column(String(20))
    case_class2: Mapped[str | None] = mapped_column(String(20))  # acute / chronic
    onset_date: Mapped[date | None] = mapped_column(Date)
    diagnosed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    death_date: Mapped[date | None] = mapped_column(Date)
    outbreak: Mapped[bool] = mapped_column(Boolean, default=False)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the rest of the card, no PII
    # Who reported, from where
    report_org_id: Mapped[int | None] = mapped_column(ForeignKey("reg_organization.id"))
    report_unit_code: Mapped[str | None] = mapped_column(String(40))
    report_area_code: Mapped[str | None] = mapped_column(String(12))
    doctor: Mapped[str | None] = mapped_column(String(50))  # 报告医生 as on the card
    fill_date: Mapped[date | None] = mapped_column(Date)
    source_kind: Mapped[str | None] = mapped_column(String(20))  # referral | manual | import
    source_ref: Mapped[str | None] = mapped_column(String(60))
    # Clocks (§5.2): network report within 2 h / 24 h of diagnosis; county review likewise.
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    report_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    review_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    review_note: Mapped[str | None] = mapped_column(String(500))
    corrected_disease: Mapped[str | None] = mapped_column(String(10))  # 订正前的病名
    correction_reason: Mapped[str | None] = mapped_column(String(500))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delete_type: Mapped[str | None] = mapped_column(String(20))
    delete_reason: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(100))
    idem_owner: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class CardEvent(Base):
    __tablename__ = "surv_card_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("surv_card.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # reported | corrected | deleted | reviewed | returned
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(String(500))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # changed fields (no PII values)


class FeedBatch(Base):
    """One upload or API call of feed counts, with its ingestion report."""

    __tablename__ = "surv_feed_batch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed: Mapped[str] = mapped_column(String(12))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_by: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str | None] = mapped_column(String(200))
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # created/updated/ignored/errors


class FeedCount(Base):
    """A day's count of one metric from one source in one place: syndrome visits (and all
    visits) at a fever clinic or ED, units sold by drug class at a pharmacy, absences by
    cause at a school, positives (and tests) per pathogen at a laboratory."""

    __tablename__ = "surv_feed_count"
    __table_args__ = (
        UniqueConstraint("feed", "source", "day", "metric"),
        Index("ix_surv_feed_count_series", "feed", "metric", "county_code", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed: Mapped[str] = mapped_column(String(12))  # fever | ed | pharmacy | school | lab
    source: Mapped[str] = mapped_column(String(60))  # the reporting unit (org code, store, school class)
    division_code: Mapped[str] = mapped_column(String(12))  # where the source is
    county_code: Mapped[str] = mapped_column(String(6))
    day: Mapped[date] = mapped_column(Date)
    metric: Mapped[str] = mapped_column(String(40))  # ILI, SARI, antipyretic, fever, influenza_a …
    count: Mapped[int] = mapped_column(Integer)
    total: Mapped[int | None] = mapped_column(Integer)  # denominator where the metric is a share
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("surv_feed_batch.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DetectorRun(Base):
    """The daily detection of one day: run once (the worker may tick many times a day)."""

    __tablename__ = "surv_run"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Signal(Base):
    """An early-warning signal (预警信号) and the response to it."""

    __tablename__ = "surv_signal"
    __table_args__ = (
        Index("ix_surv_signal_status_due", "status", "verify_due_at"),
        Index("ix_surv_signal_county_day", "county_code", "detected_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stream: Mapped[str] = mapped_column(String(60), index=True)  # case:0101 | fever:ILI | pharmacy:antipyretic …
    disease: Mapped[str | None] = mapped_column(String(10))
    county_code: Mapped[str] = mapped_column(String(6))
    division_code: Mapped[str] = mapped_column(String(12))  # the county, or a cluster's centre
    method: Mapped[str] = mapped_column(String(20))  # fixed | mpm | ears_c1..c3 | cusum | farrington | noufaily | scan
    detected_on: Mapped[date] = mapped_column(Date)
    observed: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # card ids, cluster counties, p-value …
    status: Mapped[str] = mapped_column(String(20))
    open_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    responsible: Mapped[str | None] = mapped_column(String(100))  # the duty epidemiologist
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verify_due_at: Mapped[datetime] = mapped_column(UTCDateTime)  # generated + 24 h
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verification: Mapped[str | None] = mapped_column(String(12))  # excluded | suspected
    investigation_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    concluded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    conclusion: Mapped[str | None] = mapped_column(String(12))  # confirmed | excluded
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class SignalEvent(Base):
    __tablename__ = "surv_signal_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("surv_signal.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))  # None for a note
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)


class Warning(Base):  # noqa: A001 - the domain's word (预警产品)
    """A warning product drafted from a signal: 健康风险提示, 警示信息通报 or 预警决策建议."""

    __tablename__ = "surv_warning"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("surv_signal.id"), index=True)
    product: Mapped[str] = mapped_column(String(20))  # risk_notice | notification | decision_advice
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="draft")  # draft | issued
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_by: Mapped[str | None] = mapped_column(String(100))
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
