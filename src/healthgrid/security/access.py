"""Authorisation, decided in the service layer: may this actor do X on a record owned by
organisation O, or concerning patient P?

Order of the decision: the role must carry the permission (and an API token must include
it); then the record must be in the scope of a grant carrying it, or — for a patient — the
actor needs an active relationship (the patient themself, a relationship source registered
by a clinical context: encounter, referral, family-doctor contract, public-health task), or
a population role's scope covering the patient's facilities; otherwise a clinician may
break the glass with a stated reason, which is allowed, audited and flagged for review.
Every refusal raises ``Forbidden`` with a coded reason and is audited.

Source: ../shared/specs/domain-rules.md §10.4, "Purpose-based access".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..db import in_transaction, tx_cache
from ..errors import Forbidden, Invalid, Unauthorized
from ..registry import queries as registry_queries
from . import audit
from .domain import Actor, AuditAction, OrgPlace, Perm, ScopeKind, grant_covers

SETTINGS_KEY = "healthgrid_security_settings"
# Permissions on a patient's record: decided by relationship, not by facility scope alone.
PATIENT_PERMS = frozenset({Perm.PATIENT_READ, Perm.PATIENT_WRITE, Perm.SELF_RECORD})

# (session, actor, patient_id) -> a basis such as "referral" when the actor's organisation
# has an active relationship with the patient, else None. Clinical contexts register theirs.
RelationshipSource = Callable[[Session, Actor, int], str | None]
# (session, patient_id) -> ids of organisations holding the patient's records.
PatientOrgsSource = Callable[[Session, int], set[int]]
RELATIONSHIP_SOURCES: list[RelationshipSource] = []
PATIENT_ORGS_SOURCES: list[PatientOrgsSource] = []


def register_relationship_source(fn: RelationshipSource) -> None:
    if fn not in RELATIONSHIP_SOURCES:
        RELATIONSHIP_SOURCES.append(fn)


def register_patient_orgs_source(fn: PatientOrgsSource) -> None:
    if fn not in PATIENT_ORGS_SOURCES:
        PATIENT_ORGS_SOURCES.append(fn)


@dataclass(frozen=True)
class Access:
    basis: str  # scope | self | relationship:<kind> | population | break_glass | system
    flagged: bool = False


def org_place(session: Session, org_id: int) -> OrgPlace | None:
    """Where an organisation sits; looked up once per transaction (a booking asks twice:
    whether the actor books there, then the audited check)."""
    cache = tx_cache(session) if in_transaction(session) else {}
    key = ("org_place", org_id)
    if key not in cache:
        placed = registry_queries.organization_placement(session, org_id)
        cache[key] = None if placed is None else OrgPlace(org_id, frozenset(placed[0]), frozenset(placed[1]))
    return cache[key]


def in_scope(session: Session, actor: Actor, perm: Perm, org_id: int) -> bool:
    if actor.system:
        return True
    grants = actor.grants_with(perm)
    if not grants:
        return False
    place = org_place(session, org_id)
    return place is not None and any(grant_covers(g, place) for g in grants)


def division_in_scope(session: Session, actor: Actor, perm: Perm, division_id: int) -> bool:
    """A division-level record (a new organisation there, a sub-division) is in scope of a
    division grant on it or an ancestor."""
    if actor.system:
        return True
    lineage = registry_queries.division_lineage(session, division_id)
    return any(g.scope_kind is ScopeKind.DIVISION and g.scope_id in lineage for g in actor.grants_with(perm))


def scope_org_ids(session: Session, actor: Actor, perm: Perm) -> set[int] | None:
    """Organisations in the scope of the actor's grants for ``perm``; None means the whole
    region (the platform itself, or a division grant on the region's top division), which
    is decided first so that a region-wide reader never enumerates every organisation."""
    if actor.system:
        return None
    root = registry_queries.root_division_id(session)
    if root is not None and division_in_scope(session, actor, perm, root):
        return None
    grants = actor.grants_with(perm)
    return registry_queries.organizations_in_scope(
        session,
        division_ids=[g.scope_id for g in grants if g.scope_kind is ScopeKind.DIVISION and g.scope_id],
        alliance_ids=[g.scope_id for g in grants if g.scope_kind is ScopeKind.ALLIANCE and g.scope_id],
        org_ids=[g.scope_id for g in grants if g.scope_kind is ScopeKind.ORGANIZATION and g.scope_id])


def _deny(session: Session, actor: Actor, code: str, message: str, action: AuditAction,
          resource_type: str, resource_id: object, org_id: int | None, patient_id: int | None,
          person_key: str | None) -> Forbidden:
    audit.record_denied(session, actor, action, reason=code, resource_type=resource_type,
                        resource_id=resource_id, org_id=org_id, patient_id=patient_id,
                        person_key=person_key)
    return Forbidden(code, message, {"permission_denied": True})


def check(session: Session, actor: Actor, perm: Perm, action: AuditAction, *, resource_type: str,
          resource_id: object = None, org_id: int | None = None, division_id: int | None = None,
          patient_id: int | None = None, person_key: str | None = None, audit_success: bool = True,
          detail: dict | None = None) -> Access:
    """Decide, audit, and either return the basis of the access or raise Forbidden."""
    where = dict(resource_type=resource_type, resource_id=resource_id, org_id=org_id,
                 patient_id=patient_id, person_key=person_key)

    def deny(code: str, message: str) -> Forbidden:
        return _deny(session, actor, code, message, action, **where)

    if actor.user_id is None and not actor.system:
        raise Unauthorized("SEC-100", "log in first")
    if not actor.system and perm not in actor.perms():
        if actor.token_perms is not None and any(perm in g.perms for g in actor.grants):
            raise deny("SEC-106", f"this API token does not include the permission {perm}")
        raise deny("SEC-102", f"your roles ({', '.join(sorted(actor.roles)) or 'none'}) do not allow {perm}")
    if actor.needs_mfa() and not actor.mfa and not actor.system:
        raise deny("SEC-107", "your role requires a second factor (TOTP); log in again with it")
    access = _decide(session, actor, perm, org_id=org_id, division_id=division_id,
                     patient_id=patient_id, person_key=person_key, deny=deny)
    if audit_success:
        audit.record(session, actor, action, **where, break_glass=access.flagged,
                     detail={**(detail or {}), "basis": access.basis})
    return access


def _decide(session: Session, actor: Actor, perm: Perm, *, org_id: int | None, division_id: int | None,
            patient_id: int | None, person_key: str | None, deny: Callable[[str, str], Forbidden]) -> Access:
    if actor.system:
        return Access("system")
    if perm in PATIENT_PERMS and (patient_id is not None or person_key is not None):
        return _decide_patient(session, actor, perm, org_id=org_id, patient_id=patient_id,
                               person_key=person_key, deny=deny)
    if org_id is not None:
        if in_scope(session, actor, perm, org_id):
            return Access("scope")
        raise deny("SEC-103", f"organisation {org_id} is outside the scope of your {perm} grants")
    if division_id is not None:
        if division_in_scope(session, actor, perm, division_id):
            return Access("scope")
        raise deny("SEC-103", f"division {division_id} is outside the scope of your {perm} grants")
    return Access("scope")


def _decide_patient(session: Session, actor: Actor, perm: Perm, *, org_id: int | None,
                    patient_id: int | None, person_key: str | None,
                    deny: Callable[[str, str], Forbidden]) -> Access:
    if person_key is not None and actor.person_key == person_key and Perm.SELF_RECORD in actor.perms():
        return Access("self")
    if patient_id is not None:
        for source in RELATIONSHIP_SOURCES:
            basis = source(session, actor, patient_id)
            if basis:
                return Access(f"relationship:{basis}")
    if Perm.POPULATION_READ in actor.perms():
        orgs: set[int] = {org_id} if org_id is not None else set()
        if patient_id is not None:
            for orgs_source in PATIENT_ORGS_SOURCES:
                orgs |= orgs_source(session, patient_id)
        if any(in_scope(session, actor, perm, o) for o in orgs):
            return Access("population")
    if actor.break_glass is not None and Perm.BREAK_GLASS in actor.perms():
        minimum = session.info[SETTINGS_KEY].break_glass_min_reason if SETTINGS_KEY in session.info else 10
        if len(actor.break_glass.strip()) < minimum:
            raise deny("SEC-105", f"break the glass: state the reason in at least {minimum} characters")
        return Access("break_glass", flagged=True)
    hint = " (a clinician may break the glass with a stated reason)" if Perm.BREAK_GLASS in actor.perms() else ""
    raise deny("SEC-104", f"you have no active care relationship with this patient and it is outside"
                          f" your scope{hint}")


def measured_organizations(session: Session, actor: Actor, perm: Perm, *, resource_type: str,
                           codes: tuple[str, str], division_id: int | None, org_ids: list[int] | None,
                           detail: dict) -> set[int] | None:
    """The organisations a measures page may count (None: the whole region), once the actor's
    ``perm`` covers them, audited as one SEARCH: a division and everything under it, a list of
    facilities (each checked), or whatever the grants reach. ``codes``: the caller's error
    codes for an unknown division and for an empty list."""
    if division_id is not None:
        check(session, actor, perm, AuditAction.SEARCH, resource_type=resource_type, division_id=division_id,
              detail={**detail, "division_id": division_id})
        if not registry_queries.divisions_by_ids(session, [division_id]):
            raise Invalid(codes[0], f"division_id: no division {division_id}", {"field": "division_id"})
        return registry_queries.organizations_in_scope(session, division_ids=[division_id])
    if org_ids is not None:
        if not org_ids:
            raise Invalid(codes[1], "org_ids: at least one organisation", {"field": "org_ids"})
        for i, org in enumerate(org_ids):
            check(session, actor, perm, AuditAction.SEARCH, resource_type=resource_type, org_id=org,
                  audit_success=i == len(org_ids) - 1, detail={**detail, "org_ids": org_ids[:50]})
        return set(org_ids)
    check(session, actor, perm, AuditAction.SEARCH, resource_type=resource_type, detail={**detail, "scope": "all"})
    return scope_org_ids(session, actor, perm)
