"""Synthetic residents: valid, unique resident IDs that agree with sex and birth date, and the
same people for the same seed."""

import random
from datetime import date

import pytest

from healthgrid.patients.people import MAX_AGE, Person, make_people, make_person
from healthgrid.security.domain import parse_resident_id

TODAY = date(2025, 6, 30)
VILLAGES = [(v, v // 15 + 1, "912345" if v < 30 else "987654") for v in range(1, 41)]


@pytest.fixture(scope="module")
def people() -> list[Person]:
    return make_people(random.Random(4), 20_000, VILLAGES, TODAY)


def test_resident_ids_are_valid_and_agree_with_sex_and_birth_date(people):
    for p in people:
        parsed = parse_resident_id(p.resident_id, today=TODAY)
        assert parsed.number == p.resident_id
        assert parsed.sex == p.sex  # 17th digit odd for men
        assert parsed.birth_date == p.birth_date
        assert p.resident_id[:6] == dict((v, c) for v, _, c in VILLAGES)[p.village_id]


def test_resident_ids_are_unique_even_when_many_share_a_birth_date():
    crowd = make_people(random.Random(1), 30_000, [(1, 1, "912345")], TODAY)  # one county, ~1 per day
    assert len({p.resident_id for p in crowd}) == len(crowd)


def test_fields_are_plausible(people):
    ages = [(TODAY - p.birth_date).days / 365.25 for p in people]
    assert min(ages) >= 0 and max(ages) <= MAX_AGE + 1
    working = sum(30 <= a < 65 for a in ages) / len(ages)
    assert 0.45 < working < 0.65 and sum(a >= 85 for a in ages) / len(ages) < 0.03
    no_phone = [p for p in people if p.phone is None]
    assert 0.05 < len(no_phone) / len(people) < 0.11
    assert sum((TODAY - p.birth_date).days < 7 * 365 or (TODAY - p.birth_date).days > 75 * 365
               for p in no_phone) > len(no_phone) / 2  # mostly small children and the elderly
    assert all(len(p.phone) == 11 and p.phone[0] == "1" and p.phone[1] in "3456789" for p in people if p.phone)
    cards = [p.health_card for p in people if p.health_card]
    assert 0.55 < len(cards) / len(people) < 0.65
    assert all(16 <= len(c) <= 20 and c == c.upper() and int(c, 16) >= 0 for c in cards)
    assert 0.8 < sum(p.insurance is not None for p in people) / len(people) < 0.9
    assert 0.45 < sum(p.sex == "M" for p in people) / len(people) < 0.56
    assert {p.township_id for p in people} == {t for _, t, _ in VILLAGES}


def test_same_seed_same_people_and_another_seed_others():
    assert make_people(random.Random(9), 500, VILLAGES, TODAY) == make_people(random.Random(9), 500, VILLAGES, TODAY)
    assert make_people(random.Random(9), 500, VILLAGES, TODAY) != make_people(random.Random(8), 500, VILLAGES, TODAY)
    one = make_person(random.Random(3), village_id=1, township_id=1, county_code="912345", today=TODAY)
    assert one == make_person(random.Random(3), village_id=1, township_id=1, county_code="912345", today=TODAY)
    assert parse_resident_id(one.resident_id, today=TODAY).sex == one.sex


def test_bad_county_code_is_refused():
    with pytest.raises(ValueError):
        make_people(random.Random(1), 10, [(1, 1, "91234")], TODAY)
