"""The recognition measures asserted exactly on a hand-made set of logged decisions: two
facilities of a county and the city's hospital over two months (China months, the boundary
at local midnight), each outcome, reasons, prices, checks still awaiting an answer, and
decisions outside the period or the scope; who may see which facilities; bad periods."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from tests.factories import SYS
from tests.referrals.conftest import staff

from healthgrid.errors import HealthGridError
from healthgrid.results import measures
from healthgrid.results.domain import CN_TZ
from healthgrid.results.models import Decision
from healthgrid.security import service as security

from .world_recognition import make_world

JAN, FEB = date(2026, 1, 1), date(2026, 2, 28)


def cn(y: int, m: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=CN_TZ)


@pytest.fixture
def w(session):
    world = make_world(session)
    a, b, c = world.region.county_hospital, world.city_hospital, world.hosp_b
    t = world.region.township_centre
    rows = [  # (org, decided at, outcome, reason, price)
        (a, cn(2026, 1, 5), "recognised", None, 4.0), (a, cn(2026, 1, 31, 23, 30), "recognised", None, 4.0),
        (a, cn(2026, 1, 9), "repeat_with_reason", "changed_condition", 200.0),
        (a, cn(2026, 1, 9), "repeat_no_prior", None, 5.0), (a, cn(2026, 1, 10), "pending", None, 4.0),
        (a, cn(2026, 1, 11), "not_applicable", None, None),
        (a, cn(2026, 2, 1, 0, 10), "recognised", None, 200.0),
        (a, cn(2026, 2, 3), "repeat_with_reason", "emergency", 20.0),
        (a, cn(2026, 2, 4), "repeat_not_recognisable", None, 4.0),
        (t, cn(2026, 2, 14), "recognised", None, 20.0),
        (b, cn(2026, 1, 20), "recognised", None, 50.0), (b, cn(2026, 1, 21), "repeat_with_reason",
                                                         "changed_condition", 50.0),
        (c, cn(2026, 1, 22), "recognised", None, 25.0),
        (a, cn(2025, 12, 31, 23, 59), "recognised", None, 999.0), (a, cn(2026, 3, 1, 0, 0), "recognised", None, 999.0),
    ]
    session.add_all([Decision(patient_id=world.patient, item="GLU", ordering_org_id=org.id, physician="d1",
                              outcome=outcome, override_reason=reason, patient_informed=True if reason else None,
                              price_cny=price, catalogue_version="2025-01-01", decided_at=at)
                     for org, at, outcome, reason, price in rows])
    session.flush()
    return world


def row(result, org, month):
    return next(r for r in result.rows if r.org_id == org.id and r.month == month)


def test_each_measure_has_its_defined_value(session, w):
    m = measures.recognition_measures(session, SYS, division_id=w.region.county.id, since=JAN, until=FEB)
    a = row(m, w.region.county_hospital, "2026-01")
    assert (a.orders, a.with_recognisable, a.recognised, a.repeat_with_reason, a.repeat_no_prior, a.not_applicable,
            a.repeat_not_recognisable, a.awaiting) == (5, 3, 2, 1, 1, 1, 0, 1)
    assert a.cost_avoided_cny == 8.0 and a.by_reason == {"changed_condition": 1}
    assert a.recognisable_share == pytest.approx(3 / 5) and a.recognition_rate == pytest.approx(2 / 3)
    feb = row(m, w.region.county_hospital, "2026-02")  # 00:10 on 1 February (China) is February
    assert (feb.orders, feb.with_recognisable, feb.recognised, feb.repeat_not_recognisable, feb.cost_avoided_cny,
            feb.by_reason) == (3, 2, 1, 1, 200.0, {"emergency": 1})
    assert [(f.org_name, f.level, f.orders, f.cost_avoided_cny) for f in m.facilities] == [
        ("永宁县人民医院", "L2", 8, 208.0), ("清河镇卫生院", "L1", 1, 20.0)]
    assert [(x.month, x.orders, x.recognised) for x in m.monthly] == [("2026-01", 5, 2), ("2026-02", 4, 2)]
    t = m.total
    assert (t.orders, t.with_recognisable, t.recognised, t.repeat_with_reason, t.awaiting, t.cost_avoided_cny) == (
        9, 6, 4, 2, 1, 228.0)
    assert t.by_reason == {"changed_condition": 1, "emergency": 1}
    assert t.recognisable_share == pytest.approx(6 / 9) and t.recognition_rate == pytest.approx(4 / 6)


def test_totals_pool_the_facilities_of_the_division(session, w):
    m = measures.recognition_measures(session, SYS, division_id=w.region.city.id, since=JAN, until=FEB)
    assert [f.org_name for f in m.facilities] == ["安平市第一人民医院", "永宁县人民医院", "长乐县人民医院",
                                                  "清河镇卫生院"]
    assert (m.total.orders, m.total.recognised, m.total.cost_avoided_cny) == (12, 6, 303.0)
    assert m.total.by_reason == {"changed_condition": 2, "emergency": 1}
    one = measures.recognition_measures(session, SYS, since=date(2026, 1, 15), until=date(2026, 1, 31))
    assert one.months == ["2026-01"] and one.total.orders == 4  # b x2, c, and a's 23:30 on the 31st


def test_who_may_see_which_facilities(session, w):
    admin = staff(session, w.region.county_hospital.id, username="stats-admin", role="facility_admin")
    assert measures.stats_facilities(admin) == [w.region.county_hospital.id]
    own = measures.recognition_measures(session, admin, org_ids=measures.stats_facilities(admin), since=JAN,
                                        until=FEB)
    assert [f.org_id for f in own.facilities] == [w.region.county_hospital.id] and own.total.orders == 8
    user = security.create_user(session, SYS, username="county-stats", display_name="县卫健局",
                                password="Bureau-pass-1",
                                grants=[security.parse_grant("commission_admin", "division", w.region.county.id)])
    bureau = security.actor_for(session, user, surface="api", client=None, mfa=True)
    assert [c.id for c in measures.stats_divisions(session, bureau)] == [w.region.county.id]
    for actor, kw, code in ((admin, {"org_ids": [w.city_hospital.id]}, "SEC-103"),
                            (bureau, {"division_id": w.region.city.id}, "SEC-103"),
                            (w.doctor, {}, "SEC-102")):
        with pytest.raises(HealthGridError) as exc:
            measures.recognition_measures(session, actor, since=JAN, until=FEB, **kw)
        assert exc.value.code == code
    whole = measures.recognition_measures(session, bureau, since=JAN, until=FEB)  # its scope: the county
    assert {f.org_id for f in whole.facilities} == {w.region.county_hospital.id, w.region.township_centre.id}


@pytest.mark.parametrize(("kw", "code"), [
    (dict(division_id=1, org_ids=[1]), "RES-135"),
    (dict(since=FEB, until=JAN), "RES-136"),
    (dict(since=date(2020, 1, 1), until=date(2026, 1, 1)), "RES-137"),
    (dict(division_id=2**31 - 1), "RES-138"),
    (dict(org_ids=[]), "RES-139"),
])
def test_bad_periods_and_scopes_are_refused_with_a_code(session, w, kw, code):
    with pytest.raises(HealthGridError) as exc:
        measures.recognition_measures(session, SYS, **{"since": JAN, "until": FEB, **kw})
    assert exc.value.code == code


def test_an_empty_period_measures_nothing(session, w):
    m = measures.recognition_measures(session, SYS, since=date(2024, 1, 1), until=date(2024, 1, 31))
    assert m.facilities == [] and m.total.orders == 0 and m.total.recognisable_share is None
