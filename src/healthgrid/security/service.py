"""Use cases of the security context: users and their grants, log-in with lock-out and a
second factor, web sessions, API tokens, and building the ``Actor`` of a request.

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's second recommended
option); TOTP follows RFC 6238 (pyotp). Session and API tokens are 256-bit random values
stored as SHA-256 digests: a leaked table does not yield a usable token.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..config import SecuritySettings
from ..db import transaction, utcnow
from ..errors import Conflict, Forbidden, Invalid, NotFound, TooManyRequests, Unauthorized
from ..registry import queries as registry_queries
from . import access, audit
from .access import SETTINGS_KEY
from .domain import (
    Actor,
    AuditAction,
    Grant,
    Perm,
    Role,
    ScopeKind,
    check_grant,
    check_password,
    check_username,
    mask_id,
    mask_phone,
    parse_resident_id,
)
from .models import ApiToken, LoginFailure, RoleGrant, User, WebSession
from .pii import blind, seal, unseal

_HASHERS: dict[tuple[int, int], PasswordHasher] = {}
_DUMMY: dict[tuple[int, int], str] = {}


def _hasher(session: Session) -> PasswordHasher:
    s = _settings(session)
    key = (s.argon2_time_cost, s.argon2_memory_kib)
    if key not in _HASHERS:
        _HASHERS[key] = PasswordHasher(time_cost=key[0], memory_cost=key[1])
        # A hash to verify against when the user does not exist, so the answer takes as
        # long as for a wrong password (no user enumeration by timing).
        _DUMMY[key] = _HASHERS[key].hash("not a real password, only for timing")
    return _HASHERS[key]
ID_PURPOSE = "id_number"
PHONE_PURPOSE = "phone"
TOTP_PURPOSE = "totp_secret"


def _settings(session: Session) -> SecuritySettings:
    return session.info.get(SETTINGS_KEY) or SecuritySettings()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- users and grants ----------------------------------------------------------------


@dataclass(frozen=True)
class GrantSpec:
    role: Role
    scope_kind: ScopeKind
    scope_id: int | None = None


def parse_grant(role: str, scope_kind: str, scope_id: int | None) -> GrantSpec:
    try:
        spec = GrantSpec(Role(role), ScopeKind(scope_kind), scope_id)
    except ValueError:
        raise Invalid("SEC-041", f"unknown role {role!r} or scope {scope_kind!r}; roles:"
                      f" {', '.join(Role)}; scopes: {', '.join(ScopeKind)}") from None
    check_grant(spec.role, spec.scope_kind)
    if spec.scope_kind is not ScopeKind.SELF and spec.scope_id is None:
        raise Invalid("SEC-042", f"a {spec.scope_kind} scope needs its id")
    return spec


def _check_may_grant(session: Session, actor: Actor, spec: GrantSpec) -> None:
    """An administrator grants only inside their own scope."""
    kind, target = spec.scope_kind, spec.scope_id
    if kind is ScopeKind.ORGANIZATION:
        if registry_queries.organization_or_none(session, target) is None:
            raise NotFound("SEC-043", f"no organisation with id {target}")
        access.check(session, actor, Perm.USER_MANAGE, AuditAction.PERMISSION_CHANGE,
                     resource_type="Organization", resource_id=target, org_id=target, audit_success=False)
    elif kind is ScopeKind.DIVISION:
        if not registry_queries.division_lineage(session, target):
            raise NotFound("SEC-043", f"no division with id {target}")
        access.check(session, actor, Perm.USER_MANAGE, AuditAction.PERMISSION_CHANGE,
                     resource_type="Division", resource_id=target, division_id=target, audit_success=False)
    elif kind is ScopeKind.ALLIANCE:
        lead = registry_queries.alliance_lead(session, target)
        if lead is None:
            raise NotFound("SEC-043", f"no alliance with id {target}")
        access.check(session, actor, Perm.USER_MANAGE, AuditAction.PERMISSION_CHANGE,
                     resource_type="Alliance", resource_id=target, org_id=lead, audit_success=False)
    else:
        access.check(session, actor, Perm.USER_MANAGE, AuditAction.PERMISSION_CHANGE,
                     resource_type="User", audit_success=False)


def create_user(session: Session, actor: Actor, *, username: str, display_name: str, password: str,
                grants: list[GrantSpec], org_id: int | None = None, practitioner_id: int | None = None,
                id_number: str | None = None, phone: str | None = None) -> User:
    check_username(username)
    settings = _settings(session)
    check_password(password, username=username, min_length=settings.password_min_length)
    if not display_name.strip():
        raise Invalid("SEC-024", "display_name: required")
    resident = parse_resident_id(id_number) if id_number else None
    if any(g.role is Role.RESIDENT for g in grants) and resident is None:
        raise Invalid("SEC-044", "id_number: a resident account is real-name (实名): give the ID number")
    if phone is not None and not (phone.isdigit() and 7 <= len(phone) <= 15):
        raise Invalid("SEC-025", "phone: 7–15 digits")
    with transaction(session):
        access.check(session, actor, Perm.USER_MANAGE, AuditAction.PERMISSION_CHANGE, resource_type="User",
                     audit_success=False)
        if org_id is not None and registry_queries.organization_or_none(session, org_id) is None:
            raise NotFound("SEC-043", f"no organisation with id {org_id}")
        if practitioner_id is not None and not registry_queries.practitioner_exists(session, practitioner_id):
            raise NotFound("SEC-045", f"no practitioner with id {practitioner_id}")
        for spec in grants:
            _check_may_grant(session, actor, spec)
        if not grants:
            access.check(session, actor, Perm.USER_MANAGE, AuditAction.CREATE, resource_type="User",
                         audit_success=False)
        user = User(username=username, display_name=display_name.strip(),
                    password_hash=_hasher(session).hash(password), org_id=org_id, practitioner_id=practitioner_id,
                    id_number_enc=seal(session, resident.number if resident else None, ID_PURPOSE),
                    id_number_bidx=blind(session, resident.number, ID_PURPOSE) if resident else None,
                    phone_enc=seal(session, phone, PHONE_PURPOSE))
        session.add(user)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            raise Conflict("SEC-046", f"user name {username!r} is taken") from None
        for spec in grants:
            session.add(RoleGrant(user_id=user.id, role=spec.role, scope_kind=spec.scope_kind,
                                  scope_id=spec.scope_id, granted_by=actor.username))
        session.flush()
        audit.record(session, actor, AuditAction.CREATE, resource_type="User", resource_id=user.id,
                     org_id=org_id, person_key=user.id_number_bidx,
                     detail={"username": username, "grants": [f"{g.role}@{g.scope_kind}:{g.scope_id}"
                                                              for g in grants]})
    return user


def grant_role(session: Session, actor: Actor, user_id: int, spec: GrantSpec) -> RoleGrant:
    with transaction(session):
        access.check(session, actor, Perm.USER_MANAGE, AuditAction.PERMISSION_CHANGE, resource_type="User",
                     audit_success=False)
        user = _user(session, user_id)
        _check_may_grant(session, actor, spec)
        exists = session.scalar(select(RoleGrant).where(
            RoleGrant.user_id == user.id, RoleGrant.role == spec.role, RoleGrant.scope_kind == spec.scope_kind,
            RoleGrant.scope_id.is_(None) if spec.scope_id is None else RoleGrant.scope_id == spec.scope_id))
        if exists:
            raise Conflict("SEC-047", f"{user.username} already has {spec.role} on {spec.scope_kind}"
                           f" {spec.scope_id}")
        grant = RoleGrant(user_id=user.id, role=spec.role, scope_kind=spec.scope_kind, scope_id=spec.scope_id,
                          granted_by=actor.username)
        session.add(grant)
        session.flush()
        audit.record(session, actor, AuditAction.PERMISSION_CHANGE, resource_type="User", resource_id=user.id,
                     org_id=user.org_id, detail={"granted": f"{spec.role}@{spec.scope_kind}:{spec.scope_id}"})
    return grant


def revoke_role(session: Session, actor: Actor, user_id: int, grant_id: int) -> None:
    with transaction(session):
        access.check(session, actor, Perm.USER_MANAGE, AuditAction.PERMISSION_CHANGE, resource_type="User",
                     audit_success=False)
        grant = session.get(RoleGrant, grant_id)
        if grant is None or grant.user_id != user_id:
            raise NotFound("SEC-048", f"user {user_id} has no grant {grant_id}")
        _check_may_grant(session, actor, GrantSpec(Role(grant.role), ScopeKind(grant.scope_kind), grant.scope_id))
        session.delete(grant)
        # A revoked role ends the user's sessions: their next request re-reads the grants,
        # but an open session could otherwise keep a second factor it no longer needs.
        session.execute(delete(WebSession).where(WebSession.user_id == user_id, WebSession.ended_at.is_(None)))
        audit.record(session, actor, AuditAction.PERMISSION_CHANGE, resource_type="User", resource_id=user_id,
                     detail={"revoked": f"{grant.role}@{grant.scope_kind}:{grant.scope_id}"})


def set_active(session: Session, actor: Actor, user_id: int, active: bool) -> User:
    with transaction(session):
        access.check(session, actor, Perm.USER_MANAGE, AuditAction.PERMISSION_CHANGE, resource_type="User",
                     audit_success=False)
        user = _user(session, user_id)
        _check_user_scope(session, actor, user, Perm.USER_MANAGE, AuditAction.UPDATE)
        user.active = active
        if not active:
            session.execute(delete(WebSession).where(WebSession.user_id == user.id))
        user.failed_logins, user.locked_until = 0, None
    return user


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("SEC-049", f"no user with id {user_id}")
    return user


def user_by_name(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound("SEC-049", f"no user named {username!r}")
    return user


def usernames_with_grant(session: Session, role: Role, scope_kind: ScopeKind, scope_id: int) -> list[str]:
    """The active users holding exactly this grant (e.g. the epidemiologists of one county's
    CDC, for the duty roster of its signals), by name."""
    return list(session.scalars(
        select(User.username).join(RoleGrant, RoleGrant.user_id == User.id)
        .where(RoleGrant.role == role.value, RoleGrant.scope_kind == scope_kind.value, RoleGrant.scope_id == scope_id,
               User.active.is_(True)).order_by(User.username)))


def grants_of(session: Session, user_id: int) -> list[Grant]:
    rows = session.scalars(select(RoleGrant).where(RoleGrant.user_id == user_id).order_by(RoleGrant.id))
    return [Grant(Role(r.role), ScopeKind(r.scope_kind), r.scope_id, r.id) for r in rows]


def _check_user_scope(session: Session, actor: Actor, user: User, perm: Perm, action: AuditAction) -> None:
    """A user record belongs to its home organisation; users without one (residents,
    region-level staff) are in the scope of division grants on the whole region only."""
    if actor.user_id is not None and actor.user_id == user.id and perm is Perm.USER_READ:
        audit.record(session, actor, action, resource_type="User", resource_id=user.id,
                     person_key=user.id_number_bidx, detail={"basis": "self"})
        return
    if user.org_id is not None:
        access.check(session, actor, perm, action, resource_type="User", resource_id=user.id,
                     org_id=user.org_id, person_key=user.id_number_bidx)
        return
    root = registry_queries.root_division_id(session)
    access.check(session, actor, perm, action, resource_type="User", resource_id=user.id,
                 division_id=root if root is not None else -1, person_key=user.id_number_bidx)


@dataclass
class UserView:
    id: int
    username: str
    display_name: str
    org_id: int | None
    practitioner_id: int | None
    active: bool
    totp_enabled: bool
    locked: bool
    id_number: str | None  # masked unless the reader may see it in full
    phone: str | None
    grants: list[Grant]
    last_login_at: datetime | None
    created_at: datetime


def _view(session: Session, actor: Actor, user: User, *, masked: bool = False) -> UserView:
    unmasked = not masked and (actor.can(Perm.PII_UNMASKED) or actor.user_id == user.id)
    id_number = unseal(session, user.id_number_enc, ID_PURPOSE)
    phone = unseal(session, user.phone_enc, PHONE_PURPOSE)
    return UserView(
        user.id, user.username, user.display_name, user.org_id, user.practitioner_id, user.active,
        user.totp_enabled, bool(user.locked_until and user.locked_until > utcnow()),
        id_number if unmasked else mask_id(id_number), phone if unmasked else mask_phone(phone),
        grants_of(session, user.id), user.last_login_at, user.created_at)


def get_user(session: Session, actor: Actor, user_id: int) -> UserView:
    with transaction(session):
        user = _user(session, user_id)
        _check_user_scope(session, actor, user, Perm.USER_READ, AuditAction.VIEW)
        return _view(session, actor, user)


def list_users(session: Session, actor: Actor, *, name: str | None = None, offset: int = 0,
               limit: int = 50) -> tuple[int, list[UserView]]:
    """Users whose home organisation is in the reader's scope (all of them for a grant on
    the whole region). Identifiers are masked in lists."""
    with transaction(session):
        access.check(session, actor, Perm.USER_READ, AuditAction.SEARCH, resource_type="User",
                     detail={"name": name} if name else None)
        orgs = access.scope_org_ids(session, actor, Perm.USER_READ)
        stmt = select(User)
        if orgs is not None:
            stmt = stmt.where(User.org_id.in_(sorted(orgs or {-1})))
        if name:
            stmt = stmt.where(User.username.ilike(f"%{name}%") | User.display_name.ilike(f"%{name}%"))
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        users = session.scalars(stmt.order_by(User.username).offset(offset).limit(limit)).all()
        return total, [_view(session, actor, u, masked=True) for u in users]


def change_password(session: Session, actor: Actor, *, old_password: str, new_password: str) -> None:
    if actor.needs_mfa() and not actor.mfa:
        # Half logged in (password, no second factor yet): finish the log-in first.
        raise Forbidden("SEC-107", "your role requires a second factor (TOTP); give it first")
    with transaction(session):
        user = _user(session, actor.user_id or -1)
        if not _verify_password(session, user, old_password):
            raise Invalid("SEC-026", "old_password: the current password is wrong")
        check_password(new_password, username=user.username,
                       min_length=_settings(session).password_min_length)
        if _verify_password(session, user, new_password):
            raise Invalid("SEC-027", "new_password: must differ from the current one")
        user.password_hash = _hasher(session).hash(new_password)
        user.password_changed_at = utcnow()
        audit.record(session, actor, AuditAction.UPDATE, resource_type="User", resource_id=user.id,
                     detail={"changed": "password"})


def _burn_time(session: Session, password: str) -> bool:
    hasher = _hasher(session)
    key = (hasher.time_cost, hasher.memory_cost)
    with contextlib.suppress(VerificationError, InvalidHashError):
        hasher.verify(_DUMMY[key], password)
    return False


def _verify_password(session: Session, user: User, password: str) -> bool:
    try:
        return _hasher(session).verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# -- log-in ---------------------------------------------------------------------------


@dataclass
class LoginResult:
    user: User
    needs_totp: bool  # the user has TOTP: a code must follow
    must_enrol_totp: bool  # a role requires TOTP and the user has none yet
    password_expired: bool


def authenticate(session: Session, *, username: str, password: str, client: str | None,
                 surface: str = "web", totp_code: str | None = None) -> LoginResult:
    """Check a password (and a TOTP code when given). Failures are counted per user (lock-out)
    and per address (rate limit), committed, audited, and answered with one message that
    does not tell whether the user exists."""
    settings = _settings(session)
    now = utcnow()
    window = now - timedelta(minutes=settings.lockout_minutes)
    anon = Actor(user_id=None, username=username[:60] or "?", surface=surface, client=client)
    failure: Exception | None = None
    with transaction(session):
        if client and (session.scalar(select(func.count()).select_from(LoginFailure).where(
                LoginFailure.client == client, LoginFailure.at > window)) or 0) >= settings.address_failure_limit:
            audit.record(session, anon, AuditAction.LOGIN_FAILED, resource_type="User", outcome="denied",
                         reason="SEC-004")
            failure = TooManyRequests("SEC-004", "too many failed log-ins from this address; try again"
                                      f" in {settings.lockout_minutes} minutes")
        else:
            user = session.scalar(select(User).where(User.username == username).with_for_update())
            ok = _verify_password(session, user, password) if user else _burn_time(session, password)
            reason = ""
            if user is not None and user.locked_until is not None and user.locked_until > now:
                failure = Forbidden("SEC-002", "this account is locked after repeated failed log-ins; try"
                                    " again later or ask an administrator to unlock it")
                reason = "SEC-002"
            elif not ok or user is None or not user.active:
                failure = Unauthorized("SEC-001", "wrong user name or password")
                reason = "SEC-001" if user is None or user.active else "SEC-003"
            elif totp_code is not None and not _totp_ok(session, user, totp_code):
                failure = Unauthorized("SEC-005", "the second-factor code is wrong or was already used")
                reason = "SEC-005"
            if failure is None and user is not None:
                user.failed_logins, user.locked_until = 0, None
                grants = grants_of(session, user.id)
                needs_mfa = Actor(user_id=user.id, username=user.username, grants=tuple(grants)).needs_mfa()
                result = LoginResult(user, needs_totp=user.totp_enabled and totp_code is None,
                                     must_enrol_totp=needs_mfa and not user.totp_enabled,
                                     password_expired=_password_expired(user, settings))
                if not result.needs_totp:
                    user.last_login_at = now
                audit.record(session, Actor(user_id=user.id, username=user.username, grants=tuple(grants),
                                            surface=surface, client=client), AuditAction.LOGIN,
                             resource_type="User", resource_id=user.id,
                             detail={"step": "password" if result.needs_totp else "complete"})
                return result
            if client:
                session.add(LoginFailure(client=client, at=now))
            if user is not None and reason != "SEC-002":
                user.failed_logins += 1
                if user.failed_logins >= settings.lockout_threshold:
                    user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
                    user.failed_logins = 0
            audit.record(session, anon if user is None else Actor(user_id=user.id, username=user.username,
                                                                 grants=tuple(grants_of(session, user.id)),
                                                                 surface=surface, client=client),
                         AuditAction.LOGIN_FAILED, resource_type="User",
                         resource_id=user.id if user else None, outcome="failed", reason=reason)
    assert failure is not None
    raise failure


def _password_expired(user: User, settings: SecuritySettings) -> bool:
    if not settings.password_max_age_days:
        return False
    return user.password_changed_at < utcnow() - timedelta(days=settings.password_max_age_days)


def _totp_ok(session: Session, user: User, code: str) -> bool:
    secret = unseal(session, user.totp_secret_enc, TOTP_PURPOSE)
    if not secret or not code.strip().isdigit():
        return False
    totp = pyotp.TOTP(secret)
    now = utcnow()
    for drift in (0, -1, 1):  # one step of clock drift either way (RFC 6238 §5.2)
        at = now + timedelta(seconds=30 * drift)
        step = totp.timecode(at)
        if secrets.compare_digest(totp.at(at), code.strip()):
            if user.totp_last_step is not None and step <= user.totp_last_step:
                return False  # a code is good once
            user.totp_last_step = step
            return True
    return False


def verify_second_factor(session: Session, *, user_id: int, code: str, client: str | None,
                         surface: str = "web") -> None:
    """The second step of a log-in; counts failures like a wrong password."""
    settings = _settings(session)
    failure: Exception | None = None
    with transaction(session):
        user = session.scalar(select(User).where(User.id == user_id).with_for_update())
        if user is None or not user.active:
            raise Unauthorized("SEC-001", "log in again")
        actor = Actor(user_id=user.id, username=user.username, grants=tuple(grants_of(session, user.id)),
                      surface=surface, client=client)
        if user.locked_until is not None and user.locked_until > utcnow():
            failure = Forbidden("SEC-002", "this account is locked after repeated failed log-ins")
        elif _totp_ok(session, user, code):
            user.failed_logins, user.last_login_at = 0, utcnow()
            audit.record(session, actor, AuditAction.MFA, resource_type="User", resource_id=user.id)
            return
        else:
            failure = Unauthorized("SEC-005", "the second-factor code is wrong or was already used")
            user.failed_logins += 1
            if user.failed_logins >= settings.lockout_threshold:
                user.locked_until = utcnow() + timedelta(minutes=settings.lockout_minutes)
                user.failed_logins = 0
            if client:
                session.add(LoginFailure(client=client))
            audit.record(session, actor, AuditAction.MFA, resource_type="User", resource_id=user.id,
                         outcome="failed", reason="SEC-005")
    raise failure


def begin_totp_enrolment(session: Session, actor: Actor) -> str:
    """A new secret for the actor, kept (encrypted) but not enabled until a code confirms it.
    Returns the otpauth:// URI for an authenticator app."""
    with transaction(session):
        user = _user(session, actor.user_id or -1)
        if user.totp_enabled:
            raise Conflict("SEC-050", "a second factor is already set up; ask an administrator to reset it")
        secret = pyotp.random_base32()
        user.totp_secret_enc = seal(session, secret, TOTP_PURPOSE)
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=_settings(session).totp_issuer)


def confirm_totp_enrolment(session: Session, actor: Actor, code: str) -> None:
    with transaction(session):
        user = _user(session, actor.user_id or -1)
        if user.totp_enabled or not user.totp_secret_enc:
            raise Conflict("SEC-051", "start the second-factor set-up first")
        if not _totp_ok(session, user, code):
            raise Invalid("SEC-005", "code: wrong code; check the time on your phone and try again")
        user.totp_enabled = True
        audit.record(session, actor, AuditAction.MFA, resource_type="User", resource_id=user.id,
                     detail={"enrolled": True})


def set_totp_secret(session: Session, actor: Actor, user_id: int, secret: str) -> None:
    """Give a user a known TOTP secret, enabled (operators provisioning hardware tokens,
    and the synthetic region's demo users)."""
    with transaction(session):
        user = _user(session, user_id)
        _check_user_scope(session, actor, user, Perm.USER_MANAGE, AuditAction.MFA)
        pyotp.TOTP(secret).now()  # a bad base32 secret fails here
        user.totp_secret_enc = seal(session, secret, TOTP_PURPOSE)
        user.totp_enabled, user.totp_last_step = True, None


def totp_now(session: Session, user_id: int) -> str:
    """The current code of a user's secret (development only; the CLI refuses elsewhere)."""
    user = _user(session, user_id)
    secret = unseal(session, user.totp_secret_enc, TOTP_PURPOSE)
    if not secret:
        raise Invalid("SEC-052", f"{user.username} has no second factor")
    return pyotp.TOTP(secret).now()


# -- web sessions ---------------------------------------------------------------------


def start_session(session: Session, user: User, *, client: str | None, mfa_passed: bool) -> tuple[str, str]:
    """A new web session: returns (cookie token, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with transaction(session):
        session.add(WebSession(token_hash=_digest(token), user_id=user.id, csrf_token=csrf,
                               mfa_passed=mfa_passed, client=client))
    return token, csrf


@dataclass
class SessionState:
    session_id: int
    user: User
    csrf_token: str
    mfa_passed: bool


def resolve_session(session: Session, token: str) -> SessionState | None:
    """The live session for a cookie, or None (unknown, ended, idle too long, too old).
    Touches ``last_seen_at`` at most once a minute, to keep reads cheap."""
    settings = _settings(session)
    now = utcnow()
    row = session.scalar(select(WebSession).where(WebSession.token_hash == _digest(token)))
    if row is None or row.ended_at is not None:
        return None
    idle = now - row.last_seen_at > timedelta(minutes=settings.session_idle_minutes)
    old = now - row.created_at > timedelta(hours=settings.session_max_hours)
    user = session.get(User, row.user_id)
    if idle or old or user is None or not user.active:
        with transaction(session):
            row.ended_at = now
        return None
    if now - row.last_seen_at > timedelta(minutes=1):
        with transaction(session):
            row.last_seen_at = now
    return SessionState(row.id, user, row.csrf_token, row.mfa_passed)


def mark_session_mfa(session: Session, session_id: int) -> str:
    """The second factor passed: a new cookie token (no session fixation across the step)."""
    token = secrets.token_urlsafe(32)
    with transaction(session):
        row = session.get(WebSession, session_id)
        row.mfa_passed, row.token_hash, row.last_seen_at = True, _digest(token), utcnow()
    return token


def end_session(session: Session, actor: Actor, token: str) -> None:
    with transaction(session):
        row = session.scalar(select(WebSession).where(WebSession.token_hash == _digest(token)))
        if row is not None and row.ended_at is None:
            row.ended_at = utcnow()
            audit.record(session, actor, AuditAction.LOGOUT, resource_type="User", resource_id=row.user_id)


# -- API tokens -----------------------------------------------------------------------

TOKEN_PREFIX = "hg_"


@dataclass
class NewToken:
    id: int
    token: str  # shown once
    name: str
    perms: list[str] | None
    expires_at: datetime | None


def create_token(session: Session, actor: Actor, *, user_id: int, name: str, perms: list[str] | None = None,
                 expires_days: int | None = 365) -> NewToken:
    """An API token for a user, optionally limited to some of their permissions."""
    if not name.strip() or len(name) > 100:
        raise Invalid("SEC-053", "name: 1–100 characters")
    wanted: list[Perm] | None = None
    if perms:
        try:
            wanted = [Perm(p) for p in perms]
        except ValueError:
            raise Invalid("SEC-054", f"perms: unknown permission in {perms}; known: {', '.join(Perm)}") from None
    if expires_days is not None and not 1 <= expires_days <= 3650:
        raise Invalid("SEC-055", "expires_days: 1–3650")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction(session):
        user = _user(session, user_id)
        if actor.user_id != user.id:
            _check_user_scope(session, actor, user, Perm.USER_MANAGE, AuditAction.TOKEN)
        expires = utcnow() + timedelta(days=expires_days) if expires_days else None
        row = ApiToken(token_hash=_digest(token), prefix=token[:10], user_id=user.id, name=name.strip(),
                       perms=" ".join(wanted) if wanted else None, expires_at=expires)
        session.add(row)
        session.flush()
        audit.record(session, actor, AuditAction.TOKEN, resource_type="ApiToken", resource_id=row.id,
                     detail={"created_for": user.username, "perms": perms or "all"})
    return NewToken(row.id, token, row.name, [str(p) for p in wanted] if wanted else None, expires)


def revoke_token(session: Session, actor: Actor, token_id: int) -> None:
    with transaction(session):
        row = session.get(ApiToken, token_id)
        if row is None:
            raise NotFound("SEC-056", f"no API token with id {token_id}")
        if actor.user_id != row.user_id:
            _check_user_scope(session, actor, _user(session, row.user_id), Perm.USER_MANAGE, AuditAction.TOKEN)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            audit.record(session, actor, AuditAction.TOKEN, resource_type="ApiToken", resource_id=row.id,
                         detail={"revoked": True})


def list_tokens(session: Session, actor: Actor) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == (actor.user_id or -1))
                                .order_by(ApiToken.id)))


def resolve_token(session: Session, token: str) -> tuple[User, frozenset[Perm] | None] | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    now = utcnow()
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at < now):
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=5):
        with transaction(session):
            row.last_used_at = now
    return user, (frozenset(Perm(p) for p in row.perms.split()) if row.perms else None)


# -- actors ---------------------------------------------------------------------------


def actor_for(session: Session, user: User, *, surface: str, client: str | None, mfa: bool,
              token_perms: frozenset[Perm] | None = None, purpose: str | None = None,
              break_glass: str | None = None) -> Actor:
    return Actor(user_id=user.id, username=user.username, grants=tuple(grants_of(session, user.id)),
                 surface=surface, client=client, purpose=purpose, break_glass=break_glass,
                 practitioner_id=user.practitioner_id, person_key=user.id_number_bidx,
                 token_perms=token_perms, mfa=mfa, extra={"display_name": user.display_name,
                                                          "org_id": user.org_id})


def own_id_number(session: Session, user_id: int) -> str | None:
    """A user's own ID number (residents log in as themselves), for the services that find
    the user's patient record; None when the account has none."""
    user = session.get(User, user_id)
    return unseal(session, user.id_number_enc, ID_PURPOSE) if user is not None else None


def find_person_key(session: Session, id_number: str) -> str:
    """The blind index of an ID number, to search the audit trail by patient."""
    return blind(session, parse_resident_id(id_number).number, ID_PURPOSE)



def housekeeping(session: Session) -> dict[str, int]:
    """Forget what no longer matters: failed log-ins older than a day (rate limiting looks
    back one lock-out window) and web sessions ended or abandoned more than 30 days ago."""
    now = utcnow()
    with transaction(session):
        failures = session.execute(delete(LoginFailure).where(LoginFailure.at < now - timedelta(days=1))).rowcount
        sessions = session.execute(delete(WebSession).where(
            WebSession.last_seen_at < now - timedelta(days=30))).rowcount
    return {"login_failures": failures or 0, "sessions": sessions or 0}
