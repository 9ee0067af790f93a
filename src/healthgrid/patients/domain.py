"""Pure rules of the master patient index: what a valid registration is, how names are
keyed for matching, and how two records are compared (Fellegi–Sunter). No I/O, no session.

Sources: ../shared/specs/domain-rules.md §10.1 (GB 11643-1999 ID numbers), §10.2 (EMPI
matching: deterministic on the ID, then the e-health card, then probabilistic on name, sex,
birth date, phone and address with manual review for merges), §10.3 (WS 363-2011 data
elements: DE02.01.039.00 name, DE02.01.030.00 ID number, DE02.01.040.00 sex code after
GB/T 2261.1, DE02.01.005.01 birth date, DE02.01.010.00 own phone).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from pypinyin import Style, lazy_pinyin
from rapidfuzz.distance import JaroWinkler, Levenshtein

from ..errors import Invalid
from ..security.domain import parse_resident_id


class IdentifierKind(StrEnum):
    RESIDENT_ID = "resident_id"  # 公民身份号码, GB 11643-1999
    HEALTH_CARD = "health_card"  # 电子健康卡 ID (国卫办规划发〔2018〕34号: one person, one card)
    INSURANCE = "insurance"  # 医保个人编号 / 医保电子凭证
    MRN = "mrn"  # a facility's own medical record number (病案号, DE01.00.004.00)


IDENTIFIER_LABELS = {
    IdentifierKind.RESIDENT_ID: ("身份证号", "Resident ID"),
    IdentifierKind.HEALTH_CARD: ("电子健康卡", "E-health card"),
    IdentifierKind.INSURANCE: ("医保号", "Insurance number"),
    IdentifierKind.MRN: ("病案号", "Medical record number"),
}
# The PII purpose each kind is encrypted and blind-indexed under (security.pii).
IDENTIFIER_PURPOSE = {kind: f"patient.{kind.value}" for kind in IdentifierKind}

# GB/T 2261.1-2003 sex codes: 1 男, 2 女, 0 未知的性别, 9 未说明的性别 -> M, F, U.
SEX_LABELS = {"M": ("男", "Male"), "F": ("女", "Female"), "U": ("未知", "Unknown")}
GB_SEX_CODES = {"1": "M", "2": "F", "0": "U", "9": "U"}

KIN_RELATIONSHIPS = {  # after GB/T 4761-2008 家庭关系代码, grouped
    "spouse": ("配偶", "Spouse"), "parent": ("父母", "Parent"), "child": ("子女", "Child"),
    "sibling": ("兄弟姐妹", "Sibling"), "grandparent": ("祖父母/外祖父母", "Grandparent"),
    "grandchild": ("孙子女/外孙子女", "Grandchild"), "other": ("其他", "Other"),
}

# pypinyin reads some surnames by their common reading (单 dan, 曾 ceng); as surnames they
# are read otherwise (REAL-COMPONENTS.md, "Chinese text"). Longest match first.
SURNAME_READINGS = {
    "尉迟": "yu chi", "万俟": "mo qi", "长孙": "zhang sun", "澹台": "tan tai", "单于": "chan yu",
    "单": "shan", "曾": "zeng", "解": "xie", "区": "ou", "仇": "qiu", "查": "zha", "朴": "piao",
    "盖": "ge", "覃": "qin", "翟": "zhai", "乐": "yue", "缪": "miao", "牟": "mou", "秘": "bi",
    "种": "chong", "员": "yun", "召": "shao", "尉": "yu", "朝": "chao", "薄": "bo", "柏": "bai",
    "卜": "bu", "折": "she", "句": "gou", "重": "chong", "褚": "chu", "纪": "ji", "任": "ren",
    "沈": "shen", "石": "shi", "华": "hua", "宁": "ning", "黑": "he", "繁": "po", "冼": "xian",
    "蕃": "pi", "洗": "xian", "隗": "wei", "佴": "nai", "訾": "zi", "阚": "kan", "晟": "cheng",
}
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
                     "宇文", "司徒", "夏侯", "轩辕", "令狐", "端木", "独孤", "南宫", "西门", "申屠",
                     "百里", "呼延", "澹台", "太史", "闻人", "万俟", "赫连", "拓跋", "钟离", "宗政")

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
# Chinese names, with the middle dot of transliterated minority names (阿卜杜拉·买买提).
_CHINESE_NAME = re.compile(rf"^[{_CJK}]+(?:[·•][{_CJK}]+)*$")
_LATIN_NAME = re.compile(r"^[A-Za-z][A-Za-z' \-.]*[A-Za-z.]$")
_PINYIN = re.compile(r"^[a-zü' ]+$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}\d{7,8}$")
_CARD = re.compile(r"^[0-9A-Za-z]{8,64}$")
_INSURANCE = re.compile(r"^[0-9A-Za-z]{6,32}$")
_MRN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z\-_/.]{0,39}$")


def bad(code: str, field_name: str, message: str) -> Invalid:
    return Invalid(code, f"{field_name}: {message}", {"field": field_name})


# -- names ----------------------------------------------------------------------------------

def normalise_name(raw: str | None, field_name: str = "name") -> str:
    """A name as registered: Chinese characters (2–20, the middle dot allowed between parts)
    or, for foreign residents, Latin letters. Full-width spaces and stray spaces go."""
    name = unicodedata.normalize("NFKC", raw or "").strip()
    if _CHINESE_NAME.match(name.replace(" ", "")) and " " not in name.strip():
        name = name.replace("•", "·")
        if not 1 <= len(name) <= 20:
            raise bad("PAT-001", field_name, "a Chinese name has 1 to 20 characters")
        return name
    if _LATIN_NAME.match(name) and len(name) <= 60:
        return " ".join(name.split())
    if not name:
        raise bad("PAT-001", field_name, "a name is required")
    raise bad("PAT-001", field_name, "write the name in Chinese characters (a middle dot · between the parts of"
                                     " a transliterated name), or in Latin letters for a foreign resident")


def normalise_pinyin(raw: str | None, field_name: str = "name_pinyin") -> str | None:
    """Tone marks and tone digits stripped, lower case, syllables separated by single spaces:
    'Zhāng Xiǎomíng', 'zhang3 xiao3 ming2' and 'ZHANG XIAOMING' all become comparable."""
    if raw is None or not raw.strip():
        return None
    text = unicodedata.normalize("NFD", raw.strip().lower().replace("ü", "v").replace("u:", "v"))
    text = "".join(c for c in text if not unicodedata.combining(c) and not c.isdigit())
    text = " ".join(text.replace("-", " ").replace("'", " ").split())
    if not _PINYIN.match(text.replace("v", "u")):
        raise bad("PAT-002", field_name, "pinyin is written in Latin letters, with optional tone marks or digits")
    return text


def name_pinyin(name: str) -> str:
    """The toneless pinyin of a name, syllables separated by spaces, surnames read as
    surnames (曾 zeng, not ceng). A Latin name is its own 'pinyin', lower-cased."""
    if name.isascii():
        return " ".join(name.lower().replace("-", " ").replace("'", " ").replace(".", " ").split())
    head = ""
    for surname in sorted(SURNAME_READINGS, key=len, reverse=True):
        if name.startswith(surname):
            head, name = SURNAME_READINGS[surname], name[len(surname):]
            break
    body = [s for s in lazy_pinyin(name.replace("·", " "), style=Style.NORMAL, v_to_u=False)
            if s.strip() and s.isascii() and s.isalpha()]
    return " ".join(([head] if head else []) + body)


def name_key(pinyin: str) -> str:
    """The blocking key of a name: its pinyin without spaces (晓明 = 小明 = xiaoming)."""
    return pinyin.replace(" ", "")


def surname_of(name: str) -> str:
    for compound in COMPOUND_SURNAMES:
        if name.startswith(compound):
            return compound
    return name[:1]


# -- other fields ---------------------------------------------------------------------------

def normalise_sex(raw: str | None, field_name: str = "sex") -> str:
    value = (raw or "").strip()
    value = GB_SEX_CODES.get(value, value).upper()
    aliases = {"MALE": "M", "FEMALE": "F", "UNKNOWN": "U", "男": "M", "女": "F", "未知": "U"}
    value = aliases.get(value, value)
    if value not in SEX_LABELS:
        raise bad("PAT-003", field_name, "sex is M, F or U (or a GB/T 2261.1 code 1, 2, 0, 9)")
    return value


def check_birth_date(born: date | None, today: date, field_name: str = "birth_date") -> None:
    if born is None:
        return
    if born > today:
        raise bad("PAT-004", field_name, f"{born.isoformat()} is in the future")
    if born.year < 1890:
        raise bad("PAT-004", field_name, f"{born.isoformat()} is impossible (before 1890)")


def normalise_phone(raw: str | None, field_name: str = "phone") -> str | None:
    """A mainland mobile (11 digits, 1[3-9]…) or a landline with its area code (0…); '+86',
    spaces and dashes are dropped."""
    if raw is None or not raw.strip():
        return None
    digits = re.sub(r"[\s\-()]", "", raw.strip())
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix):]
    if not (_MOBILE.match(digits) or _LANDLINE.match(digits)):
        raise bad("PAT-005", field_name, "a phone number is an 11-digit mobile starting 13–19, or a landline"
                                         " with its area code starting 0")
    return digits


def normalise_identifier(kind: IdentifierKind, raw: str, *, today: date, field_name: str) -> str:
    value = (raw or "").strip()
    if kind is IdentifierKind.RESIDENT_ID:
        return parse_resident_id(value, today=today, field_name=field_name).number
    pattern = {IdentifierKind.HEALTH_CARD: (_CARD, "8 to 64 letters or digits"),
               IdentifierKind.INSURANCE: (_INSURANCE, "6 to 32 letters or digits"),
               IdentifierKind.MRN: (_MRN, "1 to 40 letters, digits, - _ / or .")}[kind]
    if not pattern[0].match(value):
        raise bad("PAT-006", field_name, f"a {kind.value} is {pattern[1]}")
    return value.upper()


@dataclass(frozen=True)
class Demographics:
    """A registration after validation: what is stored and compared."""

    name: str
    pinyin: str
    sex: str
    birth_date: date | None
    resident_id: str | None = None
    phone: str | None = None
    division_id: int | None = None  # village / community (村/社区), or a coarser division
    address_line: str | None = None


def reconcile_with_id(resident_id: str | None, sex: str | None, born: date | None) -> tuple[str, date | None]:
    """The ID number carries the birth date (digits 7–14) and the sex (digit 17, odd = male);
    a registration that states them must agree, and one that omits them takes them from it."""
    if resident_id is None:
        return (sex or "U"), born
    parsed = parse_resident_id(resident_id)
    if born is not None and born != parsed.birth_date:
        raise bad("PAT-007", "birth_date", f"{born.isoformat()} differs from the birth date in the ID number"
                                           f" ({parsed.birth_date.isoformat()})")
    if sex not in (None, "U") and sex != parsed.sex:
        raise bad("PAT-008", "sex", f"{sex} differs from the sex in the ID number ({parsed.sex}:"
                                    " the 17th digit is odd for men, even for women)")
    return parsed.sex, parsed.birth_date


# -- Fellegi–Sunter comparison (record linkage, Fellegi & Sunter 1969) -----------------------

@dataclass(frozen=True)
class MatchRecord:
    """What the matcher compares. Identifiers and phones arrive as blind indexes: equality
    is all the matcher needs, so it never sees them in clear."""

    name: str
    pinyin: str
    sex: str
    birth_date: date | None
    id_key: str | None = None
    phone_key: str | None = None
    village_id: int | None = None
    township_id: int | None = None


# level -> (m, u): m = P(level | same person), u = P(level | different people). The defaults
# were estimated by Splink's EM on the synthetic truth set (bench/linkage.py) and rounded;
# `healthgrid patients dedupe` reports the estimates on the real index.
DEFAULT_LEVELS: dict[str, dict[str, tuple[float, float]]] = {
    "resident_id": {"same": (0.999, 1e-7), "different": (0.001, 0.9999999)},
    "name": {"exact": (0.80, 2e-4), "same_pinyin": (0.10, 4e-4), "similar": (0.07, 6e-3),
             "different": (0.03, 0.9934)},
    "birth_date": {"exact": (0.92, 4e-5), "day_month_swapped": (0.04, 4e-5), "close": (0.025, 2e-3),
                   "different": (0.015, 0.99792)},
    "sex": {"same": (0.995, 0.5), "different": (0.005, 0.5)},
    "phone": {"same": (0.75, 2e-5), "different": (0.25, 0.99998)},
    "address": {"same_village": (0.75, 3e-3), "same_township": (0.12, 0.03), "different": (0.13, 0.967)},
}


@dataclass(frozen=True)
class Thresholds:
    """Match probabilities: at or above ``link`` the records are linked automatically; at or
    above ``review`` a person decides; below, a new record is created."""

    link: float = 0.99
    review: float = 0.5
    # P(two records picked at random are the same person), before evidence: about 1 / the
    # number of residents (Splink's "probability two random records match"), here a region
    # of a million.
    prior: float = 1e-6

    def __post_init__(self) -> None:
        if not (0 < self.review <= self.link < 1 and 0 < self.prior < 1):
            raise Invalid("PAT-040", "thresholds: expected 0 < review <= link < 1 and 0 < prior < 1",
                          {"field": "thresholds"})


@dataclass(frozen=True)
class Comparison:
    levels: dict[str, str]  # field -> level name ("null" when either side is missing)
    weights: dict[str, float]  # field -> log2(m/u)
    weight: float
    probability: float
    decision: str = ""  # link | review | new


@dataclass
class MatchModel:
    levels: dict[str, dict[str, tuple[float, float]]] = field(default_factory=lambda: dict(DEFAULT_LEVELS))
    thresholds: Thresholds = field(default_factory=Thresholds)

    def compare(self, a: MatchRecord, b: MatchRecord) -> Comparison:
        levels = compare_levels(a, b)
        weights = {f: (0.0 if lv == "null" else math.log2(self.levels[f][lv][0] / self.levels[f][lv][1]))
                   for f, lv in levels.items()}
        total = sum(weights.values())
        prior = self.thresholds.prior
        prior_weight = math.log2(prior / (1 - prior))
        probability = 1.0 / (1.0 + 2.0 ** -(total + prior_weight))
        if levels["resident_id"] == "different":
            decision = "new"  # two valid, different ID numbers are two people, whatever else agrees
        elif probability >= self.thresholds.link:
            decision = "link"
        elif probability >= self.thresholds.review:
            decision = "review"
        else:
            decision = "new"
        return Comparison(levels, {f: round(w, 2) for f, w in weights.items()}, round(total, 3),
                          probability, decision)


def compare_levels(a: MatchRecord, b: MatchRecord) -> dict[str, str]:
    return {
        "resident_id": _equal(a.id_key, b.id_key),
        "name": name_level(a.name, a.pinyin, b.name, b.pinyin),
        "birth_date": birth_date_level(a.birth_date, b.birth_date),
        "sex": "null" if "U" in (a.sex, b.sex) else ("same" if a.sex == b.sex else "different"),
        "phone": _equal(a.phone_key, b.phone_key),
        "address": address_level(a, b),
    }


def _equal(x: str | None, y: str | None) -> str:
    if not x or not y:
        return "null"
    return "same" if x == y else "different"


def name_level(name_a: str, pinyin_a: str, name_b: str, pinyin_b: str) -> str:
    if name_a == name_b:
        return "exact"
    key_a, key_b = name_key(pinyin_a), name_key(pinyin_b)
    if key_a and key_a == key_b:
        return "same_pinyin"  # homophones: 张晓明 / 张小明, or a name entered in pinyin
    one_char = (len(name_a) == len(name_b) and not name_a.isascii() and not name_b.isascii()
                and Levenshtein.distance(name_a, name_b) <= 1)
    if one_char or JaroWinkler.similarity(key_a, key_b) >= 0.9:
        return "similar"
    return "different"


def birth_date_level(a: date | None, b: date | None) -> str:
    if a is None or b is None:
        return "null"
    if a == b:
        return "exact"
    if a.year == b.year and a.month == b.day and a.day == b.month:
        return "day_month_swapped"
    digits_a, digits_b = a.strftime("%Y%m%d"), b.strftime("%Y%m%d")
    if sum(x != y for x, y in zip(digits_a, digits_b, strict=True)) == 1 or abs((a - b).days) <= 1:
        return "close"
    return "different"


def address_level(a: MatchRecord, b: MatchRecord) -> str:
    if a.village_id is not None and a.village_id == b.village_id:
        return "same_village"
    if a.township_id is None or b.township_id is None:
        return "null"
    return "same_township" if a.township_id == b.township_id else "different"


def swapped_day_month(born: date) -> date | None:
    """The birth date with day and month exchanged, when that is a date (03-07 -> 07-03)."""
    if born.day > 12 or born.day == born.month:
        return None
    try:
        return born.replace(month=born.day, day=born.month)
    except ValueError:
        return None
