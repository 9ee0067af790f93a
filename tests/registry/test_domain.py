"""Pure registry rules, table-driven."""

import pytest

from healthgrid.errors import Invalid
from healthgrid.registry import domain as d

L = d.DivisionLevel


@pytest.mark.parametrize(("code", "level", "parent"), [
    ("440000", L.PROVINCE, None),
    ("440100", L.CITY, "440000"),
    ("440106", L.COUNTY, "440100"),
    ("440106001000", L.TOWNSHIP, "440106"),
    ("440106001001", L.VILLAGE, "440106001000"),
])
def test_valid_division_codes_extend_their_parent(code, level, parent):
    d.check_division_code(code, level, parent)


@pytest.mark.parametrize(("code", "level", "parent", "needle"), [
    ("44000", L.PROVINCE, None, "6 digits"),
    ("440100", L.PROVINCE, None, "0000"),
    ("450100", L.CITY, "440000", "prefix 44"),
    ("440000", L.CITY, "440000", "ends in 00"),
    ("440100", L.COUNTY, "440100", "does not end in 00"),
    ("440106", L.TOWNSHIP, "440106", "12 digits"),
    ("440106000000", L.TOWNSHIP, "440106", "non-zero"),
    ("440107001000", L.TOWNSHIP, "440106", "prefix 440106"),
    ("440106001000", L.VILLAGE, "440106001000", "does not end in 000"),
    ("440106002001", L.VILLAGE, "440106001000", "prefix 440106001"),
])
def test_invalid_division_codes_say_why(code, level, parent, needle):
    with pytest.raises(Invalid) as err:
        d.check_division_code(code, level, parent)
    assert err.value.code == "REG-003"
    assert needle in err.value.message


def test_non_province_needs_a_parent():
    with pytest.raises(Invalid) as err:
        d.check_division_code("440100", L.CITY, None)
    assert err.value.code == "REG-004"


@pytest.mark.parametrize(("org_type", "level", "ok"), [
    (d.OrgType.VILLAGE_CLINIC, d.OrgLevel.L0, True),
    (d.OrgType.VILLAGE_CLINIC, d.OrgLevel.L1, False),
    (d.OrgType.TOWNSHIP_HEALTH_CENTRE, d.OrgLevel.L1, True),
    (d.OrgType.GENERAL_HOSPITAL, d.OrgLevel.L0, False),
    (d.OrgType.GENERAL_HOSPITAL, d.OrgLevel.L5, True),
    (d.OrgType.CDC, d.OrgLevel.L2, True),
])
def test_type_decides_which_levels_an_organisation_can_sit_on(org_type, level, ok):
    if ok:
        d.check_org_level(org_type, level)
    else:
        with pytest.raises(Invalid, match="REG-011"):
            d.check_org_level(org_type, level)


@pytest.mark.parametrize(("lvl", "cls", "zh", "en"), [
    (3, "A", "三级甲等", "Level 3 Grade A"),
    (2, "B", "二级乙等", "Level 2 Grade B"),
    (3, "S", "三级特等", "Level 3 Special grade"),
    (1, None, "一级", "Level 1"),
    (None, None, "未定级", "Ungraded"),
])
def test_grade_is_level_plus_class(lvl, cls, zh, en):
    d.check_grade(lvl, cls)
    assert d.grade_label(lvl, cls, "zh") == zh
    assert d.grade_label(lvl, cls, "en") == en


@pytest.mark.parametrize(("lvl", "cls"), [(4, "A"), (2, "S"), (2, "D"), (None, "A")])
def test_impossible_grades_are_refused(lvl, cls):
    with pytest.raises(Invalid) as err:
        d.check_grade(lvl, cls)
    assert err.value.code == "REG-012"


def test_child_level_walks_down_the_division_tree():
    assert d.child_level(L.PROVINCE) is L.CITY
    assert d.child_level(L.TOWNSHIP) is L.VILLAGE
    assert d.child_level(L.VILLAGE) is None


def test_every_enum_member_has_labels_in_both_languages():
    for enum, labels in [(d.DivisionLevel, d.DIVISION_LABELS), (d.OrgLevel, d.ORG_LEVEL_LABELS),
                         (d.OrgType, d.ORG_TYPE_LABELS), (d.AllianceKind, d.ALLIANCE_LABELS),
                         (d.SpecialtyLevel, d.SPECIALTY_LEVEL_LABELS)]:
        assert set(labels) == set(enum)
        assert all(zh and en for zh, en in labels.values())
