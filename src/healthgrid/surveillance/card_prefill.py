"""One click (首诊负责制: the diagnosing doctor reports, 传染病信息报告管理规范 2015): which
notifiable disease an ICD-10 diagnosis falls under, and a report card prefilled from the
patient index and that disease, with the reporting unit and doctor — what the referral page's
"填报传染病报告卡" link opens.

The patient is read through ``patients.get_patient`` (checked and audited as a view); the ID
number and phone are filled only for a reader who sees them unmasked (a masked number would
only have to be typed again). What the index does not hold — population group, case
classification, onset date, diagnosis time — the doctor fills in.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from ..db import transaction, utcnow
from ..errors import Invalid, NotFound
from ..patients import service as patients
from ..registry import queries as registry_queries
from ..security import access
from ..security.domain import Actor, AuditAction, Perm
from . import card_queries as q
from .card_fields import CardIn
from .cards import age_on, expected_belongs_to
from .catalogue import Disease, Subtype, load_catalogue


def notifiable_icd10(code: str, on: date) -> tuple[Disease, Subtype | None] | None:
    """The notifiable disease (and subtype) an ICD-10 code falls under on a day: the catalogue
    code that is the longest prefix of it (A09.900 → A09 其它感染性腹泻病; B18.1 → 0302 乙型肝炎);
    ties go to the fixed-threshold disease (J09: 人感染新亚型流感 before influenza), then to
    the subtype (A03 → 0401 细菌性痢疾)."""
    code = (code or "").strip().upper()
    best: tuple[tuple[int, bool, bool], Disease, Subtype | None] | None = None
    for disease in load_catalogue().valid_on(on) if code else []:
        for sub, codes in [(None, disease.icd10)] + [(s, s.icd10) for s in disease.subtypes]:
            for prefix in codes:
                if code.startswith(prefix.upper()):
                    rank = (len(prefix), bool(disease.rule("fixed_threshold", sub.code if sub else None)),
                            sub is not None)
                    if best is None or rank > best[0]:
                        best = (rank, disease, sub)
    return None if best is None else (best[1], best[2])


def _address_of(session: Session, patient: Any) -> tuple[str | None, str | None]:
    """The patient's current address (words, ≤50) and its code, down to the township."""
    division = registry_queries.divisions_by_ids(session, [patient.division_id])[0] if patient.division_id else None
    code = division.code if division is not None and division.level in ("township", "village") else None
    words = patient.address_line or "".join(patient.division_path[2:])
    return (words[:50] or None), code


def card_prefill(session: Session, actor: Actor, *, patient_id: int, icd10: str, org_id: int,
                 now: datetime | None = None) -> CardIn:
    """A card filled from the patient index (an audited view of the patient) and the disease
    the diagnosis falls under, with the reporting unit and doctor; SURV-308 if the ICD-10
    code is not notifiable."""
    now = now or utcnow()
    today = q.to_local(now).date()
    found = notifiable_icd10(icd10, today)
    if found is None:
        raise Invalid("SURV-308", f"icd10: {(icd10 or '')[:20]!r} is not a notifiable disease on"
                      f" {today.isoformat()}", {"field": "icd10"})
    disease, sub = found
    with transaction(session):
        access.check(session, actor, Perm.CASE_REPORT, AuditAction.VIEW, resource_type=q.RESOURCE, org_id=org_id,
                     audit_success=False)
        codes = q.org_codes(session, org_id)
        try:
            p = patients.get_patient(session, actor, patient_id)
        except NotFound as exc:
            raise Invalid("SURV-306", f"patient_id: patient {patient_id} is not in the patient index",
                          {"field": "patient_id"}) from exc
        address, code = _address_of(session, p)
        rid = None if p.masked else p.identifier("resident_id")
        age = age_on(p.birth_date, today) if p.birth_date is not None and p.birth_date <= today else None
        child = age is not None and (age[1] != "years" or age[0] <= 14)
        parent = next((k for k in p.kin if k.relationship == "parent"), None) if child else None
        return CardIn(
            patient_name=p.name, parent_name=parent.name if parent else None, id_number=rid,
            sex={"M": "1", "F": "2"}.get(p.sex), birth_date=p.birth_date,
            phone=None if p.masked else (p.phone or (parent.phone if parent else None)),
            current_address=address, current_address_code=code,
            belongs_to=expected_belongs_to(code, codes["report_area_code"]) if code else None,
            disease=disease.code, subtype=sub.code if sub else None,
            supplementary_card=disease.supplementary_card is not None,
            doctor=q.doctor_name(session, actor), fill_date=today, **codes)
