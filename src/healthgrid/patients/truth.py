"""The synthetic truth set for measuring record linkage: residents from ``people.py`` plus
corrupted duplicates of some of them, each row knowing which person it belongs to. Owns the
corruption mix and the pairwise precision/recall measure; used by ``bench/linkage.py`` and
the tests of ``linkage.py``. Deterministic for a seed.

About ``duplicate_share`` of the rows are duplicates; one duplicated person in ten has two.
What is done to a duplicate (the ``corruptions`` column, ';'-joined, empty for originals):

- ``missing_id``, p = 0.4, independently: registered without the resident ID number.
- then one kind (p = 0.65) or two (p = 0.35), by weight, among those that apply:
  - ``homophone`` (0.22): a character of the given name replaced by another read the same
    way (晓/小/筱, 明/铭/鸣 …), so the toneless pinyin is unchanged;
  - ``typo`` (0.16): a given-name character replaced by a different name character with
    another reading, or, for a two-character given name, one of them dropped (``dropped_char``);
  - ``day_month_swapped`` (0.10): day and month exchanged, when that is another valid date;
  - ``date_digit`` (0.10): one digit of YYYYMMDD changed, giving another valid past date;
  - ``phone_changed`` / ``phone_removed`` (0.16, 60/40): a new mobile, or none;
  - ``moved_village`` (0.16): another village, in the same township four times in five
    (``moved_township`` otherwise);
  - ``sex_unknown`` (0.05): sex recorded as U.
  Two kinds never hit the same field (not both a homophone and a typo). The birth date and
  the sex are printed in the ID number, so a registration that carries it takes them from
  it: the date and sex kinds apply only to duplicates without the ID.

What comes out, as shares of the duplicates: missing_id 40%, homophone 34%, moved_village
25%, typo 20%, phone_changed 20%, phone_removed 11%, date_digit 6%, moved_township 6%,
dropped_char 6%, sex_unknown 3%, day_month_swapped 2%; six names in ten are altered (the
kinds that apply to a record with its ID are the name, phone and address ones).

Everyone has a resident ID in the originals (the index being de-duplicated holds people
registered with their ID at least once); phones are missing for ~8% (people.py).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import date
from itertools import combinations

import pandas as pd
from pypinyin import Style, lazy_pinyin

from .domain import name_key, name_pinyin, surname_of, swapped_day_month
from .people import Person, gc_paused, make_people, mobile_number

COLUMNS = ("record_id", "true_id", "name", "name_pinyin", "sex", "birth_date", "id_key", "phone_key",
           "village_id", "township_id", "corruptions")
DEFAULT_TODAY = date(2025, 6, 30)  # fixed, so a seed gives the same set on any day

# Characters of given names read alike; grouped below by their toneless pinyin so that only
# true homophones are ever swapped.
_HOMOPHONE_TABLE = (
    "晓小筱 明铭鸣 伟玮炜韦 丽莉俐立力利 静婧靖晶菁京 军君钧俊峻骏 华桦骅 林琳霖临 玲铃灵伶 敏民珉 杰洁捷 芳方舫 娟鹃"
    " 红虹宏鸿 燕艳彦妍 涛滔 勇永咏 刚钢岗 斌彬宾 辉晖慧 平萍苹 强蔷 磊蕾 超朝 鹏朋 飞菲非 宇雨羽语 浩昊皓 凯恺楷"
    " 帆凡 龙隆 文雯闻 鑫新欣馨心 波博 健建剑坚 旭序绪 宁凝 志智芝 东冬 成诚程承 晨辰臣 轩宣萱 睿瑞 泽则 娜纳 霞夏"
    " 婷亭庭 颖莹英影 雪学 倩茜 梅美玫 兰岚 月悦越 瑶遥 怡宜仪依一 佳嘉家 琪琦淇棋 婉宛 思丝斯 彤桐童 璐露路 诗师"
    " 子紫梓 可珂 阳洋杨 春椿 秋丘 光广"
)


def _homophones() -> dict[str, list[str]]:
    by_reading: dict[str, set[str]] = {}
    for char in _HOMOPHONE_TABLE.replace(" ", ""):
        by_reading.setdefault(lazy_pinyin(char, style=Style.NORMAL)[0], set()).add(char)
    return {c: sorted(group - {c}) for group in by_reading.values() if len(group) > 1 for c in group}


HOMOPHONES = _homophones()
_NAME_CHARS = sorted(set(_HOMOPHONE_TABLE.replace(" ", "")) | set("国海安帅德春秋立光建志永新军"))
_READING = {c: lazy_pinyin(c, style=Style.NORMAL)[0] for c in _NAME_CHARS}

_KINDS = ("homophone", "typo", "day_month_swapped", "date_digit", "phone", "moved", "sex_unknown")
_KIND_WEIGHTS = (0.22, 0.16, 0.10, 0.10, 0.16, 0.16, 0.05)
_SAME_FIELD = {"homophone": ("typo",), "typo": ("homophone",), "day_month_swapped": ("date_digit",),
               "date_digit": ("day_month_swapped",)}
_MISSING_ID = 0.4
_TWO_KINDS = 0.35
_TWO_DUPLICATES = 0.1  # share of duplicated people who have two duplicates


def regions(rng: random.Random, n_people: int) -> list[tuple[int, int, str]]:
    """(village_id, township_id, county_code) for ~400 residents a village, 15 villages a
    township and 15 townships a county; county codes are synthetic (6 digits, starting 9)."""
    n_villages = max(1, round(n_people / 400))
    n_townships = -(-n_villages // 15)
    counties = [f"9{c:05d}" for c in rng.sample(range(100000), -(-n_townships // 15))]
    return [(v + 1, v // 15 + 1, counties[v // 225]) for v in range(n_villages)]


def truth_set(n_records: int, *, seed: int, duplicate_share: float = 0.1, today: date | None = None) -> pd.DataFrame:
    """``n_records`` rows of residents and corrupted duplicates, with the truth (``true_id``)
    and what was done (``corruptions``); columns ``COLUMNS``, rows in random ``record_id`` order."""
    if n_records < 2 or not 0 <= duplicate_share < 0.5:
        raise ValueError("truth_set needs at least 2 records and 0 <= duplicate_share < 0.5")
    rng = random.Random(seed)
    today = today or DEFAULT_TODAY
    n_dup = round(n_records * duplicate_share)
    n_two = round(n_dup * _TWO_DUPLICATES / (1 + _TWO_DUPLICATES))  # people with two duplicates
    villages = regions(rng, n_records)
    people = make_people(rng, n_records - n_dup, villages, today)
    sources = rng.sample(range(len(people)), n_dup - n_two)
    sources += sources[:n_two]
    rows = {c: [] for c in COLUMNS if c != "record_id"}
    with gc_paused():
        for true_id, person in enumerate(people):
            _append(rows, true_id, _as_record(person), ())
        corruptor = _Corruptor(rng, villages, today)
        for true_id in sources:
            record, done = corruptor.duplicate(_as_record(people[true_id]))
            _append(rows, true_id, record, done)
        pinyin: dict[str, str] = {}
        rows["name_pinyin"] = [pinyin.get(n) or pinyin.setdefault(n, name_pinyin(n)) for n in rows["name"]]
    record_ids = list(range(n_records))
    rng.shuffle(record_ids)
    df = pd.DataFrame({"record_id": record_ids, **rows}, columns=list(COLUMNS))
    return df.sort_values("record_id", ignore_index=True)


def _as_record(p: Person) -> dict:
    return {"name": p.name, "sex": p.sex, "birth_date": p.birth_date, "id_key": p.resident_id,
            "phone_key": p.phone, "village_id": p.village_id, "township_id": p.township_id}


def _append(rows: dict[str, list], true_id: int, record: dict, done: Iterable[str]) -> None:
    rows["true_id"].append(true_id)
    for column, value in record.items():
        rows[column].append(value)
    rows["name_pinyin"].append(None)  # filled in bulk, one pypinyin call per distinct name
    rows["corruptions"].append(";".join(done))


class _Corruptor:
    """Makes one duplicate of a record at a time, drawing the corruptions of the docstring."""

    def __init__(self, rng: random.Random, villages: list[tuple[int, int, str]], today: date) -> None:
        self.rng, self.villages, self.today = rng, villages, today
        self.by_township: dict[int, list[int]] = {}
        for village_id, township_id, _ in villages:
            self.by_township.setdefault(township_id, []).append(village_id)

    def duplicate(self, record: dict) -> tuple[dict, list[str]]:
        rng, done = self.rng, []
        if rng.random() < _MISSING_ID:
            record["id_key"] = None
            done.append("missing_id")
        kinds, weights = list(_KINDS), list(_KIND_WEIGHTS)
        wanted = 2 if rng.random() < _TWO_KINDS else 1
        applied = 0
        while applied < wanted and kinds:
            i = rng.choices(range(len(kinds)), weights=weights)[0]
            kind = kinds.pop(i)
            weights.pop(i)
            label = getattr(self, kind)(record)
            if label:
                done.append(label)
                applied += 1
                # one error per field: a name is not both mistyped and misheard
                for other in _SAME_FIELD.get(kind, ()):
                    if other in kinds:
                        weights.pop(kinds.index(other))
                        kinds.remove(other)
        return record, done

    def homophone(self, record: dict) -> str | None:
        name = record["name"]
        start = len(surname_of(name))
        places = [i for i in range(start, len(name)) if name[i] in HOMOPHONES]
        self.rng.shuffle(places)
        for i in places:
            for alt in self.rng.sample(HOMOPHONES[name[i]], len(HOMOPHONES[name[i]])):
                new = name[:i] + alt + name[i + 1:]
                # pypinyin reads some characters by context: keep the change only if the key holds
                if name_key(name_pinyin(new)) == name_key(name_pinyin(name)):
                    record["name"] = new
                    return "homophone"
        return None

    def typo(self, record: dict) -> str | None:
        rng, name = self.rng, record["name"]
        start = len(surname_of(name))
        if len(name) - start < 1:
            return None
        if len(name) - start == 2 and rng.random() < 0.35:
            i = start + rng.randrange(2)
            record["name"] = name[:i] + name[i + 1:]
            return "dropped_char"
        i = start + rng.randrange(len(name) - start)
        reading = _READING.get(name[i]) or lazy_pinyin(name[i], style=Style.NORMAL)[0]
        while (alt := rng.choice(_NAME_CHARS)) == name[i] or _READING[alt] == reading:
            pass
        record["name"] = name[:i] + alt + name[i + 1:]
        return "typo"

    def day_month_swapped(self, record: dict) -> str | None:
        swapped = swapped_day_month(record["birth_date"]) if record["id_key"] is None else None
        if swapped is None or swapped > self.today:
            return None
        record["birth_date"] = swapped
        return "day_month_swapped"

    def date_digit(self, record: dict) -> str | None:
        born = record["birth_date"]
        if record["id_key"] is not None:
            return None
        digits = f"{born:%Y%m%d}"
        for _ in range(40):
            i = self.rng.randrange(8)
            text = digits[:i] + str(self.rng.randrange(10)) + digits[i + 1:]
            try:
                new = date(int(text[:4]), int(text[4:6]), int(text[6:]))
            except ValueError:
                continue
            if new != born and new <= self.today and new.year >= 1900 and new != swapped_day_month(born):
                record["birth_date"] = new
                return "date_digit"
        return None

    def phone(self, record: dict) -> str:
        if record["phone_key"] is not None and self.rng.random() < 0.4:
            record["phone_key"] = None
            return "phone_removed"
        record["phone_key"] = mobile_number(self.rng)
        return "phone_changed"

    def moved(self, record: dict) -> str | None:
        rng, here = self.rng, record["village_id"]
        neighbours = [v for v in self.by_township[record["township_id"]] if v != here]
        if neighbours and rng.random() < 0.8:
            record["village_id"] = rng.choice(neighbours)
            return "moved_village"
        elsewhere = [v for v in self.villages if v[1] != record["township_id"]]
        if not elsewhere:
            return None
        record["village_id"], record["township_id"], _ = rng.choice(elsewhere)
        return "moved_township"

    def sex_unknown(self, record: dict) -> str | None:
        if record["id_key"] is not None:
            return None
        record["sex"] = "U"
        return "sex_unknown"


def true_pairs(df: pd.DataFrame) -> set[tuple[int, int]]:
    """Every pair (smaller, larger record_id) of rows of the same person."""
    shared = df[df.duplicated("true_id", keep=False)]
    pairs: set[tuple[int, int]] = set()
    for ids in shared.groupby("true_id")["record_id"]:
        pairs.update((min(a, b), max(a, b)) for a, b in combinations(ids[1].tolist(), 2))
    return pairs


def evaluate(predicted_pairs: Iterable[tuple[int, int]], truth: set[tuple[int, int]]) -> dict:
    """Pairwise precision, recall and F1 of predicted pairs against the true pairs."""
    predicted = {(min(a, b), max(a, b)) for a, b in predicted_pairs}
    tp = len(predicted & truth)
    fp, fn = len(predicted) - tp, len(truth) - tp
    precision = tp / (tp + fp) if predicted else 1.0
    recall = tp / (tp + fn) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
