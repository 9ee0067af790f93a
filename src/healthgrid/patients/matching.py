"""Finding the existing records a registration may belong to: deterministic on identifiers,
then probabilistic over a few small blocks (never a scan of the index).

Blocks, each one indexed equality on either database (models.Patient's indexes):
  - same birth date (and the day/month-swapped date): ~30–60 records at a million residents;
  - same name key (toneless pinyin: 晓明 = 小明) and birth year: catches other date errors;
  - same phone (blind index): catches a name typo or a missing birth date;
  - same name key and village: catches an elderly resident known only by name and village.
Candidates are scored with the Fellegi–Sunter model of ``domain.MatchModel``.

Source: ../shared/specs/domain-rules.md §10.2 (EMPI matching rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, select, union
from sqlalchemy.orm import Session

from ..config import PatientSettings
from ..security import ALL_SETTINGS_KEY
from . import domain as d
from .models import Patient, PatientIdentifier


@dataclass(frozen=True)
class Probe:
    """A registration as the matcher sees it: blocking keys and the compared fields."""

    record: d.MatchRecord
    name_key: str
    birth_year: int | None


@dataclass(frozen=True)
class Candidate:
    patient_id: int
    comparison: d.Comparison


def patient_settings(session: Session) -> PatientSettings:
    settings = session.info.get(ALL_SETTINGS_KEY)
    return settings.patients if settings is not None else PatientSettings()


def model_for(session: Session) -> d.MatchModel:
    cfg = patient_settings(session)
    return d.MatchModel(thresholds=d.Thresholds(link=cfg.link_threshold, review=cfg.review_threshold,
                                                prior=cfg.prior))


def find_by_identifiers(session: Session, keys: Sequence[tuple[str, int, str]]) -> dict[tuple[str, int], int]:
    """(kind, assigner, blind index) -> the patient holding it, for those that exist."""
    found: dict[tuple[str, int], int] = {}
    for kind, assigner, bidx in keys:
        pid = session.scalar(select(PatientIdentifier.patient_id).where(
            PatientIdentifier.kind == kind, PatientIdentifier.assigner == assigner,
            PatientIdentifier.value_bidx == bidx))
        if pid is not None:
            found[(kind, assigner)] = pid
    return found


def candidates(session: Session, probe: Probe, *, exclude: int | None = None) -> list[Candidate]:
    """The active records in the probe's blocks, best first, scored."""
    ids = _blocked_ids(session, probe, patient_settings(session).max_candidates)
    ids.discard(exclude)
    if not ids:
        return []
    rows = session.execute(select(Patient).where(Patient.id.in_(ids), Patient.replaced_by.is_(None))).scalars()
    patients = list(rows)
    id_keys = dict(session.execute(select(PatientIdentifier.patient_id, PatientIdentifier.value_bidx).where(
        PatientIdentifier.patient_id.in_([p.id for p in patients]),
        PatientIdentifier.kind == d.IdentifierKind.RESIDENT_ID.value)).all())
    model = model_for(session)
    scored = [Candidate(p.id, model.compare(probe.record, as_match_record(p, id_keys.get(p.id))))
              for p in patients]
    scored.sort(key=lambda c: c.comparison.weight, reverse=True)
    return scored


def as_match_record(p: Patient, id_key: str | None) -> d.MatchRecord:
    return d.MatchRecord(name=p.name, pinyin=p.name_key, sex=p.sex, birth_date=p.birth_date, id_key=id_key,
                         phone_key=p.phone_bidx, village_id=p.division_id, township_id=p.township_id)


def _blocked_ids(session: Session, probe: Probe, limit: int) -> set[int]:
    r = probe.record
    blocks = []
    if r.birth_date is not None:
        dates: list[date] = [r.birth_date]
        swapped = d.swapped_day_month(r.birth_date)
        if swapped is not None:
            dates.append(swapped)
        blocks.append(select(Patient.id).where(Patient.birth_date.in_(dates)))
    if probe.name_key and probe.birth_year is not None:
        blocks.append(select(Patient.id).where(and_(Patient.name_key == probe.name_key,
                                                    Patient.birth_year == probe.birth_year)))
    if r.phone_key:
        blocks.append(select(Patient.id).where(Patient.phone_bidx == r.phone_key))
    if probe.name_key and r.village_id is not None:
        blocks.append(select(Patient.id).where(and_(Patient.name_key == probe.name_key,
                                                    Patient.division_id == r.village_id)))
    if probe.name_key and r.birth_date is None:
        blocks.append(select(Patient.id).where(Patient.name_key == probe.name_key))
    if not blocks:
        return set()
    stmt = union(*blocks) if len(blocks) > 1 else blocks[0]
    return set(session.scalars(select(stmt.subquery().c[0]).limit(limit)))
