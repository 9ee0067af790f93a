"""``ServiceRequestProvider`` and ``TaskProvider``: two views of one referral, read and
searched through ``ref_desk.get_referral`` / ``ref_desk.search_referrals``, which check
access, mask and audit. Each interaction is parse → one service call → map."""

from __future__ import annotations

from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ...errors import NotFound
from ...fhir import ID_PARAM, ParamType, ResourceProvider, SearchParamDef, SearchRequest, SearchResult
from ...registry import queries as registry_queries
from ...scheduling import service as scheduling
from .. import desk as ref_desk
from .. import domain as d
from ..queries import ReferralView
from .mapping import (
    REFERRAL_SYSTEM,
    REQUEST_STATUS,
    STATUS_SYSTEM,
    TASK_STATUS,
    service_request_to_fhir,
    task_to_fhir,
)
from .search import (
    apply_dates,
    apply_priority,
    apply_references,
    apply_statuses,
    by_ids,
    db_id,
    page,
    referral_ids,
    who,
)

DATE_PREFIXES = ("eq", "ge", "gt", "le", "lt")
PRIORITIES = ("routine", "urgent", "asap", "stat")
OUR_STATUSES = tuple(s.value for s in d.Status)


def _param(name: str, type_: ParamType, doc: str, **kw: Any) -> SearchParamDef:
    # One ReferralQuery per search: each parameter once; only statuses take an OR list.
    kw.setdefault("multiple_or", False)
    return SearchParamDef(name, type_, doc, repeatable=False, **kw)


def _authored(name: str) -> SearchParamDef:
    return SearchParamDef(name, ParamType.DATE, "The day the referral was sent (YYYY, YYYY-MM, YYYY-MM-DD in the "
                          "hospitals' time zone); repeat for a range (`ge2026-11-01&lt2026-12-01`).",
                          multiple_or=False, prefixes=DATE_PREFIXES)


COMMON = (
    ID_PARAM,
    _param("patient", ParamType.REFERENCE, "The patient referred.", targets=("Patient",)),
    _param("subject", ParamType.REFERENCE, "The patient referred (as patient).", targets=("Patient",)),
    _param("requester", ParamType.REFERENCE, "The referring doctor (Practitioner/<id>), or the sending "
           "organisation (Organization/<id>: every referral it sent).", targets=("Practitioner", "Organization")),
    _param("priority", ParamType.TOKEN, "routine | urgent | stat (紧急).", codes=PRIORITIES),
)


class ReferralProvider(ResourceProvider):
    """What both resources share: read by id, search through one ReferralQuery."""

    performer_param: ClassVar[str]
    date_param: ClassVar[str]
    versioning = "versioned"

    def to_fhir(self, views: list[ReferralView], session: Session) -> list[dict[str, Any]]:
        raise NotImplementedError

    def read(self, session: Session, resource_id: str, actor: Any = None) -> dict[str, Any] | None:
        rid = db_id(resource_id)
        if rid is None:
            return None
        try:
            view = ref_desk.get_referral(session, who(actor), rid)
        except NotFound:
            return None
        return self.to_fhir([view], session)[0]

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        actor = who(request.actor)
        ids = referral_ids(request)
        if ids is not None:
            return by_ids(request, ids, lambda i: self.read(session, str(i), actor))
        query = ref_desk.ReferralQuery()
        apply_references(request, query, self.performer_param)
        apply_statuses(request, query, self.resource_type)
        apply_priority(request, query)
        apply_dates(request, query, self.date_param, _tz(session))
        rows, total, more = page(request, lambda off, lim: ref_desk.search_referrals(
            session, actor, query, offset=off, limit=lim))
        return SearchResult(total, self.to_fhir(rows, session), more)


def _tz(session: Session) -> ZoneInfo:
    return scheduling.tz_of(session)  # the hospitals' zone, one setting for the platform


class ServiceRequestProvider(ReferralProvider):
    resource_type = "ServiceRequest"
    performer_param = "performer"
    date_param = "authored"
    documentation = ("Referrals (双向转诊单) as orders: category SNOMED 3457005 Patient referral, the direction as a "
                     "second category, priority from the urgency, requester the referring doctor, performer the "
                     "receiving organisation and doctor, reasonCode the ICD-10 diagnoses, identifier the referral "
                     f"number ({REFERRAL_SYSTEM}|ZZ00000012). The workflow state is the Task of the same id. "
                     "Read-only: referrals are sent and answered through the API and the web pages.")
    search_params = COMMON + (
        _param("identifier", ParamType.TOKEN, f"The referral number ({REFERRAL_SYSTEM}|ZZ00000012)."),
        _param("performer", ParamType.REFERENCE, "The receiving organisation.", targets=("Organization",)),
        _param("status", ParamType.TOKEN, "draft | active | completed | revoked.",
               codes=tuple(dict.fromkeys(REQUEST_STATUS.values())) + ("on-hold", "entered-in-error", "unknown"),
               multiple_or=True),
        _authored("authored"),
    )

    def to_fhir(self, views: list[ReferralView], session: Session) -> list[dict[str, Any]]:
        tz = _tz(session)
        codes = registry_queries.department_codes(session, [v.to_department_id for v in views if v.to_department_id])
        return [service_request_to_fhir(v, tz, codes.get(v.to_department_id)) for v in views]


class TaskProvider(ReferralProvider):
    resource_type = "Task"
    performer_param = "owner"
    date_param = "authored-on"
    documentation = ("The workflow state of each referral: one Task per referral, with the ServiceRequest's id, "
                     "focus that ServiceRequest, owner the receiving organisation. status is R4's task-status; "
                     f"businessStatus our exact status ({STATUS_SYSTEM}); statusReason the reason of a rejection or "
                     "cancellation; restriction.period.end the acceptance deadline; output the appointment and the "
                     "back-referral (回转单) fields. Read-only.")
    search_params = COMMON + (
        _param("focus", ParamType.REFERENCE, "The referral's ServiceRequest.", targets=("ServiceRequest",)),
        _param("based-on", ParamType.REFERENCE, "The referral's ServiceRequest.", targets=("ServiceRequest",)),
        _param("owner", ParamType.REFERENCE, "The receiving organisation.", targets=("Organization",)),
        _param("status", ParamType.TOKEN, "draft | requested | accepted | in-progress | completed | rejected | "
               "cancelled | failed.", codes=tuple(dict.fromkeys(TASK_STATUS.values())) + (
                   "received", "ready", "on-hold", "entered-in-error"), multiple_or=True),
        _param("business-status", ParamType.TOKEN, f"Our status ({STATUS_SYSTEM}): " + " | ".join(OUR_STATUSES)
               + ".", codes=OUR_STATUSES, multiple_or=True),
        _authored("authored-on"),
    )

    def to_fhir(self, views: list[ReferralView], session: Session) -> list[dict[str, Any]]:
        tz = _tz(session)
        return [task_to_fhir(v, tz) for v in views]

