"""Pure rules of the multi-point feeds (多点触发监测, ../shared/specs/domain-rules.md §5.5):
the feed kinds, each feed's metric vocabulary with Chinese and English names, what a row
must hold, and the CSV format. No session, no I/O.

A row is one day's count of one metric from one source in one place:

- ``fever`` (发热门诊) and ``ed`` (急诊): syndrome visits, ``total`` = all visits of the clinic
  that day (required: the syndrome share is what CUSUM watches);
- ``pharmacy`` (药店): units sold by drug class, ``total`` = all units sold (optional);
- ``school`` (学校/托幼机构, 因病缺课): pupils absent by cause; the source names the school and the
  class (``<school>/<class>``), ``total`` = pupils enrolled in the class (optional);
- ``lab`` (实验室): positives per pathogen, ``total`` = tests for that pathogen (required:
  positivity).

Guidance: 《关于建立健全智慧化多点触发传染病监测预警体系的指导意见》国疾控监测发〔2024〕16号 (the
channels); school absence monitoring (因病缺课、晨午检) as in the school rules of the spec [EX].

Errors are collected per row, never raised one at a time, so a batch's report lists them
all (CONVENTIONS "Bulk ingestion"). Codes SURV-500…SURV-529.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..errors import Invalid

MAX_COUNT = 10_000_000
EARLIEST = date(2004, 1, 1)  # NIDRIS began in 2004; nothing older is accepted
CSV_COLUMNS = ("source", "division_code", "date", "metric", "count", "total")
CSV_REQUIRED = ("source", "division_code", "date", "metric", "count")
ROW_FIELDS = frozenset(CSV_COLUMNS)
DIVISION_RE = re.compile(r"^\d{6}(\d{6})?$")  # GB/T 2260 county (6) or statistical code (12 digits)
SOURCE_RE = re.compile(r"^[^\x00-\x1f,;]{1,60}$")

SYNDROMES = {
    "ILI": ("流感样病例", "Influenza-like illness"),
    "SARI": ("严重急性呼吸道感染", "Severe acute respiratory infection"),
    "diarrhoea": ("腹泻", "Diarrhoea"),
    "rash_fever": ("发热伴出疹", "Fever with rash"),
    "jaundice": ("黄疸", "Jaundice"),
    "conjunctivitis": ("结膜炎", "Conjunctivitis"),
    "meningoencephalitis": ("脑炎脑膜炎", "Meningitis / encephalitis"),
    "haemorrhagic_fever": ("发热伴出血", "Fever with bleeding"),
}


@dataclass(frozen=True)
class Feed:
    code: str
    zh: str
    en: str
    count_label: tuple[str, str]  # what ``count`` is
    total_label: tuple[str, str]  # what ``total`` is
    total_required: bool
    metrics: Mapping[str, tuple[str, str]]
    source_hint: tuple[str, str]

    def metric_name(self, metric: str, lang: str = "zh") -> str:
        names = self.metrics.get(metric)
        return metric if names is None else names[0 if lang == "zh" else 1]


FEEDS: dict[str, Feed] = {
    "fever": Feed("fever", "发热门诊", "Fever clinics", ("症候群就诊人次", "syndrome visits"),
                  ("总就诊人次", "all visits"), True, SYNDROMES, ("机构代码", "organisation code")),
    "ed": Feed("ed", "急诊", "Emergency departments", ("症候群就诊人次", "syndrome visits"),
               ("总就诊人次", "all visits"), True, SYNDROMES, ("机构代码", "organisation code")),
    "pharmacy": Feed("pharmacy", "药店", "Pharmacies", ("销售数量", "units sold"), ("全部销售数量", "all units sold"),
                     False, {
                         "antipyretic": ("解热镇痛药", "Antipyretics"),
                         "cough": ("止咳化痰药", "Cough medicines"),
                         "cold": ("感冒药", "Cold remedies"),
                         "antidiarrhoeal": ("止泻药", "Antidiarrhoeals"),
                         "oral_rehydration": ("口服补液盐", "Oral rehydration salts"),
                         "antiviral_flu": ("抗流感病毒药", "Influenza antivirals"),
                         "eye_drops": ("抗感染滴眼液", "Anti-infective eye drops"),
                     }, ("药店编码", "store code")),
    "school": Feed("school", "学校因病缺课", "School absences", ("因病缺课人数", "pupils absent"),
                   ("应到人数", "pupils enrolled"), False, {
                       "fever": ("发热", "Fever"),
                       "respiratory": ("呼吸道症状", "Respiratory symptoms"),
                       "diarrhoea": ("腹泻呕吐", "Diarrhoea or vomiting"),
                       "rash": ("皮疹", "Rash"),
                       "conjunctivitis": ("红眼", "Red eyes"),
                       "parotitis": ("腮腺肿大", "Swollen parotid glands"),
                       "other_illness": ("其他疾病", "Other illness"),
                   }, ("学校/班级", "school/class")),
    "lab": Feed("lab", "实验室病原学", "Laboratories", ("阳性数", "positives"), ("检测数", "tests"), True, {
        "influenza_a": ("甲型流感病毒", "Influenza A virus"),
        "influenza_b": ("乙型流感病毒", "Influenza B virus"),
        "sars_cov_2": ("新型冠状病毒", "SARS-CoV-2"),
        "rsv": ("呼吸道合胞病毒", "Respiratory syncytial virus"),
        "adenovirus": ("腺病毒", "Adenovirus"),
        "mycoplasma": ("肺炎支原体", "Mycoplasma pneumoniae"),
        "norovirus": ("诺如病毒", "Norovirus"),
        "rotavirus": ("轮状病毒", "Rotavirus"),
        "enterovirus": ("肠道病毒", "Enterovirus"),
        "dengue": ("登革病毒", "Dengue virus"),
    }, ("实验室代码", "laboratory code")),
}


def feed_of(code: str) -> Feed:
    feed = FEEDS.get(code)
    if feed is None:
        raise Invalid("SURV-500", f"feed: one of {sorted(FEEDS)}; got {code!r}", {"field": "feed"})
    return feed


def stream_of(feed: str, metric: str) -> str:
    """The signal stream of a feed metric (agreement: ``"<feed>:<metric>"``)."""
    return f"{feed}:{metric}"


@dataclass(frozen=True)
class FeedRow:
    row: int
    source: str
    division_code: str
    day: date
    metric: str
    count: int
    total: int | None

    @property
    def county_code(self) -> str:
        return self.division_code[:6]

    @property
    def key(self) -> tuple[str, date, str]:
        return self.source, self.day, self.metric


@dataclass(frozen=True)
class RowError:
    row: int
    code: str
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "code": self.code, "field": self.field, "message": self.message}


def _whole(value: Any) -> int | None:
    """A whole number from JSON (int, or a float without a fraction) or CSV text; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,12}\s*", value):
        return int(value)
    return None


def _day(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value).strip())


def _check_source(feed: Feed, source: str, err) -> None:
    if not SOURCE_RE.match(source):
        err("SURV-502", "source", "source: the reporting unit's code, 1 to 60 characters, no commas or control"
            f" characters ({feed.source_hint[1]})")
    elif feed.code == "school" and not re.fullmatch(r"[^/]+/[^/]+", source):
        err("SURV-502", "source", "source: a school's row names the school and the class, '<school>/<class>'"
            " (e.g. 'S440103001/3-2')")


def _check_numbers(feed: Feed, raw: Mapping[str, Any], err) -> tuple[int | None, int | None]:
    count = _whole(raw.get("count"))
    if count is None or not 0 <= count <= MAX_COUNT:
        err("SURV-508", "count", f"count: a whole number from 0 to {MAX_COUNT} ({feed.count_label[1]});"
            f" got {raw.get('count')!r}")
        count = None
    given = raw.get("total")
    blank = given is None or (isinstance(given, str) and not given.strip())
    total = None if blank else _whole(given)
    if blank and feed.total_required:
        err("SURV-509", "total", f"total: required for the {feed.code} feed ({feed.total_label[1]})")
    elif not blank and (total is None or not 0 <= total <= MAX_COUNT):
        err("SURV-509", "total", f"total: a whole number from 0 to {MAX_COUNT} ({feed.total_label[1]});"
            f" got {given!r}")
        total = None
    elif total is not None and count is not None and total < count:
        err("SURV-510", "total", f"total ({total}) is less than count ({count}): {feed.total_label[1]}"
            f" include the {feed.count_label[1]}")
    return count, total


def check_row(feed: Feed, raw: Any, *, row: int, today: date) -> tuple[FeedRow | None, list[RowError]]:
    """One row against the feed's rules; the row (or None) and every error found in it."""
    errors: list[RowError] = []

    def err(code: str, name: str, message: str) -> None:
        errors.append(RowError(row, code, name, message))

    if not isinstance(raw, Mapping):
        err("SURV-501", "row", "a row is an object with source, division_code, date, metric, count, total")
        return None, errors
    extra = sorted(set(raw) - ROW_FIELDS)
    if extra:
        err("SURV-501", extra[0], f"unknown field(s) {extra}; a row has {list(CSV_COLUMNS)}")
    source, division, metric = _text(raw, "source"), _text(raw, "division_code"), _text(raw, "metric")
    _check_source(feed, source, err)
    if not DIVISION_RE.match(division):
        err("SURV-503", "division_code", "division_code: a division code of 6 or 12 digits (county or below)"
            f"; got {division!r}")
    day = _day(raw.get("date"))
    if day is None or day < EARLIEST:
        err("SURV-505", "date", f"date: YYYY-MM-DD, from {EARLIEST.isoformat()}; got {raw.get('date')!r}")
    elif day > today:
        err("SURV-506", "date", f"date {day.isoformat()} is in the future (today is {today.isoformat()})")
    if metric not in feed.metrics:
        err("SURV-507", "metric", f"metric {metric!r} is not one of the {feed.code} feed's: {sorted(feed.metrics)}")
    count, total = _check_numbers(feed, raw, err)
    if errors:
        return None, errors
    return FeedRow(row, source, division, day, metric, count, total), []


def check_rows(feed: Feed, rows: Iterable[Any], *, today: date) -> tuple[list[FeedRow], list[RowError]]:
    """Every row checked, numbered from 1; a second row with the same source, date and metric
    is an error (SURV-511) naming the first."""
    good: list[FeedRow] = []
    errors: list[RowError] = []
    seen: dict[tuple[str, date, str], int] = {}
    for i, raw in enumerate(rows, start=1):
        found, problems = check_row(feed, raw, row=i, today=today)
        errors += problems
        if found is None:
            continue
        first = seen.setdefault(found.key, i)
        if first != i:
            errors.append(RowError(i, "SURV-511", "source", f"duplicate of row {first}: the same source, date and"
                                   f" metric ({found.source}, {found.day.isoformat()}, {found.metric})"))
            continue
        good.append(found)
    return good, errors


def placed_rows(rows: Iterable[Any]) -> list[tuple[int, str]]:
    """(row number, division code) of every row whose code is well formed — the places the
    service looks up, whether or not the row has other errors (so a report lists them all)."""
    out = []
    for i, raw in enumerate(rows, start=1):
        code = _text(raw, "division_code") if isinstance(raw, Mapping) else ""
        if DIVISION_RE.match(code):
            out.append((i, code))
    return out


def errors_by_code(errors: Iterable[RowError]) -> dict[str, int]:
    return dict(sorted(Counter(e.code for e in errors).items()))


# -- CSV ----------------------------------------------------------------------------------------

def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 (what spreadsheets in China save); SURV-521."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise Invalid("SURV-521", "the file is neither UTF-8 nor GB18030 text; save it as CSV UTF-8", {"field": "file"})


def parse_feed_csv(text: str | bytes) -> list[dict[str, str]]:
    """Rows of a feed CSV as dicts of text (checked later by :func:`check_rows`, which numbers
    them from 1 = the line after the header).

    Header (first line; order free, names exact, lower case): ``source,division_code,date,
    metric,count,total`` — ``total`` may be left out (or empty) where the feed does not
    require it. Errors: SURV-521 encoding, SURV-522 header, SURV-523 malformed CSV.
    """
    if isinstance(text, bytes):
        text = decode_csv(text)
    text = text.lstrip("\ufeff")
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [h.strip() for h in next(reader, [])]
        _check_header(header)
        rows = []
        for line, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(header):
                raise Invalid("SURV-523", f"line {line}: {len(values)} values for {len(header)} columns",
                              {"field": "file", "line": line})
            rows.append(dict(zip(header, values, strict=False)))
        return rows
    except csv.Error as exc:
        raise Invalid("SURV-523", f"not a readable CSV file: {exc}", {"field": "file"}) from exc


def _check_header(header: list[str]) -> None:
    expected = ",".join(CSV_COLUMNS)
    if not header or header == [""]:
        raise Invalid("SURV-522", f"the file is empty; the first line is the header {expected}", {"field": "file"})
    unknown = [h for h in header if h not in CSV_COLUMNS]
    missing = [h for h in CSV_REQUIRED if h not in header]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if unknown or missing or repeated:
        parts = [f"unknown column(s) {unknown}" if unknown else "", f"missing {missing}" if missing else "",
                 f"repeated {repeated}" if repeated else ""]
        raise Invalid("SURV-522", f"header: {'; '.join(p for p in parts if p)}; expected {expected}",
                      {"field": "file", "header": header})
