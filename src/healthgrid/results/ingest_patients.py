"""Whose result is it: a message's patient resolved through the master patient index.

Every patient a message names goes through ``patients.service.register_patient`` at the issuing
organisation with the message's demographics and identifiers (the resident ID links
deterministically; the issuer's record number links to the record it was first given to;
otherwise the index scores candidates and either links, or makes a new record and queues the
doubtful pairs for the stewards' review — the "review queue" of WS/T 448-2014 EMPI). The result
is never held back: it is stored against the record the index answers, and the report says
``outcome`` (created | linked | review), the review ids and a RES-212 warning, so the sender
and the stewards both see it.

The facility's integration token holds ``results.submit``, not ``patient.write``: having
checked the first for the issuing organisation, the pipeline registers as the platform on the
sender's behalf (``ingest_actor``: a system actor carrying the sender's user id and name, so
the index's own audit rows say who sent it).

A message naming an existing record (FHIR ``Patient/<id>``) is checked to exist and resolved to
the record standing for it now (merges). Within one run the same demographics at the same
issuer give the same answer, so they are registered once (``Run.patients``).

ADT^A01/A04/A08 go the same way: an A08 ("update patient information") adds the identifiers it
brings and fills what the record lacks, but never overwrites the index's demographics — one
hospital's registration desk does not rewrite the region's master record; a real change of name
or birth date is the stewards' (patients.service.update_patient).

A phone or address the index refuses does not refuse a result: it is dropped, with a RES-215
warning. An identity the index refuses (a resident ID with a wrong check digit, a name it
cannot read, identifiers of two different patients) refuses the message: RES-195.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from ..errors import HealthGridError, NotFound
from ..patients import service as patients
from ..security.domain import Actor
from .intake import PatientItem, Problem

SOFT_FIELDS = {"phone": "phone", "address_line": "address"}  # refused → dropped with a warning
_FIELD_NAMES = {"resident_id": "identifier (resident ID)", "mrn": "identifier (record number)",
                "health_card": "identifier (health card)", "insurance": "identifier (insurance)",
                "name": "name", "birth_date": "birthDate", "sex": "gender"}


@dataclass(frozen=True)
class Resolved:
    patient_id: int
    outcome: str  # created | linked | review | existing
    matched_by: str | None = None
    reviews: tuple[int, ...] = ()
    warnings: tuple[Problem, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"patient_id": self.patient_id, "outcome": self.outcome, "matched_by": self.matched_by,
                "reviews": list(self.reviews)}


def ingest_actor(actor: Actor) -> Actor:
    """The platform registering on the sender's behalf (its permission was checked first)."""
    if actor.system:
        return actor
    return Actor(user_id=actor.user_id, username=f"results-ingest:{actor.username}"[:100], surface=actor.surface,
                 client=actor.client, purpose="HOPERAT", system=True, mfa=True)


def resolve_patient(session: Session, actor: Actor, item: PatientItem, *, org_id: int, cache: dict,
                    today: date) -> Resolved:
    """The record a message's patient stands for; raises ``Refused`` with RES-195/RES-198."""
    if item.patient_id is not None:
        try:
            return Resolved(patients.resolve_patient_id(session, item.patient_id), "existing")
        except NotFound:
            raise Refused(Problem("RES-198", f"Patient/{item.patient_id} is not known here", item.where,
                                  "reference")) from None
    if not (item.name or "").strip():  # a reference by resident ID alone: the patient must be known
        found_id = patients.patient_of_id_number(session, item.resident_id or "")
        if found_id is None:
            raise Refused(Problem("RES-189", "no patient with this resident ID is registered, and without a name"
                                  " the index cannot register one", item.where, "identifier"))
        return Resolved(found_id, "existing", "resident_id")
    key = (org_id, item.key())
    found = cache.get(key)
    if found is not None:
        return replace(found, outcome="linked" if found.outcome != "existing" else found.outcome, warnings=())
    resolved = _register(session, actor, item, org_id=org_id, today=today)
    cache[key] = resolved
    return resolved


def _register(session: Session, actor: Actor, item: PatientItem, *, org_id: int, today: date) -> Resolved:
    data = patients.PatientIn(name=item.name or "", sex=item.sex, birth_date=item.birth_date,
                              resident_id=item.resident_id, health_card=item.health_card, insurance=item.insurance,
                              mrn=item.mrn, phone=item.phone, address_line=item.address)
    warnings: list[Problem] = []
    for _ in range(len(SOFT_FIELDS) + 1):
        try:
            with session.begin_nested():
                reg = patients.register_patient(session, ingest_actor(actor), org_id=org_id, data=data, today=today)
            break
        except HealthGridError as exc:
            field = str((exc.detail or {}).get("field", "")) or _field_in(exc.message)
            if field in SOFT_FIELDS and getattr(data, field):
                warnings.append(Problem("RES-215", f"the patient index refused the {SOFT_FIELDS[field]}"
                                        f" ({exc.code}: {exc.message}); the result is kept without it",
                                        item.where, SOFT_FIELDS[field], warning=True))
                data = replace(data, **{field: None})
                continue
            shown = _FIELD_NAMES.get(field, field or "patient")
            raise Refused(Problem("RES-195", f"the patient index refused the patient ({exc.code}: {exc.message})",
                                  item.where, shown)) from None
    if reg.outcome == "review":
        warnings.append(Problem("RES-212", f"the patient matched existing records only doubtfully: a new record"
                                f" (Patient/{reg.patient.id}) holds the result and {len(reg.reviews)} pair(s) wait"
                                f" in the patient index's review queue ({', '.join(map(str, reg.reviews))})",
                                item.where, "identifier", warning=True))
    return Resolved(reg.patient.id, reg.outcome, reg.matched_by, tuple(reg.reviews), tuple(warnings))


def _field_in(message: str) -> str:
    found = re.match(r"^([a-z_]+): ", message)
    return found.group(1) if found else ""


class Refused(Exception):
    """A message refused for a coded problem found while writing it."""

    def __init__(self, *problems: Problem):
        super().__init__(problems[0].message if problems else "refused")
        self.problems = list(problems)
