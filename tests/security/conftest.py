"""A small region with two counties and one user per role, each with an API token, for the
security tests. Built through the services, inside the per-test rolled-back transaction."""

from __future__ import annotations

from dataclasses import dataclass

import pyotp
import pytest
from tests.factories import SYS, make_small_region

from healthgrid.registry import service as registry
from healthgrid.security import service
from healthgrid.security.domain import Actor, Role, ScopeKind

PASSWORD = "Str0ng-Passw0rd!"
ID_NUMBER = "11010519491231002X"  # the worked example of GB 11643


@dataclass
class World:
    region: object
    county_b: object
    hosp_b: object
    users: dict[str, object]
    tokens: dict[str, str]
    totp: dict[str, str]


def scope_for(role: Role, w) -> tuple[ScopeKind, int | None, int | None]:
    """(scope kind, scope id, home org) per role: facility roles on county A's hospital,
    public-health roles on county A, region roles on the province."""
    r = w.region
    if role is Role.RESIDENT:
        return ScopeKind.SELF, None, None
    if role in (Role.CLINICIAN, Role.NURSE, Role.FACILITY_ADMIN):
        return ScopeKind.ORGANIZATION, r.county_hospital.id, r.county_hospital.id
    if role in (Role.CDC_EPIDEMIOLOGIST, Role.MCH_MANAGER):
        return ScopeKind.DIVISION, r.county.id, None
    return ScopeKind.DIVISION, r.province.id, None


@pytest.fixture
def world(session) -> World:
    region = make_small_region(session)
    county_b = registry.create_division(session, SYS, code="910103", name="长乐县", level="county",
                                        parent_code=region.city.code)
    hosp_b = registry.create_organization(session, SYS, code="91-CH2", name="长乐县人民医院", level="L2",
                                          org_type="general_hospital", division_code=county_b.code)
    w = World(region, county_b, hosp_b, {}, {}, {})
    for role in Role:
        kind, scope_id, home = scope_for(role, w)
        user = service.create_user(
            session, SYS, username=f"u-{role}", display_name=f"User {role}", password=PASSWORD,
            grants=[service.GrantSpec(role, kind, scope_id)], org_id=home,
            id_number=ID_NUMBER if role is Role.RESIDENT else None,
            phone="13812345678" if role is Role.RESIDENT else None)
        w.users[role] = user
        w.tokens[role] = service.create_token(session, SYS, user_id=user.id, name="t").token
        secret = pyotp.random_base32()
        service.set_totp_secret(session, SYS, user.id, secret)
        w.totp[role] = secret
    return w


def actor_of(session, w: World, role: Role, **kw) -> Actor:
    return service.actor_for(session, w.users[role], surface="api", client="127.0.0.1", mfa=True, **kw)
