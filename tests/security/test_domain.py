"""Pure rules: ID numbers (GB 11643), masking, the password policy, scopes."""

from datetime import date

import pytest

from healthgrid.errors import Invalid
from healthgrid.security.domain import (
    Actor,
    Grant,
    OrgPlace,
    Perm,
    Role,
    ScopeKind,
    check_grant,
    check_password,
    grant_covers,
    mask_id,
    mask_name,
    mask_phone,
    parse_resident_id,
)


def test_the_standards_worked_example_validates_and_gives_birth_date_and_sex():
    rid = parse_resident_id("11010519491231002x")
    assert rid.number == "11010519491231002X"
    assert rid.birth_date == date(1949, 12, 31)
    assert rid.sex == "F"


@pytest.mark.parametrize("raw,code", [
    ("11010519491231002", "SEC-030"),      # 17 characters
    ("1101051949123100AX", "SEC-030"),     # letters inside
    ("00010519491231002X", "SEC-031"),     # no such province
    ("11010519491331002X", "SEC-032"),     # month 13
    ("11010530491231002X", "SEC-032"),     # born in 3049
    ("110105194912310021", "SEC-033"),     # wrong check digit
])
def test_bad_id_numbers_are_refused_with_the_reason(raw, code):
    with pytest.raises(Invalid) as err:
        parse_resident_id(raw)
    assert err.value.code == code


def test_a_legacy_15_digit_number_is_converted():
    rid = parse_resident_id("110105491231002")
    assert rid.number == "11010519491231002X"


def test_masking_keeps_only_what_identifies_nobody():
    assert mask_id("11010519491231002X") == "110105********002X"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳明华") == "欧阳**"


@pytest.mark.parametrize("password,code", [
    ("Sh0rt!", "SEC-020"), ("alllowercaseletters", "SEC-021"), ("Alice-Passw0rd", "SEC-022")])
def test_password_policy(password, code):
    with pytest.raises(Invalid) as err:
        check_password(password, username="alice", min_length=10)
    assert err.value.code == code
    check_password("Str0ng-Passw0rd!", username="alice", min_length=10)


def test_resident_role_only_on_self_scope():
    with pytest.raises(Invalid):
        check_grant(Role.RESIDENT, ScopeKind.ORGANIZATION)
    with pytest.raises(Invalid):
        check_grant(Role.CLINICIAN, ScopeKind.SELF)


def test_a_grant_covers_its_organisation_division_subtree_or_alliance():
    place = OrgPlace(org_id=5, division_ids=frozenset({1, 2, 3}), alliance_ids=frozenset({9}))
    assert grant_covers(Grant(Role.CLINICIAN, ScopeKind.ORGANIZATION, 5), place)
    assert not grant_covers(Grant(Role.CLINICIAN, ScopeKind.ORGANIZATION, 6), place)
    assert grant_covers(Grant(Role.CDC_EPIDEMIOLOGIST, ScopeKind.DIVISION, 2), place)
    assert not grant_covers(Grant(Role.CDC_EPIDEMIOLOGIST, ScopeKind.DIVISION, 4), place)
    assert grant_covers(Grant(Role.FACILITY_ADMIN, ScopeKind.ALLIANCE, 9), place)


def test_administrator_duties_are_separate_and_tokens_narrow_permissions():
    admin = Actor(1, "a", (Grant(Role.SYSTEM_ADMIN, ScopeKind.DIVISION, 1),))
    auditor = Actor(2, "b", (Grant(Role.AUDITOR, ScopeKind.DIVISION, 1),))
    assert admin.can(Perm.USER_MANAGE) and not admin.can(Perm.AUDIT_READ)
    assert auditor.can(Perm.AUDIT_READ) and not auditor.can(Perm.USER_MANAGE)
    narrowed = Actor(1, "a", admin.grants, token_perms=frozenset({Perm.REGISTRY_READ}))
    assert narrowed.can(Perm.REGISTRY_READ) and not narrowed.can(Perm.USER_MANAGE)


def test_logs_carry_no_id_numbers_or_mobile_numbers(caplog):
    import logging

    from healthgrid.security import redact

    redact.install()
    logger = logging.getLogger("uvicorn.access")
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        logger.info('%s - "%s %s HTTP/%s" %d', "10.0.0.1", "GET",
                    "/api/security/audit?id_number=11010519491231002X&phone=13812345678", "1.1", 200)
    text = caplog.text
    assert "11010519491231002X" not in text and "13812345678" not in text
    assert "110105********002X" in text and "138****5678" in text
    assert redact.redact("order 2026112400001 of 5 items") == "order 2026112400001 of 5 items"
