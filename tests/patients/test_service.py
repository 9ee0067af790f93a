"""Master patient index use cases, on SQLite and (in CI) PostgreSQL: registration links,
reviews or creates; merge then unmerge restores exactly; access and audit."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select
from tests.conftest import SESSION_INFO
from tests.factories import SYS, make_patient, make_small_region, resident_id

from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.errors import Conflict, Forbidden, Invalid
from healthgrid.migrate import upgrade
from healthgrid.outbox import OutboxEvent
from healthgrid.patients import merging, service
from healthgrid.patients.models import MatchReview, Patient, PatientIdentifier
from healthgrid.security import service as security
from healthgrid.security.domain import Actor, Role, ScopeKind
from healthgrid.security.models import AuditEvent

BORN = date(1962, 5, 17)
RID = resident_id(BORN, seq=124)  # even: a woman


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def _actor(session, role: Role, scope: ScopeKind, scope_id: int | None, name: str) -> Actor:
    user = security.create_user(session, SYS, username=name, display_name=name, password="Correct#Horse9",
                                grants=[security.GrantSpec(role, scope, scope_id)])
    return security.actor_for(session, user, surface="api", client=None, mfa=True)


def test_new_resident_is_created_with_encrypted_identifiers(session):
    r = make_small_region(session)
    reg = make_patient(session, r, id_number=RID, phone="13812345678")
    assert reg.outcome == "created"
    assert reg.patient.identifier("resident_id") == RID  # the platform may see it
    ident = session.scalar(select(PatientIdentifier).where(PatientIdentifier.patient_id == reg.patient.id))
    assert RID not in ident.value_enc and RID not in ident.value_bidx
    row = session.get(Patient, reg.patient.id)
    assert "13812345678" not in (row.phone_enc or "") and row.name_key == "lixiuying"
    assert row.birth_date == BORN and row.sex == "F"


def test_same_resident_id_links_to_the_existing_record_and_adds_the_facility_number(session):
    r = make_small_region(session)
    first = make_patient(session, r, id_number=RID)
    again = make_patient(session, r, name="李秀英", id_number=RID, org=r.county_hospital, mrn="ZY2024-0001")
    assert again.outcome == "linked" and again.matched_by == "resident_id"
    assert again.patient.id == first.patient.id
    kinds = {(i.kind, i.assigner) for i in again.patient.identifiers}
    assert ("mrn", r.county_hospital.id) in kinds
    assert _count(session, Patient) == 1


def test_a_legacy_15_digit_number_is_converted_and_links(session):
    r = make_small_region(session)
    full = resident_id(date(1962, 5, 17), seq=124, county="110105")
    legacy = full[:6] + full[8:17]
    first = make_patient(session, r, id_number=full)
    again = make_patient(session, r, id_number=legacy)
    assert again.patient.id == first.patient.id and again.matched_by == "resident_id"


@pytest.mark.parametrize(("kw", "code"), [
    ({"id_number": RID[:17] + ("0" if RID[17] != "0" else "1")}, "SEC-033"),  # check digit
    ({"id_number": RID, "born": date(1962, 5, 18)}, "PAT-007"),  # birth date differs from the ID
    ({"id_number": RID, "sex": "M"}, "PAT-008"),  # sex differs from the 17th digit
    ({"born": date(2999, 1, 1)}, "PAT-004"),  # in the future
    ({"name": "Li123"}, "PAT-001"),
    ({"phone": "12345"}, "PAT-005"),
])
def test_bad_registrations_are_refused_with_a_code_and_change_nothing(session, kw, code):
    r = make_small_region(session)
    before = (_count(session, Patient), _count(session, PatientIdentifier), _count(session, OutboxEvent))
    with pytest.raises(Invalid) as err:
        make_patient(session, r, **kw)
    assert err.value.code == code
    assert (_count(session, Patient), _count(session, PatientIdentifier), _count(session, OutboxEvent)) == before


def test_homophone_name_with_swapped_birth_date_is_linked_probabilistically(session):
    r = make_small_region(session)
    first = make_patient(session, r, name="张晓明", sex="M", born=date(1980, 3, 7), phone="13912345678")
    again = make_patient(session, r, name="张小明", sex="M", born=date(1980, 7, 3), phone="13912345678")
    assert again.outcome == "linked" and again.matched_by == "probabilistic"
    assert again.patient.id == first.patient.id and again.probability >= 0.99


def test_a_doubtful_candidate_goes_to_review_and_a_new_record_is_made(session):
    r = make_small_region(session)
    first = make_patient(session, r, name="王建国", sex="M", born=date(1950, 1, 2), phone="13711112222")
    # same name and birth date, but another phone, no ID and no address: could be a namesake
    other = make_patient(session, r, name="王建国", sex="M", born=date(1950, 1, 2), phone="13733334444",
                         org=r.county_hospital, division_id=None)
    assert other.outcome == "review" and other.patient.id != first.patient.id
    review = session.get(MatchReview, other.reviews[0])
    assert {review.patient_id, review.candidate_id} == {first.patient.id, other.patient.id}
    assert review.levels["levels"]["phone"] == "different"


def test_a_stranger_is_created_without_review(session):
    r = make_small_region(session)
    make_patient(session, r, name="王建国", sex="M", born=date(1950, 1, 2))
    other = make_patient(session, r, name="赵丽", sex="F", born=date(1990, 11, 23))
    assert other.outcome == "created" and not other.reviews


def test_two_different_id_numbers_are_never_linked(session):
    r = make_small_region(session)
    make_patient(session, r, name="王建国", sex="M", born=date(1950, 1, 2), id_number=resident_id(date(1950, 1, 2)),
                 phone="13711112222")
    twin = make_patient(session, r, name="王建国", sex="M", born=date(1950, 1, 2),
                        id_number=resident_id(date(1950, 1, 2), seq=125), phone="13711112222")
    assert twin.outcome in ("created", "review") and twin.matched_by is None


def test_merge_then_unmerge_restores_exactly(session):
    r = make_small_region(session)
    a = make_patient(session, r, name="王建国", sex="M", born=date(1950, 1, 2), phone="13711112222",
                     id_number=resident_id(date(1950, 1, 2)))
    b = make_patient(session, r, name="王建国", sex="M", born=date(1950, 1, 2), phone="13733334444",
                     org=r.county_hospital, mrn="H-77", division_id=None)

    def snapshot():
        session.expire_all()
        rows = {pid: {k: v for k, v in vars(session.get(Patient, pid)).items()
                      if not k.startswith("_") and k not in ("version", "updated_at")}
                for pid in (a.patient.id, b.patient.id)}
        idents = sorted((i.patient_id, i.kind, i.assigner, i.value_bidx, i.value_enc)
                        for i in session.scalars(select(PatientIdentifier)))
        return rows, idents

    before = snapshot()
    merge_id = merging.merge_patients(session, SYS, survivor_id=a.patient.id, loser_id=b.patient.id,
                                      reason="same man, reviewed")
    assert service.resolve_patient_id(session, b.patient.id) == a.patient.id
    assert service.get_patient(session, SYS, b.patient.id).id == a.patient.id
    merged = snapshot()
    assert merged[0][b.patient.id]["replaced_by"] == a.patient.id and merged[1] == before[1]
    # a merged-away identifier finds the survivor
    found = service.search_patients(session, SYS, service.PatientQuery(identifier_kind="mrn", identifier="H-77"))
    assert [p.id for p in found.items] == [a.patient.id]

    merging.unmerge_patients(session, SYS, merge_id=merge_id, reason="two men after all")
    assert snapshot() == before
    assert service.resolve_patient_id(session, b.patient.id) == b.patient.id
    with pytest.raises(Conflict) as err:
        merging.unmerge_patients(session, SYS, merge_id=merge_id, reason="again")
    assert err.value.code == "PAT-035"
    actions = [e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.patient_id == b.patient.id))]
    assert "merge" in actions and "unmerge" in actions


def test_records_with_two_different_id_numbers_cannot_be_merged(session):
    r = make_small_region(session)
    a = make_patient(session, r, id_number=RID)
    b = make_patient(session, r, id_number=resident_id(BORN, seq=126), name="李秀兰")
    with pytest.raises(Conflict) as err:
        merging.merge_patients(session, SYS, survivor_id=a.patient.id, loser_id=b.patient.id, reason="looks same")
    assert err.value.code == "PAT-033"


def test_deciding_a_review_merges_into_the_older_record(session):
    r = make_small_region(session)
    first = make_patient(session, r, name="王建国", sex="M", born=date(1950, 1, 2), phone="13711112222")
    other = make_patient(session, r, name="王建国", sex="M", born=date(1950, 1, 2), phone="13733334444",
                         org=r.county_hospital, division_id=None)
    review_id = other.reviews[0]
    total, rows = merging.list_reviews(session, SYS)
    assert total == 1 and rows[0].id == review_id
    view = merging.get_review(session, SYS, review_id)
    assert view.left.id == other.patient.id and view.right.id == first.patient.id
    merge_id = merging.decide_review(session, SYS, review_id, decision="merge", note="same phone owner confirmed")
    assert merge_id is not None
    assert service.resolve_patient_id(session, other.patient.id) == first.patient.id
    with pytest.raises(Conflict):
        merging.decide_review(session, SYS, review_id, decision="distinct", note="changed my mind")


def test_a_clinician_reads_patients_of_their_facility_and_must_break_the_glass_for_others(session):
    r = make_small_region(session)
    mine = make_patient(session, r, org=r.county_hospital, mrn="H-1")
    theirs = make_patient(session, r, name="赵丽", born=date(1990, 11, 23), org=r.township_centre)
    doctor = _actor(session, Role.CLINICIAN, ScopeKind.ORGANIZATION, r.county_hospital.id, "doc")
    assert service.get_patient(session, doctor, mine.patient.id).name == "李秀英"
    with pytest.raises(Forbidden) as err:
        service.get_patient(session, doctor, theirs.patient.id)
    assert err.value.code == "SEC-104"
    glass = Actor(**{**asdict_actor(doctor), "break_glass": "unconscious patient in the ED"})
    assert service.get_patient(session, glass, theirs.patient.id).id == theirs.patient.id


def asdict_actor(actor: Actor) -> dict:
    return {f: getattr(actor, f) for f in actor.__dataclass_fields__}


def test_search_is_masked_without_pii_unmasked_and_audited(session):
    r = make_small_region(session)
    make_patient(session, r, id_number=RID, phone="13812345678", org=r.township_centre)
    nurse = _actor(session, Role.NURSE, ScopeKind.ORGANIZATION, r.township_centre.id, "nurse")
    page = service.search_patients(session, nurse, service.PatientQuery(name="李秀英", birth_date=BORN))
    assert page.total == 1
    hit = page.items[0]
    assert hit.name == "李**" and hit.resident_id == RID[:6] + "********" + RID[-4:] and hit.phone == "138****5678"
    by_pinyin = service.search_patients(session, nurse, service.PatientQuery(name="Li Xiuying"))
    assert [p.id for p in by_pinyin.items] == [hit.id]
    searches = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "search",
                                                                                   AuditEvent.username == "nurse"))
    assert searches == 2


def test_an_empty_search_is_refused(session):
    with pytest.raises(Invalid) as err:
        service.search_patients(session, SYS, service.PatientQuery())
    assert err.value.code == "PAT-013"


def test_update_replaces_demographics_and_checks_the_version(session):
    r = make_small_region(session)
    reg = make_patient(session, r, id_number=RID)
    data = service.PatientIn(name="李秀英", resident_id=RID, phone="13900001111", division_id=r.village.id)
    view = service.update_patient(session, SYS, reg.patient.id, data=data, expected_version=reg.patient.version)
    assert view.phone == "13900001111" and view.version == reg.patient.version + 1
    with pytest.raises(Exception) as err:
        service.update_patient(session, SYS, reg.patient.id, data=data, expected_version=reg.patient.version)
    assert getattr(err.value, "code", "") == "PAT-025"


def test_match_operation_scores_candidates(session):
    r = make_small_region(session)
    first = make_patient(session, r, name="张晓明", sex="M", born=date(1980, 3, 7), phone="13912345678")
    ranked = service.match_patients(session, SYS, service.PatientIn(name="张小明", sex="M", birth_date=date(1980, 3, 7),
                                                                    division_id=r.village.id))
    assert ranked and ranked[0][0].id == first.patient.id and ranked[0][2] in ("certain", "possible")


@pytest.mark.pg
def test_concurrent_registrations_of_one_id_number_make_one_record(fresh_databases):
    """Four desks register the same new resident at the same moment: one record. On a
    database of its own, since these sessions commit."""
    url = fresh_databases.create("mpi_race")
    upgrade(url)
    engine = make_engine(url)
    maker = make_sessionmaker(engine, info=dict(SESSION_INFO))
    with maker() as s:
        r = make_small_region(s, prefix="93")
    rid = resident_id(date(1971, 2, 3), seq=333, county="930102")
    barrier, results, errors = threading.Barrier(4), [], []

    def register(org_id: int) -> None:
        with maker() as s:
            barrier.wait()
            try:
                reg = service.register_patient(s, SYS, org_id=org_id, data=service.PatientIn(
                    name="陈静", resident_id=rid, division_id=r.village.id))
                results.append(reg.patient.id)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=register, args=(org.id,)) for org in
               (r.county_hospital, r.township_centre, r.village_clinic, r.county_hospital)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    with maker() as s:
        assert s.scalar(select(func.count()).select_from(Patient).where(Patient.name == "陈静")) == 1
    engine.dispose()


def test_the_timeline_shows_registrations_numbers_and_merges_across_the_family(session):
    r = make_small_region(session)
    a = make_patient(session, r, name="王建国", sex="M", born=date(1950, 1, 2), phone="13711112222")
    b = make_patient(session, r, name="王建国", sex="M", born=date(1950, 1, 2), phone="13733334444",
                     org=r.county_hospital, mrn="H-9", division_id=None)
    merging.merge_patients(session, SYS, survivor_id=a.patient.id, loser_id=b.patient.id, reason="same man")
    kinds = [e.kind for e in service.patient_timeline(session, SYS, b.patient.id)]
    assert kinds.count("registered") == 2 and "identifier" in kinds and "merged" in kinds


def test_batch_dedupe_scores_the_whole_index_and_queues_pairs_for_review(session):
    r = make_small_region(session)
    for i, (name, born) in enumerate([("赵丽", date(1990, 11, 23)), ("孙强", date(1971, 4, 2)),
                                      ("周敏", date(1985, 8, 9)), ("吴刚", date(1966, 12, 30))]):
        make_patient(session, r, name=name, born=born, phone=f"1391234{i:04d}")
    first = make_patient(session, r, name="王建国", sex="M", born=date(1950, 1, 2), phone="13711112222")
    twin = make_patient(session, r, name="王建国", sex="M", born=date(1950, 1, 2), phone="13733334444",
                        org=r.county_hospital, division_id=None)
    assert twin.outcome == "review"
    session.execute(MatchReview.__table__.delete())  # as if the pair had come in by a bulk import
    report = merging.dedupe_index(session, SYS)
    assert report.records == 6 and report.queued >= 1
    queued = session.scalars(select(MatchReview).where(MatchReview.source == "batch")).all()
    assert {(q.patient_id, q.candidate_id) for q in queued} >= {(twin.patient.id, first.patient.id)}
