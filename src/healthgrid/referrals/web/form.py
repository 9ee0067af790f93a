"""The referral form (双向转诊(转出)单, domain-rules.md §3.4): find the patient (the patient
index's audited search), choose the receiving organisation (the alliance's own first), its
department and doctor, fill the diagnoses (ICD-10), the reason, present illness, past
history, treatment, insurance and the clinical facts; see the criteria hints (转诊标准) and
the receiving department's free reserved places (预留号源) and pick one; save as a draft or
submit. Works without JavaScript: "refresh" and "check" re-render the form with what was
typed; a small local script only presses "refresh" when a select changes."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ...errors import HealthGridError, Invalid
from ...http import SessionDep
from ...patients import service as patients
from ...registry import queries as registry_queries
from ...registry.domain import ORG_LEVEL_LABELS
from ...security.domain import Actor, Perm
from ...security.http import ActorDep, require
from ...web import page_language
from ...web.notices import error_view
from .. import criteria, service
from .. import desk as ref_desk
from .. import domain as d
from ..web_messages import INSURANCE_LABELS
from .common import desk_choice, parse_id, redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(require(Perm.REFERRAL_WRITE))])
Param = Annotated[str, Query(max_length=60)]
# Facilities that take no referred patients (public health, 120 dispatch, blood supply).
NOT_RECEIVING = ("cdc", "emergency_centre", "blood_centre")
NUMBERS = ("sbp", "dbp", "fpg", "heart_rate", "temperature", "uncontrolled_visits")
TEXTS = ("reason_text", "present_illness", "past_history", "treatment")
SEVERITY_ORDER = {"block": 0, "warn": 1, "info": 2}


class ReferralForm(BaseModel):
    """What the form posts; lengths are checked (with coded errors) by the service."""

    action: str = Field("refresh", max_length=10)
    key: str = Field("", max_length=100)
    from_org: str = Field("", max_length=12)
    patient_id: str = Field("", max_length=12)
    to_org_id: str = Field("", max_length=12)
    to_department_id: str = Field("", max_length=12)
    to_practitioner_id: str = Field("", max_length=12)
    slot_id: str = Field("", max_length=12)
    urgency: str = Field("routine", max_length=12)
    diag_code: list[str] = Field(default_factory=list, max_length=20)
    diag_name: list[str] = Field(default_factory=list, max_length=20)
    reason_text: str = Field("", max_length=8000)
    present_illness: str = Field("", max_length=8000)
    past_history: str = Field("", max_length=8000)
    treatment: str = Field("", max_length=8000)
    insurance_type: str = Field("", max_length=40)
    insurance_region: str = Field("", max_length=40)
    contact_phone: str = Field("", max_length=40)
    sbp: str = Field("", max_length=10)
    dbp: str = Field("", max_length=10)
    fpg: str = Field("", max_length=10)
    heart_rate: str = Field("", max_length=10)
    temperature: str = Field("", max_length=10)
    uncontrolled_visits: str = Field("", max_length=10)
    red_flags: list[str] = Field(default_factory=list, max_length=20)
    pregnant: str = Field("", max_length=4)
    att_kind: list[str] = Field(default_factory=list, max_length=10)
    att_ref: list[str] = Field(default_factory=list, max_length=10)
    att_title: list[str] = Field(default_factory=list, max_length=10)


def _rows(*columns: list[str]) -> list[tuple[str, ...]]:
    """Rows of repeated inputs (code + name, kind + ref + title), blank rows dropped."""
    width = max((len(c) for c in columns), default=0)
    rows = [tuple((c[i] if i < len(c) else "").strip() for c in columns) for i in range(width)]
    return [r for r in rows if any(r[-2:] if len(r) > 2 else r)]


def referral_in(from_org: int, form: ReferralForm) -> service.ReferralIn:
    """The service's input from the form; the patient and the receiver must be chosen."""
    patient, to_org = parse_id(form.patient_id), parse_id(form.to_org_id)
    if patient is None:
        raise Invalid("REF-005", "patient_id: find and choose the patient first", {"field": "patient_id"})
    if to_org is None:
        raise Invalid("REF-005", "to_org_id: choose the receiving organisation", {"field": "to_org_id"})
    clinical: dict[str, Any] = {k: getattr(form, k).strip() for k in NUMBERS if getattr(form, k).strip()}
    clinical.update(red_flags=list(dict.fromkeys(form.red_flags)), pregnant_or_breastfeeding=form.pregnant == "1")
    return service.ReferralIn(
        patient_id=patient, from_org_id=from_org, to_org_id=to_org, urgency=form.urgency,
        to_department_id=parse_id(form.to_department_id), to_practitioner_id=parse_id(form.to_practitioner_id),
        diagnoses=[{"code": c, "name": n} for c, n in _rows(form.diag_code, form.diag_name)],
        attachments=[{"kind": k, "ref": r, "title": t} for k, r, t in _rows(form.att_kind, form.att_ref,
                                                                             form.att_title)],
        insurance_type=form.insurance_type.strip() or None, insurance_region=form.insurance_region.strip() or None,
        contact_phone=form.contact_phone.strip() or None, clinical=clinical, slot_id=parse_id(form.slot_id),
        **{k: getattr(form, k) for k in TEXTS})


# -- what the form offers --------------------------------------------------------------------------

def receiving_orgs(session: Session, from_org: int, lang: str) -> list[tuple[str, list[tuple[int, str]]]]:
    """The receiving organisations, grouped: the alliances' (医联体/医共体) members first, higher
    levels first; then the region's other hospitals."""
    placement = registry_queries.organization_placement(session, from_org)
    ours: dict[int, Any] = {}
    for alliance_id in sorted(placement[1]) if placement else []:
        page = registry_queries.search_organizations(
            session, registry_queries.OrgFilter(alliance_id=alliance_id, active=True), limit=200)
        ours.update({o.id: o for o in page.items if o.id != from_org and o.org_type not in NOT_RECEIVING})
    others = registry_queries.search_organizations(session, registry_queries.OrgFilter(
        levels=["L2", "L3", "L4", "L5"], active=True), limit=200).items
    rest = [o for o in others if o.id not in ours and o.id != from_org and o.org_type not in NOT_RECEIVING]

    def label(o: Any) -> tuple[int, str]:
        level = ORG_LEVEL_LABELS.get(o.level)
        return o.id, f"{o.name}（{level[1] if lang == 'en' else level[0]}）" if level else o.name

    mine = sorted(ours.values(), key=lambda o: (-d.LEVELS.index(o.level), o.code))
    return [(key, [label(o) for o in group]) for key, group in (("ref.form.orgs_alliance", mine),
                                                                 ("ref.form.orgs_other", rest)) if group]


def doctors_of(session: Session, org_id: int, department_id: int | None) -> list[tuple[int, str]]:
    """The receiving organisation's doctors, those of the chosen department first."""
    rows = registry_queries.search_practice_sites(session, org_ids=[org_id], limit=300).items
    seen: dict[int, tuple[bool, str]] = {}
    for r in rows:
        here = department_id is not None and r.site.department_id == department_id
        seen[r.practitioner.id] = (seen.get(r.practitioner.id, (False, ""))[0] or here, r.practitioner.name)
    return [(pid, name) for pid, (_here, name) in sorted(seen.items(), key=lambda kv: (not kv[1][0], kv[1][1]))]


def places_of(session: Session, actor: Actor, org_id: int | None, department_id: int | None,
            practitioner_id: int | None) -> tuple[list[Any], dict[int, str], Any]:
    """The department's free reserved places, their doctors' names, or the refusal."""
    if org_id is None or department_id is None:
        return [], {}, None
    try:
        found = ref_desk.reserved_places(session, actor, org_id=org_id, department_id=department_id,
                                        practitioner_id=practitioner_id)
    except HealthGridError as exc:
        return [], {}, exc
    slots = found
    names = registry_queries.names_of(session, practitioners=[s.practitioner_id for s in slots
                                                              if s.practitioner_id])["practitioner"]
    return slots, names, None


def _patient(session: Session, actor: Actor, patient_id: int | None) -> tuple[Any, Any]:
    """The chosen patient's record (an audited view, refused for a patient the doctor may not
    see), or the refusal."""
    if patient_id is None:
        return None, None
    try:
        return patients.get_patient(session, actor, patient_id), None
    except HealthGridError as exc:
        return None, exc


def _findings(items: list[Any]) -> list[dict[str, Any]]:
    rows = [f.as_dict() if isinstance(f, criteria.Finding) else dict(f) for f in items]
    return sorted(rows, key=lambda f: SEVERITY_ORDER.get(f.get("severity", ""), 3))


def _page(request: Request, session: Session, actor: Actor, form: ReferralForm, *, from_org: int | None,
          desks: list[tuple[int, str]], error: Any = None, findings: list[Any] | None = None,
          checked: bool = False) -> HTMLResponse:
    patient, refused = _patient(session, actor, parse_id(form.patient_id))
    to_org = parse_id(form.to_org_id)
    departments = registry_queries.departments_of(session, to_org) if to_org else []
    doctors = doctors_of(session, to_org, parse_id(form.to_department_id)) if to_org else []
    # Another hospital chosen: its departments and doctors replace the previous one's.
    form = form.model_copy(update={
        "to_department_id": form.to_department_id if form.to_department_id in {str(x.id) for x in departments} else "",
        "to_practitioner_id": form.to_practitioner_id if form.to_practitioner_id in {str(i) for i, _ in doctors}
        else ""})
    dept = parse_id(form.to_department_id)
    slots, slot_doctors, slot_error = places_of(session, actor, to_org, dept, parse_id(form.to_practitioner_id))
    lang = page_language(request)
    view_error = error_view(request, error) if error is not None else (
        error_view(request, refused) if refused is not None else None)
    diagnoses = _rows(form.diag_code, form.diag_name)
    attachments = _rows(form.att_kind, form.att_ref, form.att_title)
    return render(
        request, "referrals/new.html", view_error.status if view_error else 200, form=form, from_org=from_org,
        desks=desks, patient=patient, error=view_error, checked=checked,
        findings=_findings(findings if findings is not None else (view_error.findings if view_error else [])),
        orgs=receiving_orgs(session, from_org, lang) if from_org else [],
        departments=departments, doctors=doctors, slots=slots, slot_doctors=slot_doctors,
        slot_error=error_view(request, slot_error) if slot_error else None,
        diagnoses=diagnoses + [("", "")] * max(1, 3 - len(diagnoses)),
        attachments=attachments + [("", "", "")] * max(1, 2 - len(attachments)),
        urgencies=list(d.Urgency), insurance_types=list(INSURANCE_LABELS), red_flags=list(criteria.RED_FLAGS),
        attachment_kinds=list(d.ATTACHMENT_KINDS), found=None, search_error=None, name="", rid="")


@router.get("/referrals/new", response_class=HTMLResponse)
def new(request: Request, session: SessionDep, actor: ActorDep, org: Param = "", patient: Param = "",
        name: Param = "", rid: Annotated[str, Query(max_length=20)] = "") -> HTMLResponse:
    from_org, desks = desk_choice(session, actor, parse_id(org))
    form = ReferralForm(key=secrets.token_urlsafe(18), from_org=str(from_org or ""),
                        patient_id=str(parse_id(patient) or ""))
    if parse_id(patient) is not None:
        return _page(request, session, actor, form, from_org=from_org, desks=desks)
    found, search_error = patients.pick_patients(session, actor, name=name, resident_id=rid)
    return render(request, "referrals/new.html", form=form, from_org=from_org, desks=desks, patient=None,
                  found=found, search_error=error_view(request, search_error) if search_error else None,
                  name=name, rid=rid, error=None)


@router.post("/referrals/new", response_class=HTMLResponse)
def post(request: Request, session: SessionDep, actor: ActorDep,
         form: Annotated[ReferralForm, Form()]) -> Response:
    from_org, desks = desk_choice(session, actor, parse_id(form.from_org))
    page = dict(from_org=from_org, desks=desks)
    if form.action not in ("check", "draft", "submit") or from_org is None:
        return _page(request, session, actor, form, **page)
    try:
        data = referral_in(from_org, form)
        if form.action == "check":
            found = service.check_criteria(session, actor, data)
            return _page(request, session, actor, form, findings=found, checked=True, **page)
        made = service.create_referral(session, actor, data, submit=form.action == "submit",
                                       idempotency_key=form.key or None)
    except HealthGridError as exc:
        return _page(request, session, actor, form, error=exc, **page)
    what = "ref.flash.submitted" if made.status != d.Status.DRAFT.value else "ref.flash.drafted"
    return redirect(request, f"/referrals/{made.id}", m=what, code=made.code)
