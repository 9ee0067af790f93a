"""Plausible residents of a Chinese region, deterministic for a ``random.Random``: name, sex,
birth date, resident ID number, mobile phone, e-health card, insurance number and where they
live. Pure: no I/O, no database. This module owns the shape of a synthetic person; the
corrupted duplicates built from them for measuring linkage live in ``truth.py``.

- Ages follow the shape of China's 2020 census pyramid (5-year bands, 0–95): a bulge at 30–59,
  narrow childhood bands, few very old.
- Resident IDs are GB 11643-1999 numbers: a 6-digit county code (synthetic codes start with 9,
  which ``security.domain.parse_resident_id`` accepts), the birth date, a 3-digit sequence
  whose parity is the sex (odd = male), and the check digit. ``make_people`` hands out the
  sequences per (county, birth date) so IDs are unique within a population.
- About 8% have no mobile phone, mostly small children and the elderly; about 60% have an
  e-health card and about 85% a medical insurance number.
"""

from __future__ import annotations

import contextlib
import gc
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from itertools import accumulate

from ..security.domain import ID_CHECK, ID_WEIGHTS, id_check_digit
from ..synth.names import person_name

# Share of the population per 5-year band, 0–4 … 90–95 (2020 census, rounded; the shape is
# what matters: it sets how many people share a birth date, hence blocking sizes).
_BAND_SHARES = (5.5, 6.4, 6.0, 5.2, 5.4, 6.4, 8.8, 7.0, 6.7, 8.0, 8.7, 7.2, 5.2, 5.0, 3.4, 2.2, 1.4, 0.8, 0.3)
MAX_AGE = 95
_AGE_CUM = list(accumulate(_BAND_SHARES[min(age // 5, len(_BAND_SHARES) - 1)] / (6 if age >= 90 else 5)
                           for age in range(MAX_AGE + 1)))

# Mainland mobile prefixes in use (China Mobile, China Unicom, China Telecom).
_MOBILE_PREFIXES = tuple(str(p) for p in (
    134, 135, 136, 137, 138, 139, 147, 150, 151, 152, 157, 158, 159, 172, 178, 182, 183, 184, 187, 188, 198,
    130, 131, 132, 145, 155, 156, 166, 175, 176, 185, 186, 133, 149, 153, 173, 177, 180, 181, 189, 191, 199))

_HEALTH_CARD_SHARE = 0.60
_INSURANCE_SHARE = 0.85
_MALE_SHARE = 0.512  # sex ratio at about 105 men per 100 women


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    sex: str  # "M" | "F"
    birth_date: date
    resident_id: str
    phone: str | None
    health_card: str | None
    insurance: str | None
    village_id: int
    township_id: int


def _no_phone_share(age: int) -> float:
    # Small children and the very old are the ones registered without a mobile of their own.
    if age < 7 or age >= 75:
        return 0.30
    return 0.10 if age >= 65 else 0.04


def _birth_ordinal(rng: random.Random, today_ordinal: int, age: int) -> int:
    # A uniform day within the year of age, never after today.
    return today_ordinal - int((age + rng.random()) * 365.2425)


# The draws below scale rng.random() rather than call randrange: a third of the cost at a
# million people, and 53 random bits are plenty for 8 digits.
def mobile_number(rng: random.Random) -> str:
    """A mainland mobile number, 1[3-9] and nine more digits, on a prefix in use."""
    return _MOBILE_PREFIXES[int(rng.random() * len(_MOBILE_PREFIXES))] + f"{int(rng.random() * 1e8):08d}"


def _phone(rng: random.Random, age: int) -> str | None:
    return None if rng.random() < _no_phone_share(age) else mobile_number(rng)


def _extras(rng: random.Random) -> tuple[str | None, str | None]:
    card = (f"{rng.getrandbits(80):020X}"[: 16 + int(rng.random() * 5)]
            if rng.random() < _HEALTH_CARD_SHARE else None)
    insurance = f"{1_000_000_000 + int(rng.random() * 9e9)}" if rng.random() < _INSURANCE_SHARE else None
    return card, insurance


def make_person(rng: random.Random, *, village_id: int, township_id: int, county_code: str, today: date) -> Person:
    """One resident. The ID's sequence is drawn at random, so uniqueness across many calls is
    not guaranteed; use ``make_people`` for a population."""
    _check_county(county_code)
    sex = "M" if rng.random() < _MALE_SHARE else "F"
    age = rng.choices(range(MAX_AGE + 1), cum_weights=_AGE_CUM)[0]
    born = date.fromordinal(_birth_ordinal(rng, today.toordinal(), age))
    seq = 2 * rng.randrange(500) + 1 if sex == "M" else 2 * rng.randrange(1, 500)
    first17 = f"{county_code}{born:%Y%m%d}{seq:03d}"
    card, insurance = _extras(rng)
    return Person(person_name(rng, sex), sex, born, first17 + id_check_digit(first17), _phone(rng, age),
                  card, insurance, village_id, township_id)


def _check_county(code: str) -> None:
    if len(code) != 6 or not code.isdigit():
        raise ValueError(f"a county code has 6 digits (got {code!r})")


class _IdAllocator:
    """Hands out resident IDs unique per (county, birth date): each key takes the next entry
    of a fixed shuffled list of odd (male) or even (female) sequences. The check digit is
    ``id_check_digit`` computed per part (same weights): county and date sums are cached, so
    a million IDs cost a few dictionary look-ups each."""

    def __init__(self, rng: random.Random) -> None:
        self._male = [2 * k + 1 for k in range(500)]
        self._female = [2 * k for k in range(1, 500)]
        rng.shuffle(self._male)
        rng.shuffle(self._female)
        self._seq_sum = [sum(int(c) * w for c, w in zip(f"{s:03d}", ID_WEIGHTS[14:], strict=True))
                         for s in range(1000)]
        self._used: dict[tuple[str, int], int] = {}  # (county, ordinal) -> males + 1000 * females
        self._county_sum: dict[str, int] = {}
        self._dates: dict[int, tuple[date, str, int]] = {}

    def birth_date(self, ordinal: int) -> tuple[date, str, int]:
        """The date of an ordinal, its YYYYMMDD and its part of the check sum; one shared
        ``date`` object per day also keeps a million people small."""
        part = self._dates.get(ordinal)
        if part is None:
            born = date.fromordinal(ordinal)
            text = f"{born:%Y%m%d}"
            part = (born, text, sum(int(c) * w for c, w in zip(text, ID_WEIGHTS[6:14], strict=True)))
            self._dates[ordinal] = part
        return part

    def next_id(self, county: str, ordinal: int, sex: str) -> tuple[date, str]:
        """The birth date and a resident ID not yet handed out."""
        key = (county, ordinal)
        born, text, date_sum = self.birth_date(ordinal)
        used = self._used.get(key, 0)
        males, females = used % 1000, used // 1000
        if sex == "M":
            if males >= len(self._male):
                raise RuntimeError(f"more than {len(self._male)} men born {born} in county {county}")
            seq, self._used[key] = self._male[males], used + 1
        else:
            if females >= len(self._female):
                raise RuntimeError(f"more than {len(self._female)} women born {born} in county {county}")
            seq, self._used[key] = self._female[females], used + 1000
        county_sum = self._county_sum.get(county)
        if county_sum is None:
            county_sum = self._county_sum[county] = sum(int(c) * w for c, w in zip(county, ID_WEIGHTS, strict=False))
        return born, f"{county}{text}{seq:03d}{ID_CHECK[(county_sum + date_sum + self._seq_sum[seq]) % 11]}"


def make_people(rng: random.Random, n: int, villages: list[tuple[int, int, str]], today: date) -> list[Person]:
    """``n`` residents spread over ``villages`` — (village_id, township_id, county_code) — with
    unequal village sizes. Resident IDs, card and insurance numbers are unique within the
    result (the index keeps each identifier once)."""
    if not villages:
        raise ValueError("make_people needs at least one village")
    for county in {v[2] for v in villages}:
        _check_county(county)
    ids = _IdAllocator(rng)
    sizes = list(accumulate(rng.uniform(0.4, 1.6) for _ in villages))
    homes = rng.choices(villages, cum_weights=sizes, k=n)
    ages = rng.choices(range(MAX_AGE + 1), cum_weights=_AGE_CUM, k=n)
    today_ordinal = today.toordinal()
    people = []
    taken: set[str] = set()
    with gc_paused():
        for (village_id, township_id, county), age in zip(homes, ages, strict=True):
            sex = "M" if rng.random() < _MALE_SHARE else "F"
            born, resident_id = ids.next_id(county, _birth_ordinal(rng, today_ordinal, age), sex)
            card, insurance = _extras(rng)
            while (card is not None and card in taken) or (insurance is not None and insurance in taken):
                card, insurance = _extras(rng)  # a rare birthday collision among random numbers
            taken.update(x for x in (card, insurance) if x)
            people.append(Person(person_name(rng, sex), sex, born, resident_id, _phone(rng, age), card, insurance,
                                 village_id, township_id))
    return people


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Building a million small objects that all survive sets off full garbage collections
    that find nothing (a fifth of the time); pause the collector while doing so."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
