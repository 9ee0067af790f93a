"""Referral criteria (转诊标准) as rules that warn or block. Pure: facts in, findings out.

Each rule has a code and a default mode (``block``, ``warn`` or ``off``); a deployment
changes the mode per rule in configuration (``HEALTHGRID_REFERRALS__CRITERIA``), because the
thresholds and their force are provincial choices (domain-rules.md, preamble).

Sources (../shared/specs/domain-rules.md):
- §3.2 up-referral: hypertension SBP >= 180 and/or DBP >= 110 mmHg, or the listed symptoms,
  or pregnancy/breastfeeding with raised BP -> emergency referral (基本公卫规范 第三版 2017,
  高血压患者健康管理服务规范 [V]); diabetes FPG >= 16.7 or <= 3.9 mmol/L, HR > 100,
  temperature > 39 °C -> emergency referral (2型糖尿病患者健康管理服务规范 [V/M]);
  unsatisfactory control at two consecutive follow-ups -> referral [V].
- §3.3 down-referral: diagnosis confirmed, treatment plan settled, condition stable (分级诊疗
  技术方案, hypertension as the template [V]).
- §0.3 / §3.1: referrals normally run within the alliance (医联体/医共体), up to a higher
  level and down to a lower one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from ..errors import Invalid
from .domain import LEVELS, Direction, Urgency

MODES = ("block", "warn", "off")

# Red flags of §3.2 (hypertension, diabetes and the disease-specific plan), by code.
RED_FLAGS: dict[str, tuple[str, str]] = {
    "altered_consciousness": ("意识改变", "altered consciousness"),
    "severe_headache": ("剧烈头痛或头晕", "severe headache or dizziness"),
    "vomiting": ("恶心呕吐", "nausea and vomiting"),
    "blurred_vision": ("视物模糊、眼痛", "blurred vision, eye pain"),
    "chest_pain": ("持续胸痛或胸背痛", "persistent chest or back pain"),
    "dyspnoea": ("呼吸困难、端坐呼吸", "dyspnoea, orthopnoea"),
    "aphasia_paralysis": ("失语或肢体瘫痪", "aphasia or paralysis"),
    "palpitations": ("心悸、胸闷", "palpitations, chest tightness"),
    "ketosis": ("酮味呼吸或酮症酸中毒表现", "ketotic breath or signs of ketoacidosis"),
    "sudden_visual_loss": ("视力骤降", "sudden visual loss"),
}


@dataclass(frozen=True)
class Facts:
    """What the referring doctor records on the form (all optional)."""

    sbp: int | None = None  # mmHg
    dbp: int | None = None
    fpg: float | None = None  # fasting plasma glucose, mmol/L
    heart_rate: int | None = None
    temperature: float | None = None  # °C
    pregnant_or_breastfeeding: bool = False
    red_flags: tuple[str, ...] = ()
    uncontrolled_visits: int = 0  # consecutive follow-ups with unsatisfactory control
    diagnosis_confirmed: bool | None = None  # down-referral
    condition_stable: bool | None = None  # down-referral
    care_plan: str | None = None  # down-referral: 下一步治疗方案

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


LIMITS = {"sbp": (40, 300), "dbp": (20, 200), "fpg": (0.5, 60.0), "heart_rate": (20, 300),
          "temperature": (30.0, 45.0), "uncontrolled_visits": (0, 50)}


def facts_from(data: Mapping | None) -> Facts:
    """Parse and range-check the form's clinical facts (REF-005 names the field)."""
    data = dict(data or {})
    unknown = set(data) - set(Facts.__dataclass_fields__)
    if unknown:
        raise Invalid("REF-005", f"clinical: unknown fields {sorted(unknown)}", {"field": "clinical"})
    for name, (lo, hi) in LIMITS.items():
        value = data.get(name)
        if value is None or value == "":
            data[name] = None if name != "uncontrolled_visits" else 0
            continue
        try:
            value = float(value)
        except (TypeError, ValueError) as exc:
            raise Invalid("REF-005", f"clinical.{name}: a number", {"field": f"clinical.{name}"}) from exc
        if not lo <= value <= hi:
            raise Invalid("REF-005", f"clinical.{name}: between {lo} and {hi}", {"field": f"clinical.{name}"})
        data[name] = value if name in ("fpg", "temperature") else int(value)
    flags = tuple(data.get("red_flags") or ())
    bad = [f for f in flags if f not in RED_FLAGS]
    if bad:
        raise Invalid("REF-005", f"clinical.red_flags: unknown {bad}; one of {sorted(RED_FLAGS)}",
                      {"field": "clinical.red_flags"})
    data["red_flags"] = flags
    for name in ("pregnant_or_breastfeeding",):
        data[name] = bool(data.get(name))
    return Facts(**data)


@dataclass(frozen=True)
class Rule:
    code: str
    mode: str  # the default
    text: tuple[str, str]  # what it checks, zh / en


RULES: dict[str, Rule] = {r.code: r for r in (
    Rule("REF-C01", "block", ("上转应转往更高层级，下转应转往更低层级",
                             "up-referrals go to a higher level, down-referrals to a lower one")),
    Rule("REF-C02", "warn", ("转诊通常在同一医联体/医共体内进行", "referrals normally stay within the alliance")),
    Rule("REF-C03", "warn", ("血压≥180/110 mmHg，建议紧急转诊", "BP >= 180/110 mmHg: emergency referral advised")),
    Rule("REF-C04", "warn", ("空腹血糖≥16.7或≤3.9 mmol/L，建议紧急转诊",
                             "FPG >= 16.7 or <= 3.9 mmol/L: emergency referral advised")),
    Rule("REF-C05", "warn", ("存在危急症状，建议紧急转诊", "red-flag symptoms: emergency referral advised")),
    Rule("REF-C06", "warn", ("孕期或哺乳期血压升高，建议紧急转诊",
                             "raised BP in pregnancy or breastfeeding: emergency referral advised")),
    Rule("REF-C07", "warn", ("心率>100次/分或体温>39℃，建议紧急转诊",
                             "HR > 100/min or temperature > 39 °C: emergency referral advised")),
    Rule("REF-C08", "block", ("下转需病情稳定", "a down-referral needs a stable condition")),
    Rule("REF-C09", "block", ("下转需明确下一步治疗方案", "a down-referral needs a care plan")),
    Rule("REF-C10", "warn", ("下转需诊断明确", "a down-referral needs a confirmed diagnosis")),
    Rule("REF-C11", "block", ("血压≥180/110 mmHg或存在危急症状时不宜下转",
                              "no down-referral with BP >= 180/110 or red flags")),
    Rule("REF-C12", "warn", ("连续两次随访控制不满意，建议上转",
                             "unsatisfactory control at two consecutive follow-ups: referral advised")),
)}


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str  # block | warn | info
    text: tuple[str, str]
    suggest_urgency: str | None = None

    def as_dict(self) -> dict:
        return {"rule": self.rule, "severity": self.severity, "zh": self.text[0], "en": self.text[1],
                "suggest_urgency": self.suggest_urgency}


@dataclass(frozen=True)
class Route:
    direction: str
    urgency: str
    from_level: str
    to_level: str
    same_alliance: bool


@dataclass
class _Collector:
    modes: Mapping[str, str]
    found: list[Finding] = field(default_factory=list)

    def add(self, code: str, suggest: str | None = None, severity: str | None = None) -> None:
        mode = self.modes.get(code, RULES[code].mode)
        if mode == "off":
            return
        self.found.append(Finding(code, severity or mode, RULES[code].text, suggest))


def check_modes(modes: Mapping[str, str]) -> None:
    for code, mode in modes.items():
        if code not in RULES or mode not in MODES:
            raise ValueError(f"referral criteria: {code}={mode!r}; rules are {sorted(RULES)}, modes {MODES}")


def evaluate(route: Route, facts: Facts, modes: Mapping[str, str] | None = None) -> list[Finding]:
    """Every rule that applies, with its severity under the configured modes."""
    c = _Collector(modes or {})
    rank = LEVELS.index(route.to_level) - LEVELS.index(route.from_level)
    if (route.direction == Direction.UP and rank <= 0) or (route.direction == Direction.DOWN and rank >= 0):
        c.add("REF-C01")
    if not route.same_alliance and route.direction != Direction.LATERAL:
        c.add("REF-C02")
    high_bp = (facts.sbp or 0) >= 180 or (facts.dbp or 0) >= 110
    glucose = facts.fpg is not None and (facts.fpg >= 16.7 or facts.fpg <= 3.9)
    raised_in_pregnancy = facts.pregnant_or_breastfeeding and ((facts.sbp or 0) >= 140 or (facts.dbp or 0) >= 90)
    vitals = (facts.heart_rate or 0) > 100 or (facts.temperature or 0) > 39
    if route.direction == Direction.UP:
        not_emergency = route.urgency != Urgency.EMERGENCY
        for code, hit in (("REF-C03", high_bp), ("REF-C04", glucose), ("REF-C05", bool(facts.red_flags)),
                          ("REF-C06", raised_in_pregnancy), ("REF-C07", vitals)):
            if hit:
                c.add(code, Urgency.EMERGENCY.value, None if not_emergency else "info")
        if facts.uncontrolled_visits >= 2:
            c.add("REF-C12", severity="info")
    if route.direction == Direction.DOWN:
        if facts.condition_stable is not True:
            c.add("REF-C08")
        if not (facts.care_plan or "").strip():
            c.add("REF-C09")
        if facts.diagnosis_confirmed is not True:
            c.add("REF-C10")
        if high_bp or facts.red_flags:
            c.add("REF-C11")
    return c.found


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "block"]
