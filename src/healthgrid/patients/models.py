"""Tables of the master patient index (prefix ``pat_``): residents, their identifiers, the
match review queue and the merge log.

Personal data that identifies a person on its own — ID and card numbers, phone, street
address, next of kin — is stored encrypted (AES-GCM, ``security.pii``) and found through
keyed blind indexes. The name, sex, birth date and village stay in clear: the index must
search and block on them, and a name alone is not an identifier (WS 363-2011 lists them
as ordinary data elements); screens and logs mask them.

A merge moves nothing: the loser keeps its row and its identifiers and points to the
survivor through ``replaced_by`` (FHIR Patient.link ``replaced-by``); unmerging clears it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, utcnow


class Patient(Base):
    __tablename__ = "pat_patient"
    __table_args__ = (
        # Blocks of the matcher (matching.py): each is one indexed equality.
        Index("ix_pat_patient_block_name_dob", "name_key", "birth_date"),
        Index("ix_pat_patient_block_name_year", "name_key", "birth_year"),
        Index("ix_pat_patient_block_dob_sex", "birth_date", "sex"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60))  # DE02.01.039.00
    name_pinyin: Mapped[str] = mapped_column(String(200))  # toneless, syllables spaced
    name_key: Mapped[str] = mapped_column(String(200))  # pinyin without spaces: homophones agree
    sex: Mapped[str] = mapped_column(String(1))  # M | F | U (GB/T 2261.1)
    birth_date: Mapped[date | None] = mapped_column(Date)
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    phone_enc: Mapped[str | None] = mapped_column(String(200), info={"pii": "patient.phone"})
    phone_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    # The village or community (or a coarser division when that is all that is known), and
    # its township, denormalised for the address comparison.
    division_id: Mapped[int | None] = mapped_column(ForeignKey("reg_division.id"), index=True)
    township_id: Mapped[int | None] = mapped_column(Integer)
    address_enc: Mapped[str | None] = mapped_column(String(600), info={"pii": "patient.address"})
    kin_enc: Mapped[str | None] = mapped_column(Text, info={"pii": "patient.kin"})
    registered_org_id: Mapped[int | None] = mapped_column(ForeignKey("reg_organization.id"), index=True)
    replaced_by: Mapped[int | None] = mapped_column(ForeignKey("pat_patient.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __mapper_args__ = {"version_id_col": version}


class PatientIdentifier(Base):
    """An identifier of a patient: the resident ID, the e-health card, the insurance number,
    or a facility's own record number (``assigner`` = that organisation's id; 0 for the
    national identifiers, so that uniqueness holds without NULLs, which both databases
    treat as distinct)."""

    __tablename__ = "pat_identifier"
    # The blind index leads: lookups by value are selective, and a query by patient and kind
    # uses the patient index instead of walking every row of a kind (found at a million).
    __table_args__ = (UniqueConstraint("value_bidx", "kind", "assigner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("pat_patient.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    assigner: Mapped[int] = mapped_column(Integer, default=0)
    value_enc: Mapped[str] = mapped_column(String(300), info={"pii": "patient.identifier"})
    value_bidx: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MatchReview(Base):
    """A pair a person must decide: the same resident (merge) or two (distinct)."""

    __tablename__ = "pat_match_review"
    __table_args__ = (UniqueConstraint("patient_id", "candidate_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The newer record first (the registration that raised it), the candidate second;
    # patient_id > candidate_id always, so a pair is queued once whichever side raised it.
    patient_id: Mapped[int] = mapped_column(ForeignKey("pat_patient.id"), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("pat_patient.id"), index=True)
    probability: Mapped[float] = mapped_column(Float)
    weight: Mapped[float] = mapped_column(Float)
    levels: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(20))  # registration | batch
    status: Mapped[str] = mapped_column(String(12), default="open", index=True)  # open | merged | distinct
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)


class Merge(Base):
    """The log of merges and their undoing."""

    __tablename__ = "pat_merge"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survivor_id: Mapped[int] = mapped_column(ForeignKey("pat_patient.id"), index=True)
    loser_id: Mapped[int] = mapped_column(ForeignKey("pat_patient.id"), index=True)
    review_id: Mapped[int | None] = mapped_column(ForeignKey("pat_match_review.id"))
    reason: Mapped[str] = mapped_column(Text)
    merged_by: Mapped[str] = mapped_column(String(80))
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    unmerged_by: Mapped[str | None] = mapped_column(String(80))
    unmerged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unmerge_reason: Mapped[str | None] = mapped_column(Text)
