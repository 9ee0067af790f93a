"""The surveillance targets of the endpoint matrix (test_endpoint_matrix.py), all in county A
of the security world: a patient of county A's hospital with a report card reported through
``reporting.report_card``; a signal raised through ``signals.raise_signal`` on county A,
verified as a suspected event (a warning is issued only on one, products.py) with a drafted
warning; and the bodies, query strings and page forms of the /api/surveillance routes and
the card pages."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from tests.factories import SYS, resident_id

from healthgrid.surveillance.card_queries import CST

BORN = date(1985, 3, 12)
NAME = "赵志强"
PHONE = "13766661111"
ICD10 = "A03.900"  # bacillary dysentery: disease 0400, subtype 0401 (class B, 24 h)
API = "/api/surveillance"


def _now() -> datetime:
    """Now on the card's clock (CST, naive), to the hour."""
    return datetime.now(CST).replace(tzinfo=None, minute=0, second=0, microsecond=0)


def past_day() -> date:
    return _now().date() - timedelta(days=1)


def _rid() -> str:
    return resident_id(BORN, seq=123, county="910102")


def card_fields(r) -> dict:
    """A complete first report of bacillary dysentery diagnosed this hour, living in county
    A's village (the card's fields as the API takes them)."""
    at = _now()
    return {"patient_name": NAME, "id_number": _rid(), "sex": "1", "birth_date": BORN.isoformat(),
            "work_unit": "永宁县机械厂", "phone": PHONE, "belongs_to": 1, "current_address": "清河镇桃源村2号",
            "current_address_code": r.village.code, "population_group": "worker", "case_class": "clinical",
            "onset_date": (at.date() - timedelta(days=2)).isoformat(), "diagnosed_at": at.isoformat(),
            "disease": "0400", "subtype": "0401", "doctor": "张晓明"}


def _card(session, r, patient_id: int) -> int:
    from healthgrid.surveillance import reporting
    from healthgrid.surveillance.card_fields import CardIn

    raw = card_fields(r)
    card = CardIn(**{**raw, "birth_date": BORN, "onset_date": date.fromisoformat(raw["onset_date"]),
                     "diagnosed_at": datetime.fromisoformat(raw["diagnosed_at"])})
    return reporting.report_card(session, SYS, card, report_org_id=r.county_hospital.id, patient_id=patient_id,
                                 icd10=ICD10).id


def _signal(session, r) -> tuple[int, int]:
    """A moving-percentile signal of dysentery in county A, verified as a suspected event,
    with a risk notice drafted from it."""
    from healthgrid.surveillance import products, signals
    from healthgrid.surveillance.detection_methods import Alarm

    alarm = Alarm("case:0400", "0400", r.county.code, "mpm", past_day(), 12.0, 7.0, {"percentile": 80})
    signal_id = signals.raise_signal(session, alarm).signal_id
    signals.act_on_signal(session, SYS, signal_id, action="verify", outcome="suspected", note="电话核实：同一学校聚集")
    warning = products.draft_warning(session, SYS, signal_id, product="risk_notice")
    return signal_id, warning.id


def targets(session, r, path: str) -> dict:
    """The path parameters of a surveillance route or card page, made in county A: a card
    for the card routes, a signal and its warning for the signal and warning routes."""
    return make_targets(session, r, cards="/cards" in path, signals="/signals" in path or "/warnings" in path)


def make_targets(session, r, *, cards: bool = True, signals: bool = True) -> dict:
    from healthgrid.patients import service as patients

    values: dict = {"feed": "fever", "action": "note"}
    if cards:
        pid = patients.register_patient(session, SYS, org_id=r.county_hospital.id, data=patients.PatientIn(
            name=NAME, sex="M", birth_date=BORN, phone=PHONE, resident_id=_rid(), division_id=r.village.id)).patient.id
        values |= {"patient_id": pid, "card_id": _card(session, r, pid)}
    if signals:
        values["signal_id"], values["warning_id"] = _signal(session, r)
    session.commit()
    return values


def query(method: str, path: str, r, values: dict) -> str:
    """The query string a surveillance route needs (or is walked with)."""
    if method != "GET" and not path.endswith("/detection/run"):
        return ""
    since, until = (past_day() - timedelta(days=29)).isoformat(), past_day().isoformat()
    period = f"?since={since}&until={until}&county={r.county.code}"
    prefill = f"?patient_id={values.get('patient_id')}&icd10={ICD10}&org_id={r.county_hospital.id}"
    return {f"{API}/cards": "?status=reported",
            f"{API}/cards/prefill": prefill,
            f"{API}/feeds/batches": "?feed=fever",
            f"{API}/signals": "?open_only=true",
            f"{API}/detection/run": f"?day={past_day().isoformat()}",
            f"{API}/dashboard/summary": period,
            f"{API}/dashboard/curve": period + "&disease=0400",
            f"{API}/dashboard/map": period,
            f"{API}/dashboard/kpis": period}.get(path, "")


def bodies(r, values: dict) -> dict:
    """A valid body per route. The CSV feed is the raw bytes of a text/csv upload. A second
    allowed role sends the same again: a new episode (no 重卡), an ignored feed row, a
    correction that changes nothing (422 SURV-311), a deleted card (409 SURV-304)."""
    card = f"{API}/cards/{{card_id}}"
    row = {"source": "H1", "division_code": r.county.code, "date": past_day().isoformat(), "metric": "ILI", "count": 1,
           "total": 10}
    csv = "source,division_code,date,metric,count,total\n" + ",".join(str(v) for v in row.values()) + "\n"
    return {
        f"{API}/cards": {**card_fields(r), "report_org_id": r.county_hospital.id,
                         "patient_id": values.get("patient_id"), "icd10": ICD10, "new_episode": True},
        f"{card}/correction": {"changes": {"remarks": "学校聚集病例之一"}, "reason": "补充备注"},
        f"{card}/deletion": {"delete_type": "duplicate", "reason": "与另一张卡重复"},
        f"{card}/review": {"decision": "approve"},
        f"{API}/feeds/{{feed}}": {"rows": [row]},
        f"{API}/feeds/{{feed}}/csv": csv.encode(),
        f"{API}/signals/{{signal_id}}/warnings": {"product": "notification"},
        f"{API}/signals/{{signal_id}}/{{action}}": {"note": "已电话联系学校校医"},
        f"{API}/warnings/{{warning_id}}": {"title": "关于细菌性痢疾的健康风险提示", "body": "注意饮食卫生，勤洗手。"},
        f"{API}/warnings/{{warning_id}}/issue": {},
    }


# -- the card pages ---------------------------------------------------------------------------------

def card_form(r, values: dict) -> dict:
    """What the card form posts: the card of :func:`card_fields` as the page's fields."""
    fields = card_fields(r)
    at = datetime.fromisoformat(fields.pop("diagnosed_at"))
    return {**{k: str(v) for k, v in fields.items()}, "diagnosed_day": at.date().isoformat(),
            "diagnosed_hour": str(at.hour), "fill_date": at.date().isoformat(), "org": str(r.county_hospital.id),
            "patient_id": str(values["patient_id"]), "icd10": ICD10, "new_episode": "1", "action": "submit"}


WEB_QUERIES = {"/surveillance/cards/new": "?patient_id={patient_id}&icd10=" + ICD10}


def web_forms(r, values: dict) -> dict:
    return {
        "/surveillance/cards/new": card_form(r, values),
        "/surveillance/cards/{card_id}/correct": {**card_form(r, values), "remarks": "学校聚集病例之一",
                                                  "reason": "补充备注"},
        "/surveillance/cards/{card_id}/review": {"decision": "approve"},
        "/surveillance/cards/{card_id}/delete": {"delete_type": "duplicate", "reason": "与另一张卡重复"},
    }


# -- county B's staff, for the cross-county walk ----------------------------------------------------

def county_b_tokens(session, world) -> dict[str, str]:
    """A CDC epidemiologist of county B, a clinician and a facility administrator of county B's
    hospital: their tokens by role name."""
    from healthgrid.security import service
    from healthgrid.security.domain import Role, ScopeKind

    plan = {"cdc": (Role.CDC_EPIDEMIOLOGIST, ScopeKind.DIVISION, world.county_b.id, None),
            "clinician": (Role.CLINICIAN, ScopeKind.ORGANIZATION, world.hosp_b.id, world.hosp_b.id),
            "admin": (Role.FACILITY_ADMIN, ScopeKind.ORGANIZATION, world.hosp_b.id, world.hosp_b.id)}
    tokens = {}
    for name, (role, kind, scope_id, home) in plan.items():
        user = service.create_user(session, SYS, username=f"surv-b-{name}", display_name=name,
                                   password="Str0ng-Passw0rd!", grants=[service.GrantSpec(role, kind, scope_id)],
                                   org_id=home)
        tokens[name] = service.create_token(session, SYS, user_id=user.id, name="b").token
    session.commit()
    return tokens
