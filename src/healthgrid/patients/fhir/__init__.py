"""FHIR R4 Patient of the master patient index: read, search, create, update and
``$match``, bound to ``service`` — which checks access, masks and audits; this package only
maps (the HAPI provider split): ``mapping`` (Patient ↔ FHIR) and ``provider``
(``PatientProvider`` and ``$match``). Mapping decisions, made once here:

- identifier: our naming systems under ``https://healthgrid.example/fhir/NamingSystem/``:
  ``resident-id`` (GB 11643 number), ``health-card`` (电子健康卡), ``insurance`` (医保号) and
  ``mrn/<organisation code>`` (a facility's 病案号, with ``assigner`` = that Organization).
  ``type`` is coded in v2-0203: ``NI`` for the resident ID (v2's ``NNCHN`` pattern is not a
  concept of terminology.hl7.org's CodeSystem, so validators would reject it; ``NNCHN`` is
  still understood on input), ``HC``, ``SN`` (the insured person is the subscriber) and ``MR``.
  Values are masked (``110105********002X``) for readers without ``pii.unmasked``; the
  resource then carries the v3-ObservationValue ``MASKED`` label in ``meta.security``.
- name: the Chinese name in characters and, as a second official HumanName, its pinyin;
  ISO 21090's EN representation extension tells them apart (``IDE`` ideographic, ``ABC``
  alphabetic) since R4's HumanName has no script element. family/given split on the
  surname (复姓 kept whole); names with a middle dot (transliterated) carry text only.
- address: home address; ``text`` = division path + street line (the line only unmasked),
  ``state``/``city``/``district`` = province/city/county, and the division itself as an
  extension referring to the registry's jurisdiction ``Location/div-<code>``. On input the
  division comes from that extension and the street from ``line`` (or ``text`` when there
  is neither); the other parts are derived and ignored.
- contact: next of kin, relationship coded twice: v2-0131 ``N`` and v3-RoleCode (SPS, PRN,
  CHILD, SIB, GRPRN, GRNDCHILD; "other" has text only).
- link: ``replaced-by`` on a merged-away record (read returns it as is, active false),
  ``replaces`` on the survivor. ``active`` and ``link`` are server-managed and ignored on
  input: only a merge changes them.
- search results come from the index's masked summaries: name, resident ID, phone, sex,
  birth date and place, tagged ``SUBSETTED``; read a record for all of it. The index does
  not count matches, so the Bundle has no total while there are more pages (follow next).
- create: links to the record that already stands for the resident when the index finds
  one — then 200 OK with that record, as R4 http.html#ccreate answers a conditional create
  that matched; otherwise 201. ``X-HealthGrid-Outcome: created | linked | review`` says which.
  The registering facility is ``managingOrganization``, else the user's own organisation.
- update: replace-semantics of FHIR for demographics; identifiers are added (a national one
  replaces its kind), never removed; a record number is written only for the writing
  facility (others' numbers in the body are left as stored). Masked values cannot be
  written back: a body labelled MASKED, or any value with ``*``, is refused.
- refusals, 422 with a stable code, nothing written: what the index does not keep (PAT-070:
  an element such as maritalStatus, gender ``other``, a partial birthDate, an email, a
  second phone or address), a masked value (PAT-071), an identifier it cannot place
  (PAT-072: a foreign system, a second resident ID, another facility's record number on
  create), a reference to nothing known (PAT-073); the service's own codes otherwise.
"""

from ...fhir import FhirRegistry
from .mapping import (
    DIVISION_EXTENSION,
    HEALTH_CARD_SYSTEM,
    INSURANCE_SYSTEM,
    MATCH_GRADE,
    MRN_SYSTEM,
    RESIDENT_ID_SYSTEM,
    from_fhir,
    patient_to_fhir,
    summary_to_fhir,
)
from .provider import OUTCOME_HEADER, PatientProvider

__all__ = ["DIVISION_EXTENSION", "HEALTH_CARD_SYSTEM", "INSURANCE_SYSTEM", "MATCH_GRADE", "MRN_SYSTEM",
           "OUTCOME_HEADER", "RESIDENT_ID_SYSTEM", "PatientProvider", "from_fhir", "patient_to_fhir", "register",
           "summary_to_fhir"]


def register(registry: FhirRegistry) -> None:
    registry.register(PatientProvider())
