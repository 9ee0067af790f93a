"""FHIR R4 of surveillance: each report card as a Condition (``condition``), and the daily
case counts by disease and county as MeasureReport (``measure_report``)."""

from __future__ import annotations

from ...fhir import FhirRegistry
from . import condition, measure_report


def register(fhir: FhirRegistry) -> None:
    condition.register(fhir)
    measure_report.register(fhir)
