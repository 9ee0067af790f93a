"""Referrals → FHIR R4: ``service_request_to_fhir`` (the referral as an order) and
``task_to_fhir`` (its workflow state), with the status maps both directions use. The
mapping decisions are listed in the package docstring (``referrals.fhir``)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .. import domain as d
from ..queries import ReferralView

BASE = "https://healthgrid.example/fhir"
REFERRAL_SYSTEM = f"{BASE}/NamingSystem/referral"  # ZZ00000012; the scheduling adapter's basedOn uses it too
STATUS_SYSTEM = f"{BASE}/CodeSystem/referral-status"
DIRECTION_SYSTEM = f"{BASE}/CodeSystem/referral-direction"
REASON_SYSTEM = f"{BASE}/CodeSystem/referral-reason"
DEPARTMENT_SYSTEM = f"{BASE}/CodeSystem/department"  # the registry's department codes
INSURANCE_TYPE_SYSTEM = f"{BASE}/CodeSystem/insurance-type"
BACK_REFERRAL_SYSTEM = f"{BASE}/CodeSystem/back-referral"
# ICD-10 as the national clinical edition 2.0 (GB/T 14396) writes it: its extension codes
# (I10.x00x002, E11.900) are not WHO's, so they get a system of their own.
ICD10_CN_SYSTEM = f"{BASE}/CodeSystem/icd-10-cn"
ICD10_WHO_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
TASK_CODE_SYSTEM = "http://hl7.org/fhir/CodeSystem/task-code"
INSURANCE_EXTENSION = f"{BASE}/StructureDefinition/referral-insurance"
SENDER_EXTENSION = f"{BASE}/StructureDefinition/referring-organization"

S = d.Status
# R4 request-status. No referral state is entered-in-error: a cancellation, a refusal, an
# expiry and a no-show all end a request that was real, so they are revoked.
REQUEST_STATUS: dict[d.Status, str] = {
    S.DRAFT: "draft",
    **dict.fromkeys((S.SUBMITTED, S.ACCEPTED, S.SCHEDULED, S.ARRIVED, S.IN_CARE), "active"),
    **dict.fromkeys((S.COMPLETED, S.BACK_REFERRED, S.RECEIVED_BY_PRIMARY, S.FOLLOWED_UP, S.CLOSED), "completed"),
    **dict.fromkeys((S.REJECTED, S.CANCELLED, S.EXPIRED, S.NO_SHOW), "revoked"),
}
# R4 task-status of the receiving facility's task: receive the patient, treat, refer back.
TASK_STATUS: dict[d.Status, str] = {
    S.DRAFT: "draft",
    S.SUBMITTED: "requested",
    **dict.fromkeys((S.ACCEPTED, S.SCHEDULED), "accepted"),
    **dict.fromkeys((S.ARRIVED, S.IN_CARE), "in-progress"),
    **dict.fromkeys((S.COMPLETED, S.BACK_REFERRED, S.RECEIVED_BY_PRIMARY, S.FOLLOWED_UP, S.CLOSED), "completed"),
    S.REJECTED: "rejected",
    S.CANCELLED: "cancelled",
    **dict.fromkeys((S.EXPIRED, S.NO_SHOW), "failed"),
}
PRIORITY = {d.Urgency.ROUTINE: "routine", d.Urgency.URGENT: "urgent", d.Urgency.EMERGENCY: "stat"}
INSURANCE_LABELS = {"employee": "职工医保", "resident": "城乡居民医保", "new_rural": "新农合", "self_pay": "自费",
                    "other": "其他"}
# The back-referral form (双向转诊(回转)单), field by field, as Task.output.
BACK_FIELDS = (("back_diagnosis", "diagnosis", "诊断结果"), ("back_inpatient_no", "inpatient-no", "住院病案号"),
               ("back_results", "results", "主要检查结果"), ("back_treatment", "treatment", "治疗经过"),
               ("back_plan", "plan", "下一步治疗方案"), ("back_rehab", "rehab", "康复建议"))
# The referral-out form's texts (双向转诊(转出)单), as ServiceRequest.note.
NOTE_FIELDS = (("reason_text", "转诊原因"), ("present_illness", "主要现病史"), ("past_history", "主要既往史"),
               ("treatment", "治疗经过"))
ATTACHMENT_TYPES = {"lab_report": "DiagnosticReport", "imaging_report": "DiagnosticReport",
                    "record_summary": "DocumentReference", "discharge_summary": "DocumentReference",
                    "other": "DocumentReference"}
_WHO_CODE = re.compile(r"^[A-Z][0-9]{2}(\.[0-9])?$")  # a code of WHO's own shape means the same there
_LITERAL = re.compile(r"^[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}$")  # Type/id


def instant(at: datetime | None, tz: ZoneInfo) -> str | None:
    # Local offsets (+08:00), as the scheduling adapter writes them.
    return at.astimezone(tz).isoformat() if at else None


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"system": system, "code": code, "display": display}


def _ref(rtype: str, rid: int | None, display: str | None = None) -> dict[str, Any] | None:
    return {"reference": f"{rtype}/{rid}", "display": display} if rid else None


def requester(view: ReferralView) -> dict[str, Any] | None:
    """The referring doctor; the sending facility when the form names none."""
    return (_ref("Practitioner", view.from_practitioner_id, view.from_practitioner_name)
            or _ref("Organization", view.from_org_id, view.from_org_name))


def status_label(status: str) -> str:
    return d.STATUS_LABELS[d.Status(status)][0]


def _diagnosis(item: dict[str, Any]) -> dict[str, Any]:
    code, name = item["code"], item.get("name")
    codings = [coding(ICD10_CN_SYSTEM, code, name)]
    if _WHO_CODE.match(code):
        codings.append(coding(ICD10_WHO_SYSTEM, code, name))
    return {"coding": codings, "text": name}


def _attachment(item: dict[str, Any]) -> dict[str, Any]:
    """A shared result: a literal reference when the form holds one (DiagnosticReport/7),
    else a logical one by identifier (a result id, an imaging study UID)."""
    ref, title = item["ref"], item.get("title")
    if _LITERAL.match(ref):
        return {"reference": ref, "display": title}
    return {"type": ATTACHMENT_TYPES.get(item.get("kind", ""), "DocumentReference"),
            "identifier": {"value": ref}, "display": title}


def _insurance(form: dict[str, str | None]) -> dict[str, Any] | None:
    kind, region = form.get("insurance_type"), form.get("insurance_region")
    if not kind and not region:
        return None
    parts = [{"url": "type", "valueCoding": coding(INSURANCE_TYPE_SYSTEM, kind, INSURANCE_LABELS.get(kind))}
             if kind else None,
             {"url": "region", "valueString": region} if region else None]
    return {"url": INSURANCE_EXTENSION, "extension": parts}


def _notes(view: ReferralView) -> list[dict[str, Any]]:
    return [{"text": f"{label}：{view.form[key]}"} for key, label in NOTE_FIELDS if view.form.get(key)]


def _performer_type(view: ReferralView, department_code: str | None) -> dict[str, Any] | None:
    if not view.to_department_name:
        return None
    codings = [coding(DEPARTMENT_SYSTEM, department_code, view.to_department_name)] if department_code else []
    return {"coding": codings, "text": view.to_department_name}


def service_request_to_fhir(view: ReferralView, tz: ZoneInfo, department_code: str | None) -> dict[str, Any]:
    direction = d.DIRECTION_LABELS[d.Direction(view.direction)][0]
    reason_code = view.form.get("reason_code")
    return {
        "resourceType": "ServiceRequest",
        "id": str(view.id),
        "meta": {"versionId": str(view.version)},
        "extension": [_insurance(view.form),
                      {"url": SENDER_EXTENSION, "valueReference": _ref("Organization", view.from_org_id,
                                                                       view.from_org_name)}],
        "identifier": [{"type": {"coding": [coding(V2_0203, "PLAC", "Placer Identifier")], "text": "转诊单号"},
                        "system": REFERRAL_SYSTEM, "value": view.code}],
        "replaces": [_ref("ServiceRequest", view.previous_id)],
        "status": REQUEST_STATUS[d.Status(view.status)],
        "intent": "order",
        "category": [{"coding": [coding(SNOMED, "3457005", "Patient referral")], "text": "双向转诊"},
                     {"coding": [coding(DIRECTION_SYSTEM, view.direction, direction)], "text": direction}],
        "priority": PRIORITY[d.Urgency(view.urgency)],
        "subject": _ref("Patient", view.patient_id, view.patient_name),
        "occurrenceDateTime": instant(view.scheduled_for, tz),
        "authoredOn": instant(view.times.get("submitted_at") or view.times.get("created_at"), tz),
        "requester": requester(view),
        "performerType": _performer_type(view, department_code),
        "performer": [_ref("Organization", view.to_org_id, view.to_org_name),
                      _ref("Practitioner", view.to_practitioner_id, view.to_practitioner_name)],
        "reasonCode": [_diagnosis(x) for x in view.diagnoses]
        + ([{"coding": [coding(REASON_SYSTEM, reason_code)], "text": reason_code}] if reason_code else []),
        "supportingInfo": [_attachment(x) for x in view.attachments],
        "note": _notes(view),
    }


# -- Task ----------------------------------------------------------------------------------------

def _last_modified(view: ReferralView) -> datetime | None:
    stamps = [t for t in (*view.times.values(), view.escalated_at) if t is not None]
    return max(stamps) if stamps else None


def _execution(view: ReferralView, tz: ZoneInfo) -> dict[str, Any]:
    """From acceptance to the end of care (or to the cancellation or no-show that ended it)."""
    t = view.times
    end = t.get("completed_at") or t.get("cancelled_at") or t.get("no_show_at")
    return {"start": instant(t.get("accepted_at"), tz), "end": instant(end, tz) if t.get("accepted_at") else None}


def _status_reason(view: ReferralView) -> dict[str, Any] | None:
    text = view.form.get("reject_reason") or view.form.get("cancel_reason")
    return {"text": text} if text else None


def _outputs(view: ReferralView) -> list[dict[str, Any]]:
    out = [{"type": {"coding": [coding(BACK_REFERRAL_SYSTEM, code, label)], "text": label},
            "valueString": view.form[key]} for key, code, label in BACK_FIELDS if view.form.get(key)]
    if view.back_to_org_id:
        out.append({"type": {"coding": [coding(BACK_REFERRAL_SYSTEM, "back-to", "回转至")], "text": "回转至"},
                    "valueReference": _ref("Organization", view.back_to_org_id)})
    if view.appointment_id:
        out.insert(0, {"type": {"text": "预约"}, "valueReference": _ref("Appointment", view.appointment_id)})
    return out


def task_to_fhir(view: ReferralView, tz: ZoneInfo) -> dict[str, Any]:
    focus = _ref("ServiceRequest", view.id)
    due = instant(view.accept_due_at, tz)
    return {
        "resourceType": "Task",
        "id": str(view.id),
        "meta": {"versionId": str(view.version)},
        "basedOn": [focus],
        "status": TASK_STATUS[d.Status(view.status)],
        "statusReason": _status_reason(view),
        "businessStatus": {"coding": [coding(STATUS_SYSTEM, view.status, status_label(view.status))],
                           "text": status_label(view.status)},
        "intent": "order",
        "priority": PRIORITY[d.Urgency(view.urgency)],
        "code": {"coding": [coding(TASK_CODE_SYSTEM, "fulfill", "Fulfill the focal request")], "text": "接诊转诊"},
        "focus": focus,
        "for": _ref("Patient", view.patient_id, view.patient_name),
        "executionPeriod": _execution(view, tz),
        "authoredOn": instant(view.times.get("submitted_at") or view.times.get("created_at"), tz),
        "lastModified": instant(_last_modified(view), tz),
        "requester": requester(view),
        "owner": _ref("Organization", view.to_org_id, view.to_org_name),
        "restriction": {"period": {"end": due}} if due else None,
        "output": _outputs(view),
    }
