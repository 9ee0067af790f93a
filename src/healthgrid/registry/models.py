"""Tables of the registry context (prefix ``reg_``): divisions, organisations, alliances,
departments, services, equipment, practitioners, practice sites, key specialties.

Divisions carry their ancestors' ids (``province_id`` … ``township_id``, their own id
included at their own level) so that "the subtree of a division" is one indexed equality
on either database, with no recursive query and no collation-dependent LIKE.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, UTCDateTime, utcnow


class Division(Base):
    __tablename__ = "reg_division"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("reg_division.id"), index=True)
    province_id: Mapped[int | None] = mapped_column(Integer, index=True)
    city_id: Mapped[int | None] = mapped_column(Integer, index=True)
    county_id: Mapped[int | None] = mapped_column(Integer, index=True)
    township_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped[Division | None] = relationship(remote_side=[id], lazy="joined", join_depth=1)


class Organization(Base):
    __tablename__ = "reg_organization"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    level: Mapped[str] = mapped_column(String(2), index=True)
    org_type: Mapped[str] = mapped_column(String(40), index=True)
    grade_level: Mapped[int | None] = mapped_column(SmallInteger)
    grade_class: Mapped[str | None] = mapped_column(String(1))
    division_id: Mapped[int] = mapped_column(ForeignKey("reg_division.id"), index=True)
    parent_org_id: Mapped[int | None] = mapped_column(ForeignKey("reg_organization.id"), index=True)
    address: Mapped[str | None] = mapped_column(String(300))
    phone: Mapped[str | None] = mapped_column(String(40))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    division: Mapped[Division] = relationship(lazy="joined")


class Alliance(Base):
    __tablename__ = "reg_alliance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30), index=True)
    lead_org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"), index=True)
    division_id: Mapped[int | None] = mapped_column(ForeignKey("reg_division.id"), index=True)
    specialty_code: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AllianceMember(Base):
    __tablename__ = "reg_alliance_member"
    __table_args__ = (UniqueConstraint("alliance_id", "org_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alliance_id: Mapped[int] = mapped_column(ForeignKey("reg_alliance.id"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"), index=True)
    role: Mapped[str] = mapped_column(String(10))  # lead | member
    joined_on: Mapped[date | None] = mapped_column(Date)


class Department(Base):
    __tablename__ = "reg_department"
    __table_args__ = (UniqueConstraint("org_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"), index=True)
    code: Mapped[str] = mapped_column(String(10), index=True)
    name: Mapped[str] = mapped_column(String(100))


class HealthcareService(Base):
    __tablename__ = "reg_service"
    __table_args__ = (UniqueConstraint("org_id", "kind", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("reg_department.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Equipment(Base):
    __tablename__ = "reg_equipment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("reg_department.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10), index=True)
    model: Mapped[str | None] = mapped_column(String(100))
    quantity: Mapped[int] = mapped_column(Integer, default=1)


class Practitioner(Base):
    __tablename__ = "reg_practitioner"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    licence_no: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(50), index=True)
    sex: Mapped[str] = mapped_column(String(1))  # M | F (GB/T 2261.1: 1 male, 2 female)
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    title: Mapped[str] = mapped_column(String(40))
    specialty_code: Mapped[str | None] = mapped_column(String(10), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PracticeSite(Base):
    """Where a practitioner practises: the primary registered site and any further
    sites under multi-site practice (多点执业)."""

    __tablename__ = "reg_practice_site"
    __table_args__ = (UniqueConstraint("practitioner_id", "org_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("reg_practitioner.id"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("reg_department.id"))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=True)
    since: Mapped[date | None] = mapped_column(Date)


class KeySpecialty(Base):
    __tablename__ = "reg_key_specialty"
    __table_args__ = (UniqueConstraint("org_id", "department_code", "level"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"), index=True)
    department_code: Mapped[str] = mapped_column(String(10))
    level: Mapped[str] = mapped_column(String(12))
    year: Mapped[int | None] = mapped_column(SmallInteger)

