"""FHIR R4 ServiceRequest and Task of the referrals context (双向转诊): read and search, no
writes (referrals are sent and answered through the API and the web pages). Bound to
``desk.get_referral`` / ``desk.search_referrals``, which check access, mask the
patient's name and audit; this package only maps: ``mapping`` (views → FHIR), ``search``
(parameters → ``ReferralQuery``) and ``provider``. Mapping decisions, made once here:

- One referral is two resources with the same id: ServiceRequest/<id> (what is asked) and
  Task/<id> (how far it has got), Task.focus and basedOn → the ServiceRequest.
- ServiceRequest: identifier the referral number (``NamingSystem/referral|ZZ00000012``,
  type PLAC; Appointment.basedOn uses the same system); intent ``order``; category SNOMED
  CT 3457005 "Patient referral" (text 双向转诊) plus the direction (``referral-direction``
  up / down / lateral, 上转 / 下转 / 平转); priority routine / urgent / ``stat`` for an
  emergency (紧急); subject ``Patient/<id>`` (the name masked as the service returns it);
  authoredOn the submission time (creation for a draft); occurrenceDateTime the reserved
  place's time; replaces the referral it was redirected from; meta.versionId the row's
  version.
- status (R4 request-status): draft → draft; submitted … in_care → active; completed,
  back_referred, received_by_primary, followed_up, closed → completed (what was asked was
  done; the back-referral is the Task's output); rejected, cancelled, expired, no_show →
  revoked. ``entered-in-error`` is never used: each of those ends a request that was real,
  and our statuses do not record a referral sent by mistake. The exact status is the
  Task's businessStatus.
- requester the referring doctor ``Practitioner/<id>``, or ``Organization/<id>`` when the
  form names no doctor (R4 allows both). R4 has no element for the requester's
  organisation besides, so the sending facility is the ``referring-organization``
  extension. performer: the receiving ``Organization/<id>`` (allowed for
  ServiceRequest.performer, unlike Appointment's actors, so no Location/site-<org> here)
  and the receiving doctor; performerType the receiving department (registry department
  codes).
- reasonCode: each diagnosis in ``CodeSystem/icd-10-cn`` — the national clinical edition
  2.0 (GB/T 14396), whose extension codes (I10.x00x002) WHO's ICD-10 does not have — and,
  when the code has WHO's own shape (I10, E11.9), also in ``http://hl7.org/fhir/sid/icd-10``;
  the form's reason code, if any, in ``referral-reason``. note: the form's texts, each
  prefixed with its label (转诊原因, 主要现病史, 主要既往史, 治疗经过). supportingInfo: the
  attachments — a literal reference when the form holds ``Type/id``, else a logical
  reference by identifier with the type its kind implies (DiagnosticReport,
  DocumentReference).
- Insurance: ServiceRequest.insurance takes Reference(Coverage | ClaimResponse) and the
  platform keeps no Coverage; what the form records (insurance type, 参保地 region code)
  is the ``referral-insurance`` extension (type: ``insurance-type`` coding, region: string).
- Task: status (R4 task-status) draft, requested (submitted), accepted (accepted,
  scheduled), in-progress (arrived, in_care), completed (completed and after), rejected,
  cancelled, failed (expired, no_show); businessStatus our status code and its label
  (``referral-status``); intent order; code ``fulfill``; for the Patient; owner the
  receiving organisation for the whole life of the referral (the primary-care follow-up
  after a back-referral shows in businessStatus); requester as the ServiceRequest's;
  authoredOn, lastModified (the latest of the referral's times); executionPeriod from
  acceptance to the end of care (or the cancellation / no-show); statusReason the
  rejection or cancellation reason; restriction.period.end the acceptance deadline (SLA);
  output the booked Appointment, the back-referral form's fields (``back-referral``:
  diagnosis, inpatient-no, results, treatment, plan, rehab) as strings and the
  organisation referred back to.
- Times are instants with the hospitals' offset (+08:00).
- Search (both): ``_id``, patient (and subject), requester (Practitioner: by the doctor;
  Organization: every referral the facility sent), priority, status (OR-lists allowed),
  and the sending day — ServiceRequest ``authored``, Task ``authored-on`` — in the
  hospitals' time zone with eq / ge / gt / le / lt (days, months, years; not times).
  ServiceRequest also ``identifier`` (the ZZ number) and ``performer``; Task ``owner``,
  ``focus`` / ``based-on`` and ``business-status``. ``_id``, identifier, focus and based-on
  name referrals and are not combined with the filters. Paging with ``_count`` /
  ``_offset``; the service does not count, so a Bundle has a total on its last page only.
- What a reader sees is the service's decision: a read it refuses is a 403
  OperationOutcome; a search lists the referrals in the reader's scope.
"""

from ...fhir import FhirRegistry
from .mapping import (
    INSURANCE_EXTENSION,
    REFERRAL_SYSTEM,
    SENDER_EXTENSION,
    STATUS_SYSTEM,
    service_request_to_fhir,
    task_to_fhir,
)
from .provider import ServiceRequestProvider, TaskProvider

__all__ = ["INSURANCE_EXTENSION", "REFERRAL_SYSTEM", "SENDER_EXTENSION", "STATUS_SYSTEM", "ServiceRequestProvider",
           "TaskProvider", "register", "service_request_to_fhir", "task_to_fhir"]


def register(registry: FhirRegistry) -> None:
    for provider in (ServiceRequestProvider(), TaskProvider()):
        registry.register(provider)
