"""Registry use cases, on SQLite and (in CI) PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from tests.conftest import SESSION_INFO
from tests.factories import make_small_region

from healthgrid.db import make_sessionmaker
from healthgrid.errors import Conflict, Invalid, NotFound
from healthgrid.outbox import OutboxEvent
from healthgrid.registry import queries, service
from healthgrid.registry.models import Organization
from healthgrid.security.domain import Actor

SYS = Actor.system_actor("tests")


def _org_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Organization))


def test_division_carries_its_ancestors_for_subtree_queries(session):
    r = make_small_region(session)
    assert r.village.township_id == r.township.id
    assert r.village.county_id == r.county.id
    assert r.county.county_id == r.county.id
    assert [a.code for a in queries.division_ancestors(session, r.village)] == [
        "910000", "910100", "910102", "910102001000"]


def test_subtree_of_a_county_holds_its_townships_and_villages_facilities(session):
    r = make_small_region(session)
    page = queries.search_organizations(session, queries.OrgFilter(division_code=r.county.code))
    assert {o.code for o in page.items} == {"91-CH1", "91-THC1", "91-VC1"}
    page = queries.search_organizations(session, queries.OrgFilter(division_code=r.township.code))
    assert {o.code for o in page.items} == {"91-THC1", "91-VC1"}
    counts = queries.organization_counts_by_level(session, r.county)
    assert counts == {"L0": 1, "L1": 1, "L2": 1}


def test_unknown_division_code_is_refused_and_nothing_is_written(session):
    make_small_region(session)
    before = _org_count(session)
    with pytest.raises(NotFound) as err:
        service.create_organization(session, SYS, code="X-1", name="某医院", level="L2",
                                    org_type="general_hospital", division_code="999999")
    assert err.value.code == "REG-001"
    assert _org_count(session) == before


def test_duplicate_organisation_code_is_a_conflict_and_changes_nothing(session):
    r = make_small_region(session)
    before = _org_count(session)
    with pytest.raises(Conflict) as err:
        service.create_organization(session, SYS, code=r.county_hospital.code, name="另一家医院", level="L2",
                                    org_type="general_hospital", division_code=r.county.code)
    assert err.value.code == "REG-002"
    assert _org_count(session) == before
    assert session.get(Organization, r.county_hospital.id).name == "永宁县人民医院"


def test_division_under_wrong_parent_level_is_refused(session):
    r = make_small_region(session)
    with pytest.raises(Invalid) as err:
        service.create_division(session, SYS, code="910102002001", name="错村", level="village",
                                parent_code=r.county.code)
    assert err.value.code == "REG-004"


def test_update_organisation_validates_the_merged_record_and_bumps_version(session):
    r = make_small_region(session)
    org = service.update_organization(session, SYS, r.county_hospital.id, {"grade_level": 3, "grade_class": "B"})
    assert (org.grade_level, org.grade_class, org.version) == (3, "B", 2)
    with pytest.raises(Invalid) as err:
        service.update_organization(session, SYS, r.county_hospital.id, {"grade_class": "S", "grade_level": 2})
    assert err.value.code == "REG-012"
    fresh = session.get(Organization, r.county_hospital.id)
    session.refresh(fresh)
    assert (fresh.grade_level, fresh.grade_class, fresh.version) == (3, "B", 2)


def test_update_refuses_unknown_fields(session):
    r = make_small_region(session)
    with pytest.raises(Invalid) as err:
        service.update_organization(session, SYS, r.county_hospital.id, {"code": "NEW"})
    assert err.value.code == "REG-014"


def test_organisation_writes_publish_outbox_events_in_the_same_transaction(session):
    r = make_small_region(session)
    topics = session.scalars(select(OutboxEvent.topic).where(
        OutboxEvent.payload["org_id"].as_integer() == r.county_hospital.id)).all()
    assert "registry.organization_created" in topics


def test_alliance_has_lead_and_members_and_refuses_a_second_membership(session):
    r = make_small_region(session)
    detail = queries.alliance_detail(session, r.alliance.id)
    assert detail.lead.code == "91-CH1"
    assert sorted((o.code, m.role) for o, m in detail.members) == [
        ("91-CH1", "lead"), ("91-THC1", "member"), ("91-VC1", "member")]
    with pytest.raises(Conflict) as err:
        service.add_alliance_member(session, SYS, alliance_id=r.alliance.id, org_code="91-THC1")
    assert err.value.code == "REG-043"
    members = queries.search_organizations(session, queries.OrgFilter(alliance_id=r.alliance.id))
    assert members.total == 3


def test_specialty_alliance_names_its_specialty(session):
    r = make_small_region(session)
    with pytest.raises(Invalid) as err:
        service.create_alliance(session, SYS, code="91-ZK", name="胸痛专科联盟", kind="specialty_alliance",
                                lead_org_code=r.county_hospital.code)
    assert err.value.code == "REG-041"


def test_multi_site_practice_keeps_one_primary_site(session):
    r = make_small_region(session)
    site = service.add_practice_site(session, SYS, practitioner_id=r.doctor.id, org_id=r.township_centre.id)
    assert site.is_primary is False
    with pytest.raises(Conflict) as err:
        service.add_practice_site(session, SYS, practitioner_id=r.doctor.id, org_id=r.village_clinic.id,
                                  is_primary=True)
    assert err.value.code == "REG-036"
    with pytest.raises(Conflict) as err:
        service.add_practice_site(session, SYS, practitioner_id=r.doctor.id, org_id=r.township_centre.id)
    assert err.value.code == "REG-037"
    page = queries.search_practice_sites(session, practitioner_ids=[r.doctor.id])
    assert page.total == 2


def test_practitioner_validation_names_the_field(session):
    with pytest.raises(Invalid) as err:
        service.create_practitioner(session, SYS, licence_no="12", name="李四", sex="M", title="nurse")
    assert err.value.detail["field"] == "licence_no"
    with pytest.raises(Invalid) as err:
        service.create_practitioner(session, SYS, licence_no="120190100000009", name="李四", sex="X",
                                    title="nurse")
    assert err.value.code == "REG-032"
    with pytest.raises(Invalid) as err:
        service.create_practitioner(session, SYS, licence_no="120190100000009", name="李四", sex="F",
                                    title="surgeon")
    assert err.value.code == "REG-031"


def test_department_services_equipment_and_key_specialty(session):
    r = make_small_region(session)
    service.add_service(session, SYS, org_id=r.county_hospital.id, kind="outpatient")
    service.add_equipment(session, SYS, org_id=r.county_hospital.id, kind="CT", quantity=2)
    service.designate_key_specialty(session, SYS, org_id=r.county_hospital.id, department_code="03.03",
                                    level="county", year=2022)
    detail = queries.organization_detail(session, r.county_hospital.id)
    assert [x.code for x in detail.departments] == ["03.03"]
    assert [x.kind for x in detail.services] == ["outpatient"]
    assert [(x.kind, x.quantity) for x in detail.equipment] == [("CT", 2)]
    assert [(k.department_code, k.level) for k in detail.key_specialties] == [("03.03", "county")]
    assert [p.name for p, _ in detail.staff] == ["张晓明"]
    with pytest.raises(Invalid):
        service.add_equipment(session, SYS, org_id=r.county_hospital.id, kind="CT", quantity=0)
    with pytest.raises(Invalid) as err:
        service.add_department(session, SYS, org_id=r.county_hospital.id, code="99")
    assert err.value.code == "REG-020"


def test_name_search_escapes_like_wildcards(session):
    make_small_region(session)
    page = queries.search_organizations(session, queries.OrgFilter(name="%"))
    assert page.total == 0
    assert queries.search_organizations(session, queries.OrgFilter(name="人民")).total == 1


@pytest.mark.pg
def test_two_writers_racing_for_one_code_end_in_one_row_and_one_conflict(engine):
    """The unique key, not the Python pre-check, decides a race (PostgreSQL, real sessions)."""
    maker = make_sessionmaker(engine, info=dict(SESSION_INFO))
    with maker() as s:
        make_small_region(s, prefix="92")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def writer(name: str) -> None:
        with maker() as s:
            try:
                barrier.wait()
                service.create_organization(s, SYS, code="92-RACE", name=name, level="L2",
                                            org_type="cdc", division_code="920102")
                outcomes.append("created")
            except Conflict as exc:
                outcomes.append(exc.code)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("甲", "乙")]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["REG-002", "created"]
        with maker() as s:
            assert s.scalar(select(func.count()).where(Organization.code == "92-RACE")) == 1
    finally:
        _drop_prefix(maker, "92")


def _drop_prefix(maker, prefix: str) -> None:
    from sqlalchemy import delete

    from healthgrid.registry import models as m

    with maker() as s, s.begin():
        orgs = select(m.Organization.id).where(m.Organization.code.like(f"{prefix}-%"))
        pracs = select(m.PracticeSite.practitioner_id).where(m.PracticeSite.org_id.in_(orgs))
        prac_ids = list(s.scalars(pracs))
        s.execute(delete(m.PracticeSite).where(m.PracticeSite.org_id.in_(orgs)))
        s.execute(delete(m.Practitioner).where(m.Practitioner.id.in_(prac_ids)))
        alliances = select(m.Alliance.id).where(m.Alliance.code.like(f"{prefix}-%"))
        s.execute(delete(m.AllianceMember).where(m.AllianceMember.alliance_id.in_(alliances)))
        s.execute(delete(m.Alliance).where(m.Alliance.code.like(f"{prefix}-%")))
        s.execute(delete(m.Department).where(m.Department.org_id.in_(orgs)))
        s.execute(delete(m.Organization).where(m.Organization.code.like(f"{prefix}-%")))
        s.execute(delete(m.Division).where(m.Division.code.like(f"{prefix}%")).execution_options(
            synchronize_session=False))


def test_facility_staff_list_puts_primary_site_first_then_seniority(session):
    r = make_small_region(session)
    hosp = r.county_hospital.id
    for licence, name, title in [("120209100000101", "赵一", "nurse"),
                                 ("120209100000102", "钱二", "chief_physician"),
                                 ("120209100000103", "孙三", "resident_physician")]:
        p = service.create_practitioner(session, SYS, licence_no=licence, name=name, sex="F", title=title)
        service.add_practice_site(session, SYS, practitioner_id=p.id, org_id=hosp, is_primary=True)
    visiting = service.create_practitioner(session, SYS, licence_no="120209100000104", name="李四", sex="M",
                                           title="chief_physician")
    service.add_practice_site(session, SYS, practitioner_id=visiting.id, org_id=hosp, is_primary=False)
    detail = queries.organization_detail(session, hosp, staff_limit=3)
    assert [p.name for p, _ in detail.staff] == ["钱二", "张晓明", "孙三"]
    assert detail.staff_total == 5
    everyone = queries.organization_detail(session, hosp).staff
    assert [p.name for p, _ in everyone][-2:] == ["赵一", "李四"]
