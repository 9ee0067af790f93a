"""FHIR providers of the registry (placeholder until written)."""


def register(registry) -> None:
    return None
