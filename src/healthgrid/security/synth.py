"""Demo users of the synthetic region: one per role, ``demo-<role>``, scoped as a real
deployment would scope them, created through the security service like any other user."""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..registry import queries as registry_queries
from . import service
from .domain import MFA_REQUIRED, Actor, Role, ScopeKind, id_check_digit
from .service import GrantSpec

DEMO_PASSWORD = "HealthGrid#2026"


@dataclass
class DemoLogin:
    username: str
    role: Role
    scope: str
    totp_secret: str | None


def _pick_org(session: Session, *, types: list[str], levels: list[str], division_code: str | None = None):
    page = registry_queries.search_organizations(
        session, registry_queries.OrgFilter(types=types, levels=levels, division_code=division_code), limit=1)
    return page.items[0] if page.items else None


def _demo_id_number(rng: random.Random) -> str:
    # Registered in Beijing Chaoyang (110105) when first issued: a real address code, as
    # the synthetic divisions use codes no real province has.
    body = f"110105{rng.randint(1950, 1990)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 99):02d}"
    body += str(rng.choice([1, 3, 5, 7, 9]))
    return body + id_check_digit(body)


def create_demo_users(session: Session, *, seed: int) -> list[DemoLogin]:
    rng = random.Random(f"demo-users-{seed}")
    actor = Actor.system_actor("synth", surface="cli")
    root_id = registry_queries.root_division_id(session)
    if root_id is None:
        return []
    root = registry_queries.divisions_by_ids(session, [root_id])[0]
    counties = registry_queries.search_divisions(session, level="county", limit=1).items
    county = counties[0] if counties else root
    hospital = _pick_org(session, types=["general_hospital"], levels=["L2"], division_code=county.code) \
        or _pick_org(session, types=["general_hospital"], levels=["L2", "L3", "L4"])
    if hospital is None:
        return []
    township = _pick_org(session, types=["township_health_centre", "community_health_centre"], levels=["L1"],
                         division_code=county.code)
    staff = registry_queries.search_practice_sites(session, org_ids=[hospital.id], limit=2).items if hospital else []
    nurse_staff = registry_queries.search_practice_sites(session, org_ids=[township.id], limit=1).items \
        if township else []

    def org_scope(org) -> tuple[ScopeKind, int]:
        return ScopeKind.ORGANIZATION, org.id

    plan: list[tuple[Role, ScopeKind, int | None, str, int | None, int | None]] = [
        # role, scope kind, scope id, scope description, home org, practitioner
        (Role.RESIDENT, ScopeKind.SELF, None, "本人 self", None, None),
        (Role.CLINICIAN, *org_scope(hospital), hospital.name, hospital.id,
         staff[0].practitioner.id if staff else None),
        (Role.NURSE, *org_scope(township or hospital), (township or hospital).name, (township or hospital).id,
         nurse_staff[0].practitioner.id if nurse_staff else None),
        (Role.FACILITY_ADMIN, *org_scope(hospital), hospital.name, hospital.id, None),
        (Role.CDC_EPIDEMIOLOGIST, ScopeKind.DIVISION, county.id, county.name, None, None),
        (Role.MCH_MANAGER, ScopeKind.DIVISION, county.id, county.name, None, None),
        (Role.INSURER, ScopeKind.DIVISION, root.id, root.name, None, None),
        (Role.COMMISSION_ADMIN, ScopeKind.DIVISION, root.id, root.name, None, None),
        (Role.AUDITOR, ScopeKind.DIVISION, root.id, root.name, None, None),
        (Role.SYSTEM_ADMIN, ScopeKind.DIVISION, root.id, root.name, None, None),
        (Role.MPI_STEWARD, ScopeKind.DIVISION, county.id, county.name, None, None),
    ]
    logins = []
    for role, kind, scope_id, scope_name, home_org, practitioner_id in plan:
        username = f"demo-{role}"
        user = service.create_user(
            session, actor, username=username, display_name=f"演示{_ZH[role]}", password=DEMO_PASSWORD,
            grants=[GrantSpec(role, kind, scope_id)], org_id=home_org, practitioner_id=practitioner_id,
            id_number=_demo_id_number(rng) if role is Role.RESIDENT else None,
            phone=f"139{rng.randint(10_000_000, 99_999_999)}" if role is Role.RESIDENT else None)
        secret = None
        if role in MFA_REQUIRED:
            secret = base64.b32encode(rng.randbytes(20)).decode()
            service.set_totp_secret(session, actor, user.id, secret)
        logins.append(DemoLogin(username, role, scope_name, secret))
    return logins


_ZH = {
    Role.RESIDENT: "居民", Role.CLINICIAN: "医生", Role.NURSE: "护士", Role.FACILITY_ADMIN: "机构管理员",
    Role.CDC_EPIDEMIOLOGIST: "疾控人员", Role.MCH_MANAGER: "妇幼管理员", Role.INSURER: "医保经办",
    Role.COMMISSION_ADMIN: "卫健委管理员", Role.AUDITOR: "审计员", Role.SYSTEM_ADMIN: "系统管理员",
    Role.MPI_STEWARD: "主索引管理员",
}
