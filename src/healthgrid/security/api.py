"""REST API of the security context under ``/api/security``: the caller's own account,
API tokens, user administration, and the audit trail for auditors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from ..errors import Forbidden
from ..http import SessionDep
from . import service, trail
from .http import ActorDep

router = APIRouter()
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]
# Row ids are 32-bit on both databases; anything larger cannot exist (and would overflow
# SQLite's integers): a 422, never a 500.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class GrantOut(BaseModel):
    id: int | None
    role: str
    scope_kind: str
    scope_id: int | None


class GrantIn(BaseModel):
    role: str = Field(description="resident, clinician, nurse, facility_admin, cdc_epidemiologist,"
                                  " mch_manager, insurer, commission_admin, auditor, system_admin")
    scope_kind: str = Field(description="organization | division | alliance | self (residents)")
    scope_id: int | None = Field(None, description="id of the organisation, division or alliance")


class MeOut(BaseModel):
    user_id: int | None
    username: str
    display_name: str | None
    grants: list[GrantOut]
    permissions: list[str]
    second_factor: bool
    purpose: str


def _grants(grants) -> list[GrantOut]:
    return [GrantOut(id=g.id, role=g.role, scope_kind=g.scope_kind, scope_id=g.scope_id) for g in grants]


@router.get("/me", response_model=MeOut, summary="Who am I: roles, scopes, permissions")
def me(actor: ActorDep) -> Any:
    return MeOut(user_id=actor.user_id, username=actor.username, display_name=actor.extra.get("display_name"),
                 grants=_grants(actor.grants), permissions=sorted(actor.perms()), second_factor=actor.mfa,
                 purpose=actor.effective_purpose)


class AccessOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: datetime
    username: str
    roles: str
    org_id: int | None
    action: str
    resource_type: str
    purpose: str
    outcome: str
    break_glass: str | None


class AccessLog(BaseModel):
    total: int
    items: list[AccessOut]


@router.get("/me/access-log", response_model=AccessLog, summary="Who looked at my record (residents)")
def my_access_log(session: SessionDep, actor: ActorDep, offset: Offset = 0, limit: Limit = 50) -> Any:
    page = trail.access_log_for_me(session, actor, offset=offset, limit=limit)
    return AccessLog(total=page.total, items=page.items)


class PasswordIn(BaseModel):
    old_password: str
    new_password: str


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT, summary="Change my password")
def change_password(body: PasswordIn, session: SessionDep, actor: ActorDep) -> None:
    service.change_password(session, actor, old_password=body.old_password, new_password=body.new_password)


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    perms: list[str] | None = Field(None, description="limit the token to these permissions")
    expires_days: int | None = Field(365, ge=1, le=3650)


class TokenCreated(BaseModel):
    id: int
    token: str = Field(description="shown once; store it now")
    name: str
    perms: list[str] | None
    expires_at: datetime | None


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    prefix: str
    name: str
    perms: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


@router.get("/me/tokens", response_model=list[TokenOut], summary="My API tokens")
def my_tokens(session: SessionDep, actor: ActorDep) -> Any:
    return service.list_tokens(session, actor)


@router.post("/me/tokens", response_model=TokenCreated, status_code=201, summary="Create an API token for me")
def create_my_token(body: TokenIn, session: SessionDep, actor: ActorDep) -> Any:
    if actor.user_id is None:
        raise Forbidden("SEC-102", "only a user can own a token")
    return service.create_token(session, actor, user_id=actor.user_id, name=body.name, perms=body.perms,
                                expires_days=body.expires_days).__dict__


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke an API token")
def revoke_token(token_id: RowId, session: SessionDep, actor: ActorDep) -> None:
    service.revoke_token(session, actor, token_id)


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    org_id: int | None
    practitioner_id: int | None
    active: bool
    totp_enabled: bool
    locked: bool
    id_number: str | None = Field(description="masked unless your role may see it")
    phone: str | None
    grants: list[GrantOut]
    last_login_at: datetime | None
    created_at: datetime


class UserList(BaseModel):
    total: int
    items: list[UserOut]


class UserIn(BaseModel):
    username: str
    display_name: str
    password: str
    grants: list[GrantIn] = []
    org_id: int | None = Field(None, description="home organisation")
    practitioner_id: int | None = None
    id_number: str | None = Field(None, description="resident ID number (required for residents)")
    phone: str | None = None


def _user_out(view: service.UserView) -> UserOut:
    return UserOut(**{**view.__dict__, "grants": _grants(view.grants)})


@router.get("/users", response_model=UserList, summary="Users in my scope (identifiers masked)")
def list_users(session: SessionDep, actor: ActorDep, name: str | None = None, offset: Offset = 0,
               limit: Limit = 50) -> Any:
    total, views = service.list_users(session, actor, name=name, offset=offset, limit=limit)
    return UserList(total=total, items=[_user_out(v) for v in views])


@router.post("/users", response_model=UserOut, status_code=201, summary="Create a user (system_admin)")
def create_user(body: UserIn, session: SessionDep, actor: ActorDep) -> Any:
    grants = [service.parse_grant(g.role, g.scope_kind, g.scope_id) for g in body.grants]
    user = service.create_user(session, actor, username=body.username, display_name=body.display_name,
                               password=body.password, grants=grants, org_id=body.org_id,
                               practitioner_id=body.practitioner_id, id_number=body.id_number,
                               phone=body.phone)
    return _user_out(service.get_user(session, actor, user.id))


@router.get("/users/{user_id}", response_model=UserOut, summary="One user")
def get_user(user_id: RowId, session: SessionDep, actor: ActorDep) -> Any:
    return _user_out(service.get_user(session, actor, user_id))


@router.post("/users/{user_id}/grants", response_model=GrantOut, status_code=201, summary="Grant a role")
def grant_role(user_id: RowId, body: GrantIn, session: SessionDep, actor: ActorDep) -> Any:
    g = service.grant_role(session, actor, user_id, service.parse_grant(body.role, body.scope_kind, body.scope_id))
    return GrantOut(id=g.id, role=g.role, scope_kind=g.scope_kind, scope_id=g.scope_id)


@router.delete("/users/{user_id}/grants/{grant_id}", status_code=204, summary="Revoke a role")
def revoke_role(user_id: RowId, grant_id: RowId, session: SessionDep, actor: ActorDep) -> None:
    service.revoke_role(session, actor, user_id, grant_id)


class ActiveIn(BaseModel):
    active: bool


@router.post("/users/{user_id}/active", response_model=UserOut, summary="Enable or disable (and unlock)")
def set_active(user_id: RowId, body: ActiveIn, session: SessionDep, actor: ActorDep) -> Any:
    service.set_active(session, actor, user_id, body.active)
    return _user_out(service.get_user(session, actor, user_id))


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    seq: int | None = Field(description="position in the chain; empty until the row is chained")
    at: datetime
    username: str
    roles: str
    surface: str
    client: str | None
    purpose: str
    action: str
    resource_type: str
    resource_id: str | None
    org_id: int | None
    patient_id: int | None
    outcome: str
    reason: str | None
    break_glass: str | None
    detail: str | None
    review: str | None = None


class AuditList(BaseModel):
    total: int
    items: list[AuditOut]


@router.get("/audit", response_model=AuditList, summary="Search the audit trail (auditor)")
def search_audit(session: SessionDep, actor: ActorDep, username: str | None = None,
                 patient_id: int | None = None,
                 id_number: Annotated[str | None, Query(description="the patient's ID number")] = None,
                 action: str | None = None, outcome: str | None = None, since: datetime | None = None,
                 until: datetime | None = None, break_glass: bool = False, unreviewed: bool = False,
                 offset: Offset = 0, limit: Limit = 50) -> Any:
    f = trail.AuditFilter(username=username, patient_id=patient_id,
                          person_key=service.find_person_key(session, id_number) if id_number else None,
                          action=action, outcome=outcome, since=since, until=until,
                          break_glass_only=break_glass, unreviewed_only=unreviewed)
    page = trail.search(session, actor, f, offset=offset, limit=limit)
    items = []
    for ev in page.items:
        out = AuditOut.model_validate(ev)
        review = page.reviews.get(ev.id)
        out.review = f"{review.verdict} by {review.reviewer}" if review else None
        items.append(out)
    return AuditList(total=page.total, items=items)


class ReviewIn(BaseModel):
    verdict: str = Field(description="justified | unjustified")
    note: str | None = Field(None, max_length=500)


@router.post("/audit/{audit_id}/review", status_code=201, summary="Review a break-the-glass access (auditor)")
def review(audit_id: RowId, body: ReviewIn, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    r = trail.review_break_glass(session, actor, audit_id, verdict=body.verdict, note=body.note)
    return {"audit_id": r.audit_id, "verdict": r.verdict, "reviewer": r.reviewer}


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    last_seq: int
    problems: list[str]


@router.get("/audit/verify", response_model=VerifyOut, summary="Check the audit chain (auditor)")
def verify(session: SessionDep, actor: ActorDep) -> Any:
    report = trail.verify_as(session, actor)
    return VerifyOut(ok=report.ok, checked=report.checked, last_seq=report.last_seq, problems=report.problems)

