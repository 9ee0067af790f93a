"""One referral's page: the form's content, the status with its timeline (who, when), the
appointment, and the actions the viewer's side may take now — the receiver accepts (with a
reserved place of its choice), rejects, schedules, records the arrival, the start and end of
care, the no-show, and fills the back-referral form (回转单); the sender submits a draft and
cancels; the facility the patient went back to receives, records the follow-up and closes;
the alliance's referral centre redirects. Every form carries the version it was read at
(REF-004 when someone else changed the referral meanwhile). Also the printable form
(双向转诊单: stub, referral-out form, back-referral form) as an A4 print view."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ...errors import HealthGridError, Invalid, NotFound
from ...http import SessionDep
from ...patients import service as patients
from ...registry import queries as registry_queries
from ...scheduling import service as scheduling
from ...security.domain import Actor, Perm
from ...security.http import ActorDep, require
from ...surveillance import reporting as case_reporting
from ...web import page_language
from ...web.notices import error_view
from .. import desk as ref_desk
from .. import domain as d
from .. import service
from .. import workflow as ref_workflow
from ..queries import ReferralView
from .common import desk_orgs, fail, parse_id, parse_version, redirect, render
from .form import doctors_of, places_of, receiving_orgs

router = APIRouter(include_in_schema=False, dependencies=[Depends(require(Perm.REFERRAL_WRITE))])
RowId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
Text = Annotated[str, Form(max_length=4000)]
Small = Annotated[str, Form(max_length=12)]
S = d.Status
REDIRECTABLE = (S.EXPIRED.value, S.REJECTED.value, S.ACCEPTED.value)
# Moves that need nothing but the version: the service function and the notice's key.
SIMPLE: dict[str, Callable[..., ReferralView]] = {
    "submit": service.submit_referral, "arrived": ref_workflow.mark_arrived, "start": ref_workflow.start_care,
    "complete": ref_workflow.complete_referral, "no-show": ref_workflow.mark_no_show,
    "receive": ref_workflow.receive_back}


def _centre(session: Session, r: ReferralView, mine: set[int]) -> bool:
    """The viewer works at the referral centre this referral went (or would go) to."""
    if r.escalated_to_org_id is not None:
        return r.escalated_to_org_id in mine
    placement = registry_queries.organization_placement(session, r.to_org_id)
    leads = {registry_queries.alliance_lead(session, a) for a in (placement[1] if placement else ())}
    return bool(leads & mine)


def actions(session: Session, actor: Actor, r: ReferralView) -> set[str]:
    """What the viewer's side may do now (the service decides again on every post)."""
    mine = set(desk_orgs(actor))
    sender, receiver = r.from_org_id in mine, r.to_org_id in mine
    back = (r.back_to_org_id or r.from_org_id) in mine
    by_status = {
        S.DRAFT: {"submit"} if sender else set(),
        S.SUBMITTED: ({"accept", "reject"} if receiver else set()) | ({"cancel"} if sender else set()),
        S.ACCEPTED: ({"schedule", "arrived"} if receiver else set()) | ({"cancel"} if sender else set()),
        S.SCHEDULED: ({"arrived", "no-show"} if receiver else set()) | ({"cancel"} if sender else set()),
        S.ARRIVED: {"start"} if receiver else set(),
        S.IN_CARE: {"complete"} if receiver else set(),
        S.COMPLETED: {"back", "close"} if receiver else set(),
        S.BACK_REFERRED: {"receive", "followup"} if back else set(),
        S.RECEIVED_BY_PRIMARY: {"followup"} if back else set(),
        S.FOLLOWED_UP: {"close"} if back else set(),
    }
    found = set(by_status.get(S(r.status), set()))
    if r.status in REDIRECTABLE and r.appointment_id is None and _centre(session, r, mine):
        found.add("redirect")
    return found


class BackForm(BaseModel):
    """The back-referral form (双向转诊(回转)单, §3.4)."""

    version: str = Field("", max_length=12)
    diagnosis: str = Field("", max_length=4000)
    inpatient_no: str = Field("", max_length=100)
    results: str = Field("", max_length=8000)
    treatment: str = Field("", max_length=8000)
    plan: str = Field("", max_length=8000)
    rehab: str = Field("", max_length=8000)
    to_org_id: str = Field("", max_length=12)
    sbp: str = Field("", max_length=10)
    dbp: str = Field("", max_length=10)
    condition_stable: str = Field("", max_length=4)
    diagnosis_confirmed: str = Field("", max_length=4)


def back_to_name(session: Session, r: ReferralView) -> str:
    """The facility the patient goes (or went) back to: the sender unless the hospital chose another."""
    back_to = r.back_to_org_id or r.from_org_id
    return r.from_org_name if back_to == r.from_org_id else \
        registry_queries.names_of(session, orgs=[back_to])["org"].get(back_to, "")


def _asked_place(session: Session, actor: Actor, r: ReferralView) -> Any:
    """The reserved place the sender asked for, while none is booked yet."""
    if r.slot_id is None or r.appointment_id is not None:
        return None
    try:
        return scheduling.get_slot(session, actor, r.slot_id)
    except HealthGridError:
        return None


def case_reports(session: Session, actor: Actor, r: ReferralView) -> list[dict[str, str]]:
    """Surveillance's one click (首诊负责制: the diagnosing doctor reports): each diagnosis of a
    notifiable disease, with the link to its prefilled report card."""
    if not actor.can(Perm.CASE_REPORT):
        return []
    today = scheduling.local_day(session, datetime.now(UTC))
    out = []
    for x in r.diagnoses:
        hit = case_reporting.notifiable_icd10(str(x.get("code", "")), today)
        if hit is not None:
            query = urlencode({"patient_id": r.patient_id, "icd10": x["code"], "source": f"referral:{r.id}"})
            out.append({"code": x["code"], "name": x.get("name", ""), "disease": hit[0].zh,
                        "href": f"/surveillance/cards/new?{query}"})
    return out


def _page(request: Request, session: Session, actor: Actor, referral_id: int, *, back_form: BackForm | None = None,
          error: Any = None) -> HTMLResponse:
    r = ref_desk.get_referral(session, actor, referral_id)
    can = actions(session, actor, r)
    slots, slot_doctors, slot_error = (places_of(session, actor, r.to_org_id, r.to_department_id, None)
                                       if can & {"accept", "schedule"} else ([], {}, None))
    # The sender is the form's first choice (an empty value: the service's default).
    lang = page_language(request)
    back_orgs = [(key, [(o, n) for o, n in group if o != r.from_org_id])
                 for key, group in receiving_orgs(session, r.to_org_id, lang)] if "back" in can else []
    return render(
        request, "referrals/detail.html", error.status if error else 200, r=r, can=can, slots=slots,
        slot_doctors=slot_doctors, slot_error=error_view(request, slot_error) if slot_error else None,
        doctors=doctors_of(session, r.to_org_id, r.to_department_id) if "accept" in can else [],
        back_orgs=back_orgs, back=back_form or BackForm(), error=error, asked=_asked_place(session, actor, r),
        back_to_name=back_to_name(session, r) if r.times.get("back_referred_at") else "",
        redirect_orgs=receiving_orgs(session, r.from_org_id, lang) if "redirect" in can else [],
        case_reports=case_reports(session, actor, r))


@router.get("/referrals/{referral_id}", response_class=HTMLResponse)
def detail(request: Request, session: SessionDep, actor: ActorDep, referral_id: RowId) -> HTMLResponse:
    return _page(request, session, actor, referral_id)


@router.get("/referrals/{referral_id}/print", response_class=HTMLResponse)
def print_view(request: Request, session: SessionDep, actor: ActorDep, referral_id: RowId) -> HTMLResponse:
    """The paper form, audited as a print of the referral; the patient's sex, age and address
    come from their record, itself an audited view."""
    r = ref_desk.get_referral(session, actor, referral_id, printing=True)
    try:
        patient = patients.get_patient(session, actor, r.patient_id)
    except HealthGridError:
        patient = None  # the form prints without what the viewer may not read
    return render(request, "referrals/print.html", r=r, patient=patient, back_to_name=back_to_name(session, r),
                  back_issued=r.times.get("back_referred_at") is not None)


def _done(request: Request, view: ReferralView, action: str) -> Response:
    return redirect(request, f"/referrals/{view.id}", m=f"ref.flash.{action.replace('-', '_')}", code=view.code)


def _run(request: Request, referral_id: int, action: str, call: Callable[[], ReferralView]) -> Response:
    try:
        view = call()
    except HealthGridError as exc:
        return fail(request, f"/referrals/{referral_id}", exc)
    return _done(request, view, action)


@router.post("/referrals/{referral_id}/accept")
def accept(request: Request, session: SessionDep, actor: ActorDep, referral_id: RowId, version: Small = "",
           slot_id: Small = "", to_practitioner_id: Small = "") -> Response:
    return _run(request, referral_id, "accept", lambda: ref_workflow.accept_referral(
        session, actor, referral_id, slot_id=parse_id(slot_id), to_practitioner_id=parse_id(to_practitioner_id),
        expected_version=parse_version(version)))


@router.post("/referrals/{referral_id}/schedule")
def schedule(request: Request, session: SessionDep, actor: ActorDep, referral_id: RowId, version: Small = "",
             slot_id: Small = "") -> Response:
    return _run(request, referral_id, "schedule", lambda: ref_workflow.schedule_referral(
        session, actor, referral_id, slot_id=parse_id(slot_id), expected_version=parse_version(version)))


@router.post("/referrals/{referral_id}/reject")
def reject(request: Request, session: SessionDep, actor: ActorDep, referral_id: RowId, version: Small = "",
           reason: Text = "") -> Response:
    return _run(request, referral_id, "reject", lambda: ref_workflow.reject_referral(
        session, actor, referral_id, reason=reason, expected_version=parse_version(version)))


@router.post("/referrals/{referral_id}/cancel")
def cancel(request: Request, session: SessionDep, actor: ActorDep, referral_id: RowId, version: Small = "",
           reason: Text = "") -> Response:
    return _run(request, referral_id, "cancel", lambda: ref_workflow.cancel_referral(
        session, actor, referral_id, reason=reason, expected_version=parse_version(version)))


@router.post("/referrals/{referral_id}/followup")
def followup(request: Request, session: SessionDep, actor: ActorDep, referral_id: RowId, version: Small = "",
             outcome: Text = "") -> Response:
    return _run(request, referral_id, "followup", lambda: ref_workflow.record_followup(
        session, actor, referral_id, outcome=outcome, expected_version=parse_version(version)))


@router.post("/referrals/{referral_id}/close")
def close(request: Request, session: SessionDep, actor: ActorDep, referral_id: RowId, version: Small = "",
          note: Text = "") -> Response:
    return _run(request, referral_id, "close", lambda: ref_workflow.close_referral(
        session, actor, referral_id, note=note, expected_version=parse_version(version)))


@router.post("/referrals/{referral_id}/redirect")
def redirect_to(request: Request, session: SessionDep, actor: ActorDep, referral_id: RowId,
                to_org_id: Small = "") -> Response:
    """The centre stays on the old referral (the new one is between the sender and the new
    receiver); the notice names the new one."""
    back = f"/referrals/{referral_id}"
    try:
        target = parse_id(to_org_id)
        if target is None:
            raise Invalid("REF-005", "to_org_id: choose where to redirect", {"field": "to_org_id"})
        view = ref_workflow.redirect_referral(session, actor, referral_id, to_org_id=target)
    except HealthGridError as exc:
        return fail(request, back, exc)
    return redirect(request, back, m="ref.flash.redirect", code=view.code)


@router.post("/referrals/{referral_id}/back", response_class=HTMLResponse)
def back_refer(request: Request, session: SessionDep, actor: ActorDep, referral_id: RowId,
               form: Annotated[BackForm, Form()]) -> Response:
    """回转: the form comes back with what was typed and the coded error when refused."""
    clinical = {"condition_stable": form.condition_stable == "1",
                "diagnosis_confirmed": form.diagnosis_confirmed == "1",
                **{k: getattr(form, k).strip() for k in ("sbp", "dbp") if getattr(form, k).strip()}}
    data = ref_workflow.BackReferralIn(diagnosis=form.diagnosis, results=form.results, treatment=form.treatment,
                                  plan=form.plan, rehab=form.rehab, inpatient_no=form.inpatient_no,
                                  to_org_id=parse_id(form.to_org_id), clinical=clinical)
    try:
        view = ref_workflow.back_refer(session, actor, referral_id, data, expected_version=parse_version(form.version))
    except HealthGridError as exc:
        return _page(request, session, actor, referral_id, back_form=form, error=error_view(request, exc))
    return _done(request, view, "back")


@router.post("/referrals/{referral_id}/{action}")
def move(request: Request, session: SessionDep, actor: ActorDep, referral_id: RowId, action: str,
         version: Small = "") -> Response:
    call = SIMPLE.get(action)
    if call is None:
        raise NotFound("HG-404", f"no referral action {action!r}")
    return _run(request, referral_id, action, lambda: call(session, actor, referral_id,
                                                           expected_version=parse_version(version)))
