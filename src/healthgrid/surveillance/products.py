"""Warning products (预警产品) of 《传染病疫情预警管理办法(试行)》 国疾控监测发〔2025〕11号
(../shared/specs/domain-rules.md §5.5), drafted from a signal and issued by the CDC:

- ``risk_notice`` 健康风险提示 — from the CDC to the public;
- ``notification`` 警示信息通报 — to the related departments, regions and the medical
  institutions of the area;
- ``decision_advice`` 预警决策建议 — to the government at the same level.

The draft is a Chinese text built from the signal (disease or feed metric, place, dates, the
counts against the threshold, the method, the verification so far) with the product's
audience; the epidemiologist edits title and body while it is a draft, then issues it (who,
when). Issued products are fixed: a correction is a new product.

Why only from a suspected or confirmed event: a signal is a statistical alarm; CIDARS
answers it by preliminary verification and field investigation (§5.4) before anything is
said to the public, the departments or the government — most signals are excluded on
verification (the suspected-event rate is about 1–5 %, §5.4), and a warning on an
unverified or excluded signal would spread false alarms. The 2025 measure makes a warning
the outcome of a risk assessment, which the verification is. Codes SURV-460…SURV-479.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import outbox
from ..db import transaction, utcnow
from ..errors import Conflict, Invalid, NotFound
from ..registry import queries as registry_queries
from ..security.domain import Actor, AuditAction
from . import signal_domain as sd
from .detection_data import county_names
from .models import Signal, Warning
from .signal_queries import check_access, stream_names
from .signals import county_cdc

PRODUCTS: dict[str, tuple[str, str]] = {
    "risk_notice": ("健康风险提示", "Public health-risk notice"),
    "notification": ("警示信息通报", "Warning notification"),
    "decision_advice": ("预警决策建议", "Warning decision advice"),
}
AUDIENCES = {
    "risk_notice": ("社会公众", "The public"),
    "notification": ("有关部门、相关地区和辖区医疗机构", "Related departments, regions and medical institutions"),
    "decision_advice": ("本级人民政府", "The government at the same level"),
}
NO_RISK = frozenset({sd.Status.VERIFIED_EXCLUDED.value, sd.Status.EXCLUDED.value})
RESPIRATORY = ("ILI", "SARI", "influenza", "sars_cov_2", "rsv", "adenovirus", "mycoplasma", "cough", "cold",
               "antipyretic", "respiratory", "fever", "3500", "L020", "2700", "1000", "1100", "L022", "L011")
ENTERIC = ("diarrhoea", "norovirus", "rotavirus", "antidiarrhoeal", "oral_rehydration", "0200", "0400", "0500",
           "3900", "0300")
TITLE_MAX, BODY_MAX = 200, 20_000


@dataclass(frozen=True)
class WarningView:
    id: int
    signal_id: int
    product: str
    product_zh: str
    product_en: str
    title: str
    body: str
    audience: str
    status: str
    created_by: str
    created_at: datetime
    issued_by: str | None
    issued_at: datetime | None
    issuer_name: str | None


def _view(session: Session, w: Warning, signal: Signal) -> WarningView:
    org = county_cdc(session, signal.county_code)
    name = registry_queries.names_of(session, orgs=[org])["org"].get(org) if org else None
    zh, en = PRODUCTS[w.product]
    return WarningView(w.id, w.signal_id, w.product, zh, en, w.title, w.body, w.audience, w.status, w.created_by,
                       w.created_at, w.issued_by, w.issued_at, name)


def _advice(stream: str) -> str:
    code = stream.split(":", 1)[1]
    if any(code.startswith(k) for k in RESPIRATORY):
        return "注意个人防护，勤洗手、常通风，在人群密集场所佩戴口罩；出现发热、咳嗽等症状应及时就医。"
    if any(code.startswith(k) for k in ENTERIC):
        return "注意饮食饮水卫生，不喝生水、不吃生冷不洁食物，饭前便后洗手；出现腹泻、呕吐等症状应及时就医。"
    return "关注自身健康状况，出现相关症状应及时就医，并主动告知医生近期活动和接触史。"


def _finding(s: Signal) -> str:
    """What the detector saw, in words (numbers only, never a person)."""
    d, thr = s.detail or {}, s.threshold
    if s.method == "fixed":
        return f"报告病例{s.observed:g}例（固定阈值法：出现1例即预警）"
    if s.method == "mpm":
        return (f"近7日报告病例{s.observed:g}例，超过既往同期基线的第{d.get('percentile', 50)}百分位数"
                f"（{thr:g}例，移动百分位数法）")
    if s.method == "scan":
        return (f"{len(d.get('counties', [])) or 1}个县区近{d.get('days', 7)}日聚集病例{s.observed:g}例，期望"
                f"{d.get('expected', 0):g}例（时空重排扫描，P={d.get('p_value', '')}）")
    if s.method == "cusum":
        ratio = f"{d.get('count', '')}/{d.get('total', '')}"
        return (f"当日占比{d.get('share', 0):.1%}（{ratio}），基线{d.get('expected_share', 0):.1%}"
                f"，累积和{s.observed:.2f}超过控制限{thr:g}（CUSUM）")
    return f"当日数量{d.get('count', s.observed)}，EARS C3统计量{s.observed:.2f}超过{thr:g}"


def draft_text(session: Session, s: Signal, product: str) -> tuple[str, str, str]:
    """(title, body, audience) of a product drafted from a signal. The issuing CDC and the
    date are not in the body: the issued document's footer prints them from the issue."""
    place = county_names(session).get(s.county_code, s.county_code)
    what = stream_names(s.stream, s.detected_on)[0]
    org = county_cdc(session, s.county_code)
    issuer = registry_queries.names_of(session, orgs=[org])["org"].get(org, "") if org else f"{place}疾病预防控制中心"
    state = sd.STATUS_LABELS[s.status][0]
    seen = (f"{s.detected_on.isoformat()}，传染病监测预警系统在{place}发现{what}预警信号：{_finding(s)}。"
            f"目前状态：{state}。")
    if product == "risk_notice":
        title = f"{place}{what}健康风险提示"
        body = f"近期{place}{what}呈上升趋势。{seen}\n\n{issuer}提醒广大群众：{_advice(s.stream)}"
    elif product == "notification":
        title = f"关于{place}{what}预警信号的警示信息通报"
        body = (f"各有关部门、相关地区疾病预防控制机构，辖区各医疗机构：\n\n{seen}\n\n请各医疗机构加强{what}"
                "相关病例的发现、诊治和报告，落实预检分诊和首诊负责制，发现可疑病例按规定时限网络直报；"
                "请有关部门和地区加强信息沟通和联防联控，做好风险排查和防控准备。")
    else:
        title = f"关于{place}{what}疫情风险的预警决策建议"
        body = (f"{place}人民政府：\n\n一、监测情况\n{seen}\n\n二、风险评估\n经初步核实为{state}，"
                "存在进一步传播的风险。\n\n三、建议\n（一）组织卫生健康、教育等部门加强监测和病例报告；\n（二）做好医疗救治和防控物资准备；"
                "\n（三）适时向社会发布健康风险提示，引导公众做好个人防护。")
    return title, body, AUDIENCES[product][0]


def _signal(session: Session, signal_id: int, *, lock: bool = False) -> Signal:
    row = session.get(Signal, signal_id, with_for_update=lock)
    if row is None:
        raise NotFound("SURV-403", f"signal {signal_id} not found", {"field": "signal_id"})
    return row


def _warning(session: Session, warning_id: int) -> tuple[Warning, Signal]:
    w = session.get(Warning, warning_id, with_for_update=True)
    if w is None:
        raise NotFound("SURV-461", f"warning product {warning_id} not found", {"field": "warning_id"})
    return w, _signal(session, w.signal_id)


def draft_warning(session: Session, actor: Actor, signal_id: int, *, product: str,
                  now: datetime | None = None) -> WarningView:
    """A draft of ``product`` from the signal; not for a signal whose event was excluded."""
    if product not in PRODUCTS:
        raise Invalid("SURV-460", f"product: one of {list(PRODUCTS)}; got {product!r}", {"field": "product"})
    now = now or utcnow()
    with transaction(session):
        s = _signal(session, signal_id)
        check_access(session, actor, s, AuditAction.CREATE, {"warning": product})
        if s.status in NO_RISK or s.conclusion == "excluded" or s.verification == "excluded":
            raise Conflict("SURV-463", f"signal {signal_id} was excluded ({s.status}): there is no risk to warn of",
                           {"status": s.status})
        title, body, audience = draft_text(session, s, product)
        w = Warning(signal_id=s.id, product=product, title=title, body=body, audience=audience, status="draft",
                    created_by=actor.username, created_at=now)
        session.add(w)
        session.flush()
        return _view(session, w, s)


def edit_warning(session: Session, actor: Actor, warning_id: int, *, title: str, body: str) -> WarningView:
    title, body = (title or "").strip(), (body or "").strip()
    if not 1 <= len(title) <= TITLE_MAX:
        raise Invalid("SURV-464", f"title: 1 to {TITLE_MAX} characters", {"field": "title"})
    if not 1 <= len(body) <= BODY_MAX:
        raise Invalid("SURV-464", f"body: 1 to {BODY_MAX} characters", {"field": "body"})
    with transaction(session):
        w, s = _warning(session, warning_id)
        check_access(session, actor, s, AuditAction.UPDATE, {"warning": w.id})
        if w.status != "draft":
            raise Conflict("SURV-462", f"warning product {w.id} was issued; it is no longer edited",
                           {"status": w.status})
        w.title, w.body = title, body
        session.flush()
        return _view(session, w, s)


def issue_warning(session: Session, actor: Actor, warning_id: int, *, now: datetime | None = None) -> WarningView:
    """Issue a draft (who, when): only while the signal is a suspected event, under field
    investigation or confirmed (see the module docstring for why)."""
    now = now or utcnow()
    with transaction(session):
        w, s = _warning(session, warning_id)
        check_access(session, actor, s, AuditAction.UPDATE, {"warning": w.id, "issue": True})
        if w.status != "draft":
            raise Conflict("SURV-465", f"warning product {w.id} was issued already", {"status": w.status})
        confirmed = s.status == sd.Status.CLOSED.value and s.conclusion == "confirmed"
        if s.status not in sd.WARNABLE and not confirmed:
            raise Conflict("SURV-463", f"a warning is issued on a suspected or confirmed event; signal {s.id} is"
                           f" {s.status}", {"status": s.status, "allowed": sorted(sd.WARNABLE)})
        w.status, w.issued_by, w.issued_at = "issued", actor.username, now
        session.flush()
        outbox.publish(session, "surveillance.warning_issued", {"warning_id": w.id, "signal_id": s.id,
                                                                "product": w.product})
        return _view(session, w, s)


def list_warnings(session: Session, actor: Actor, signal_id: int) -> list[WarningView]:
    with transaction(session):
        s = _signal(session, signal_id)
        check_access(session, actor, s, AuditAction.VIEW, audit_success=False)
        rows = session.scalars(select(Warning).where(Warning.signal_id == s.id).order_by(Warning.id))
        return [_view(session, w, s) for w in rows]


def get_warning(session: Session, actor: Actor, warning_id: int, *, printing: bool = False) -> WarningView:
    """One product; ``printing`` audits the print of an issued product."""
    with transaction(session):
        w = session.get(Warning, warning_id)
        if w is None:
            raise NotFound("SURV-461", f"warning product {warning_id} not found", {"field": "warning_id"})
        s = _signal(session, w.signal_id)
        check_access(session, actor, s, AuditAction.PRINT if printing else AuditAction.VIEW, {"warning": w.id},
                     audit_success=printing)
        return _view(session, w, s)
