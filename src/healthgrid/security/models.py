"""Tables of the security context: users, role grants on a scope, web sessions, API
tokens, failed log-ins, and the hash-chained audit trail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, utcnow


class User(Base):
    __tablename__ = "sec_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(60), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A staff user is a practitioner of the registry; a resident user proves who they are
    # with their ID number (实名), kept encrypted and found through its blind index.
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("reg_practitioner.id"), index=True)
    # The home organisation: whose administrators manage this account. None for residents
    # and region-level staff.
    org_id: Mapped[int | None] = mapped_column(ForeignKey("reg_organization.id"), index=True)
    id_number_enc: Mapped[str | None] = mapped_column(String(200), info={"pii": "id_number"})
    id_number_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_enc: Mapped[str | None] = mapped_column(String(200), info={"pii": "phone"})
    totp_secret_enc: Mapped[str | None] = mapped_column(String(200), info={"pii": "totp_secret"})
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)  # refuses a replayed code
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RoleGrant(Base):
    __tablename__ = "sec_grant"
    __table_args__ = (UniqueConstraint("user_id", "role", "scope_kind", "scope_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("sec_user.id"), index=True)
    role: Mapped[str] = mapped_column(String(30))
    scope_kind: Mapped[str] = mapped_column(String(20))
    scope_id: Mapped[int | None] = mapped_column(Integer)
    granted_by: Mapped[str] = mapped_column(String(80))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebSession(Base):
    __tablename__ = "sec_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("sec_user.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    mfa_passed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    client: Mapped[str | None] = mapped_column(String(64))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    __tablename__ = "sec_api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists, to tell tokens apart
    user_id: Mapped[int] = mapped_column(ForeignKey("sec_user.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    perms: Mapped[str | None] = mapped_column(Text)  # space-separated; NULL = all of the user's
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginFailure(Base):
    """Failed log-ins by address, for rate limiting across processes."""

    __tablename__ = "sec_login_failure"
    __table_args__ = (Index("ix_sec_login_failure_client_at", "client", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(Base):
    """One audited action. Append-only. ``mac`` seals the row's content when it is written;
    ``seq``, ``prev_hash`` and ``hash`` are set when the row is chained (sealed) right
    after its transaction commits (audit.seal)."""

    __tablename__ = "sec_audit"
    __table_args__ = (
        Index("ix_sec_audit_patient_at", "patient_id", "at"),
        Index("ix_sec_audit_person_at", "person_key", "at"),
        Index("ix_sec_audit_user_at", "user_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int | None] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(80))
    roles: Mapped[str] = mapped_column(String(200))
    surface: Mapped[str] = mapped_column(String(10))
    client: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(12))
    action: Mapped[str] = mapped_column(String(30), index=True)
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str | None] = mapped_column(String(80))
    org_id: Mapped[int | None] = mapped_column(Integer, index=True)
    patient_id: Mapped[int | None] = mapped_column(Integer)
    person_key: Mapped[str | None] = mapped_column(String(64))  # blind index of the ID number
    outcome: Mapped[str] = mapped_column(String(10))  # success | denied | failed
    reason: Mapped[str | None] = mapped_column(String(20))  # the coded reason of a denial
    break_glass: Mapped[str | None] = mapped_column(String(500))
    detail: Mapped[str | None] = mapped_column(Text)  # JSON, never personal data
    mac: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's head: one row, locked by the sealer, so links are made one at a time."""

    __tablename__ = "sec_audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
    # After a retention purge the chain starts here: the first kept row's prev_hash.
    anchor_seq: Mapped[int] = mapped_column(Integer, default=0)
    anchor_hash: Mapped[str] = mapped_column(String(64))


class GlassReview(Base):
    """An auditor's review of a break-the-glass access (the audit row itself never changes)."""

    __tablename__ = "sec_glass_review"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("sec_audit.id"), unique=True)
    reviewer: Mapped[str] = mapped_column(String(80))
    verdict: Mapped[str] = mapped_column(String(20))  # justified | unjustified
    note: Mapped[str | None] = mapped_column(String(500))
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
