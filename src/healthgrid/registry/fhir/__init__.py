"""FHIR R4 providers of the registry: Organization, Location, Practitioner,
PractitionerRole and HealthcareService — read and search, mapped from registry.queries."""

from ...fhir import FhirRegistry
from .common import (
    DEPARTMENT_SYSTEM,
    LICENCE_SYSTEM,
    ORG_CODE_SYSTEM,
    ORG_LEVEL_SYSTEM,
    ORG_TYPE_SYSTEM,
    SERVICE_TYPE_SYSTEM,
)
from .location import LocationProvider
from .organization import OrganizationProvider
from .people import PractitionerProvider, PractitionerRoleProvider, human_name
from .services import HealthcareServiceProvider

__all__ = ["DEPARTMENT_SYSTEM", "LICENCE_SYSTEM", "ORG_CODE_SYSTEM", "ORG_LEVEL_SYSTEM", "ORG_TYPE_SYSTEM",
           "SERVICE_TYPE_SYSTEM", "human_name", "register"]


def register(registry: FhirRegistry) -> None:
    for provider in (OrganizationProvider(), LocationProvider(), PractitionerProvider(),
                     PractitionerRoleProvider(), HealthcareServiceProvider()):
        registry.register(provider)
