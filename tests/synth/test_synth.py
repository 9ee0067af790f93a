"""The synthetic region: deterministic, plausible proportions, refuses to overwrite."""

import pytest
from sqlalchemy import func, select
from tests.conftest import SESSION_INFO

from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.errors import Conflict, Invalid
from healthgrid.migrate import upgrade
from healthgrid.registry import domain as d
from healthgrid.registry import queries
from healthgrid.registry.models import Alliance, Division, Organization, PracticeSite
from healthgrid.synth import generate_region


def _snapshot(url):
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            orgs = conn.execute(select(Organization.code, Organization.name, Organization.level)
                                .order_by(Organization.id)).all()
            divs = conn.execute(select(Division.code, Division.name).order_by(Division.id)).all()
        return orgs, divs
    finally:
        engine.dispose()


def test_same_seed_gives_the_same_region_and_another_seed_another(fresh_databases):
    urls = [fresh_databases.create("synth") for _ in range(3)]
    for url, seed in zip(urls, (5, 5, 6), strict=True):
        upgrade(url)
        engine = make_engine(url)
        generate_region(engine, size="tiny", seed=seed, info=SESSION_INFO)
        engine.dispose()
    a, b, c = (_snapshot(u) for u in urls)
    assert a == b
    assert a != c


def test_region_has_every_tier_and_the_expected_proportions(region_session):
    s = region_session
    by_type = select(Organization.org_type, func.count()).group_by(Organization.org_type)
    counts = dict(s.execute(by_type).all())
    counties = s.scalars(select(Division).where(Division.level == "county")).all()
    townships = s.scalar(select(func.count()).where(Division.level == "township"))
    villages = s.scalar(select(func.count()).where(Division.level == "village"))
    # one hospital, TCM hospital, MCH hospital and CDC per county (+ the city's own)
    assert counts["tcm_hospital"] == len(counties) + 1
    assert counts["mch_hospital"] == len(counties) + 1
    assert counts["cdc"] == len(counties) + 1
    # each township has its health centre, each village its clinic or station
    assert counts.get("township_health_centre", 0) + counts.get("community_health_centre", 0) == townships
    assert counts.get("village_clinic", 0) + counts.get("community_health_station", 0) == villages
    levels = {lvl for (lvl,) in s.execute(select(Organization.level).distinct())}
    assert {"L0", "L1", "L2", "L3"} <= levels


def test_every_county_has_a_county_medical_community_led_by_its_hospital(region_session):
    s = region_session
    for county in s.scalars(select(Division).where(Division.level == "county")):
        ygt = s.scalar(select(Alliance).where(Alliance.kind == "county_community",
                                              Alliance.division_id == county.id))
        assert ygt is not None, county.name
        detail = queries.alliance_detail(s, ygt.id)
        assert detail.lead.org_type == "general_hospital"
        assert detail.lead.division_id == county.id
        member_types = {o.org_type for o, _ in detail.members}
        assert {"township_health_centre", "community_health_centre"} & member_types


def test_generated_codes_and_grades_pass_the_domain_rules(region_session):
    s = region_session
    by_id = {x.id: x for x in s.scalars(select(Division))}
    for div in by_id.values():
        parent = by_id.get(div.parent_id)
        d.check_division_code(div.code, d.DivisionLevel(div.level), parent.code if parent else None)
        assert div.code.startswith(tuple(str(p) for p in range(91, 100)))  # never a real GB/T 2260 code
    for org in s.scalars(select(Organization)):
        d.check_org_level(d.OrgType(org.org_type), d.OrgLevel(org.level))
        d.check_grade(org.grade_level, org.grade_class)


def test_multi_site_practice_is_present(region_session):
    extra = region_session.scalar(select(func.count()).where(PracticeSite.is_primary.is_(False)))
    assert extra >= 1


def test_synth_refuses_a_database_that_already_holds_a_region(region_url):
    engine = make_engine(region_url)
    try:
        with pytest.raises(Conflict) as err:
            generate_region(engine, size="tiny", seed=1, info=SESSION_INFO)
        assert err.value.code == "SYN-001"
        with make_sessionmaker(engine)() as s:
            assert s.scalar(select(func.count()).where(Division.level == "province")) == 1
    finally:
        engine.dispose()


def test_unknown_size_is_refused(region_url):
    engine = make_engine(region_url)
    try:
        with pytest.raises(Invalid) as err:
            generate_region(engine, size="galaxy", seed=1, info=SESSION_INFO)
        assert err.value.code == "SYN-002"
    finally:
        engine.dispose()
