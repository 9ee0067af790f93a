"""Generic FHIR R4 (4.0.1) machinery; contexts plug their resource providers in.

Owns: typed search-parameter parsing (``search``), searchset Bundles with offset paging
(``bundle``), the generated CapabilityStatement (``capability``), OperationOutcome errors
with stable ``FHIR-NNN`` codes (``outcome``), validation of outgoing and incoming resources
against the R4B models of fhir.resources (``validation``), the provider contract
(``provider``), type-level $operations (``operation``), the system-level transaction / batch
Bundle handed to a context's registered handler (``system``), the registry of providers with the
read / search / create / update / operation / capabilities interactions (``registry``) and
their HTTP binding (``router``). It imports no context: contexts import it.

A context writes ``<Resource>Provider(ResourceProvider)`` classes in its ``fhir.py`` and
registers them with ``registry.register(provider)``; ``app.py`` calls each context's
``register(fhir_registry)`` and mounts ``build_fhir_router(fhir_registry)`` at ``/fhir``.
A provider serves create / update by overriding ``create`` / ``update`` (returning a
``Written``), and declares its operations once in ``operations`` (``OperationDef``) and the
``_include``s it serves in ``includes`` (``IncludeDef``; the registry reads the included
resources through their own providers' ``read_many``).
"""

from .bundle import entry, searchset_bundle
from .operation import OperationDef, OperationRequest
from .outcome import (
    ERROR_SYSTEM,
    VERSION_CONFLICT,
    FhirError,
    bad_value,
    operation_outcome,
    operation_outcome_response,
)
from .output import FHIR_JSON, prune
from .provider import ResourceProvider, SearchResult, Written
from .registry import Answer, FhirRegistry
from .router import build_fhir_router
from .search import (
    ANY,
    ID_PARAM,
    Clause,
    DateValue,
    Include,
    IncludeDef,
    NoMatch,
    ParamType,
    Reference,
    SearchParamDef,
    SearchRequest,
    Token,
    any_of,
)
from .system import BundleAnswer, BundleHandler, BundleRequest

__all__ = [
    "ANY", "ERROR_SYSTEM", "FHIR_JSON", "ID_PARAM", "VERSION_CONFLICT", "Answer", "Clause", "DateValue",
    "FhirError", "FhirRegistry", "Include", "IncludeDef", "NoMatch", "OperationDef", "OperationRequest", "ParamType",
    "Reference",
    "ResourceProvider", "SearchParamDef", "SearchRequest", "SearchResult", "Token", "Written", "any_of",
    "bad_value", "build_fhir_router", "entry", "operation_outcome", "operation_outcome_response", "prune",
    "searchset_bundle", "BundleAnswer", "BundleHandler", "BundleRequest",
]
