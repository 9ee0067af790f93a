"""Shared vocabulary of result recognition: levels, statuses, marks, local days, EQA facts and
the doctor's repeat exceptions. Pure: no database, no clock, no I/O.

Rules: ../shared/specs/domain-rules.md §4 (国卫医发〔2022〕6号 《医疗机构检查检验结果互认管理办法》,
in force 2022-03-01 [V]); levels L0–L5 from §0.2.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from ..errors import Invalid

LEVELS = ("L0", "L1", "L2", "L3", "L4", "L5")  # village … national (§0.2)
CATEGORIES = ("laboratory", "imaging", "electrophysiology", "pathology")

# China has one time zone and no daylight saving: a fixed offset needs no tz database.
CN_TZ = timezone(timedelta(hours=8), "CST")

# FHIR ObservationStatus values; HL7 v2 OBX-11 codes map onto them (hl7v2_map.OBX_STATUS).
STATUSES = ("registered", "preliminary", "final", "amended", "corrected", "cancelled",
            "entered-in-error", "unknown")
# Only a released result can be recognised: final, or final and then corrected/amended.
FINAL_STATUSES = frozenset({"final", "amended", "corrected"})

# §4.2 [V]: the unified mark "HR" on recognised reports and films; regions add a prefix
# ("鄂HR" Hubei, "武汉HR" Wuhan city items); an item marked ★ with a footnote counts the same
# as the issuing region's mark.
NATIONAL_MARK = "HR"
STAR_MARK = "★"


def level_index(level: str, field: str = "level") -> int:
    """Position of ``level`` in L0–L5; RES-010 naming ``field`` when unknown."""
    try:
        return LEVELS.index(level)
    except ValueError:
        raise Invalid("RES-010", f"{field}: unknown level {level!r}; expected one of {', '.join(LEVELS)}",
                      {"field": field}) from None


def aware(moment: datetime, field: str) -> datetime:
    """``moment`` if it carries a time zone; RES-010 otherwise (times are never guessed)."""
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise Invalid("RES-010", f"{field}: a date-time with a time zone is required", {"field": field})
    return moment


def local_day(moment: datetime, field: str = "time") -> date:
    """The calendar day in China of an aware date-time."""
    return aware(moment, field).astimezone(CN_TZ).date()


def age_days(reported_at: datetime, now: datetime) -> int:
    """Whole calendar days (China time) from the report to ``now``: a result reported at 23:50
    is one day old at 00:10. Validity periods (§4.4) are published in days, read here as
    calendar days [M: the lists do not say; calendar days are how clinicians count]."""
    return (local_day(now, "now") - local_day(reported_at, "reported_at")).days


def region_prefix(code: str) -> str:
    """The prefix that every division inside ``code`` shares: GB/T 2260 six-digit codes
    (420000 province → "42", 420100 city → "4201", 420102 county) and twelve-digit statistical
    codes (township …000, village)."""
    if not code.isdigit() or len(code) not in (6, 12):
        raise Invalid("RES-010", f"region: {code!r} is not a 6- or 12-digit division code", {"field": "region"})
    if len(code) == 12:
        if code[6:] != "000000":
            return code[:9] if code[9:] == "000" else code
        code = code[:6]
    if code[2:] == "0000":
        return code[:2]
    return code[:4] if code[4:] == "00" else code


def in_region(org_region: str, region: str) -> bool:
    """Whether a division (``org_region``) lies inside ``region`` (or is it)."""
    return org_region.startswith(region_prefix(region))


# -- external quality assessment (室间质评) -------------------------------------------------

EQA_STATUSES = ("passed", "failed")


@dataclass(frozen=True)
class EqaRecord:
    """One lab's EQA outcome for one item in one year, from one scheme (e.g. the national
    clinical laboratory centre, a provincial QC centre)."""

    lab: str
    item: str
    year: int
    status: str  # passed | failed
    scheme: str | None = None


class EqaFacts:
    """The EQA records the decision reads. §4.2 [V]: eligibility needs a *passed* assessment by a
    QC organisation at some level; a failure at any level in the same year outweighs a pass
    (Inner Mongolia scheme [V]: a lab that failed provincial or national EQA is a reason to repeat)."""

    def __init__(self, records: Iterable[EqaRecord | Mapping[str, Any]] = ()):
        self._status: dict[tuple[str, str, int], str] = {}
        for raw in records:
            rec = raw if isinstance(raw, EqaRecord) else _eqa_record(raw)
            _check_eqa(rec)
            key = (rec.lab, rec.item, rec.year)
            if self._status.get(key) != "failed":
                self._status[key] = rec.status

    def status(self, lab: str, item: str, year: int) -> str | None:
        """"passed", "failed" or None when the lab has no record for the item that year."""
        return self._status.get((lab, item, year))

    def __len__(self) -> int:
        return len(self._status)


def _eqa_record(raw: Mapping[str, Any]) -> EqaRecord:
    try:
        return EqaRecord(lab=str(raw["lab"]), item=str(raw["item"]), year=int(raw["year"]),
                         status=str(raw["status"]), scheme=raw.get("scheme"))
    except (KeyError, TypeError, ValueError) as exc:
        raise Invalid("RES-016", f"EQA record: lab, item, year and status are required ({exc!r})",
                      {"field": "eqa"}) from exc


def _check_eqa(rec: EqaRecord) -> None:
    if rec.status not in EQA_STATUSES:
        raise Invalid("RES-016", f"EQA record {rec.lab}/{rec.item}/{rec.year}: status {rec.status!r},"
                      f" expected one of {', '.join(EQA_STATUSES)}", {"field": "eqa.status"})
    if not 2000 <= rec.year <= 2100 or not rec.lab or not rec.item:
        raise Invalid("RES-016", f"EQA record {rec.lab!r}/{rec.item!r}/{rec.year}: needs a lab, an item"
                      " and a year between 2000 and 2100", {"field": "eqa"})


# -- the doctor's exceptions: repeat anyway (§4.3) -----------------------------------------

class RepeatReason(StrEnum):
    # the six national situations (六种情形), NHC press conference 2022 [V]
    CHANGED_CONDITION = "changed_condition"
    FAST_CHANGING = "fast_changing"
    PRE_MAJOR_PROCEDURE = "pre_major_procedure"
    EMERGENCY = "emergency"
    FORENSIC_APPRAISAL = "forensic_appraisal"
    OTHER = "other"
    # local additions, Inner Mongolia scheme [V]; a deployment may switch them off
    PATIENT_REQUEST = "patient_request"
    LAB_FAILED_EQA = "lab_failed_eqa"
    TOO_OLD = "too_old"
    PHYSICIAN_JUDGEMENT = "physician_judgement"


NATIONAL_REASONS: dict[RepeatReason, tuple[str, str]] = {
    RepeatReason.CHANGED_CONDITION: ("病情变化，结果与临床表现或诊断不符，难以满足临床需求",
                                     "condition changed: the result no longer fits the clinical picture"),
    RepeatReason.FAST_CHANGING: ("结果随病情进展变化较快", "the result changes quickly as the disease evolves"),
    RepeatReason.PRE_MAJOR_PROCEDURE: ("对治疗措施有重要意义（如手术、输血等重大医疗措施前）",
                                       "before surgery, transfusion or another major measure"),
    RepeatReason.EMERGENCY: ("急诊、急救等紧急情况", "emergency or rescue"),
    RepeatReason.FORENSIC_APPRAISAL: ("司法、伤残及病退等鉴定", "forensic, disability or retirement appraisal"),
    RepeatReason.OTHER: ("其他需要复查的情形", "another situation that needs a repeat (stated)"),
}
LOCAL_REASONS: dict[RepeatReason, tuple[str, str]] = {
    RepeatReason.PATIENT_REQUEST: ("患者或家属要求复查", "the patient or family asks for a repeat"),
    RepeatReason.LAB_FAILED_EQA: ("出具结果的机构未通过省级或国家级室间质评",
                                  "the issuing lab failed provincial or national EQA"),
    RepeatReason.TOO_OLD: ("检查检验时间过久，失去参考价值", "the test is too old to be of value"),
    RepeatReason.PHYSICIAN_JUDGEMENT: ("接诊医生认为有必要复查", "the receiving physician deems a repeat necessary"),
}


@dataclass(frozen=True)
class Override:
    """The doctor repeats the test anyway. Always logged with the physician and whether the
    patient was told why (§4.2 [V]: the doctor explains the purpose and necessity of the repeat;
    §4.5: log the decision, the reason, the physician ID and that the patient was informed)."""

    reason: RepeatReason
    physician: str
    patient_informed: bool
    text: str | None = None

    @property
    def national(self) -> bool:
        return self.reason in NATIONAL_REASONS

    def as_dict(self) -> dict[str, Any]:
        return {"reason": str(self.reason), "national": self.national, "text": self.text,
                "physician": self.physician, "patient_informed": self.patient_informed}


def make_override(reason: str | None, *, physician: str | None, patient_informed: bool | None,
                  text: str | None = None, local_reasons: Iterable[str] = tuple(LOCAL_REASONS)) -> Override:
    """Check and build an override. RES-011 without a reason, RES-012 for a reason that is not
    one of the six national ones or an enabled local one, RES-013 "other" without text, RES-014
    when informing the patient is not recorded (not required up front in an emergency), RES-015
    without the physician."""
    if reason is None or not str(reason).strip():
        raise Invalid("RES-011", "a repeat despite a recognisable result needs a reason", {"field": "reason"})
    allowed = [str(r) for r in NATIONAL_REASONS] + [r for r in map(str, LOCAL_REASONS) if r in set(local_reasons)]
    if reason not in allowed:
        raise Invalid("RES-012", f"reason {reason!r} is not allowed; expected one of {', '.join(allowed)}",
                      {"field": "reason"})
    why = RepeatReason(reason)
    text = (text or "").strip() or None
    if why is RepeatReason.OTHER and text is None:
        raise Invalid("RES-013", "reason 'other' needs a text saying why the test is repeated", {"field": "text"})
    if not physician or not str(physician).strip():
        raise Invalid("RES-015", "an override names the physician who decided it", {"field": "physician"})
    if patient_informed is not True and not (why is RepeatReason.EMERGENCY and patient_informed is False):
        raise Invalid("RES-014", "the patient (or family) must be told why the test is repeated;"
                      " record patient_informed=true (false is accepted only in an emergency)",
                      {"field": "patient_informed"})
    return Override(reason=why, physician=str(physician).strip(), patient_informed=patient_informed, text=text)
