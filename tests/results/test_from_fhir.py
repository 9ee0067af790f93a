"""FHIR resources and Bundles as intake items (pure): validation naming the element, the
mapping of Patient, DiagnosticReport, Observation and ImagingStudy, references inside the
Bundle (urn:uuid, contained, stored ids), units of a batch, and what is refused."""

from __future__ import annotations

import copy

from tests.results.ingest_world import lab_bundle

from healthgrid.results import from_fhir as ff
from healthgrid.results import from_fhir_bundle as fb
from healthgrid.results.catalogue import load_catalogue
from healthgrid.results.intake import LOINC

CAT = load_catalogue()


def units(bundle: dict) -> tuple[list[fb.Unit], list]:
    """The units, and every problem: the Bundle's and its entries'."""
    entries, problems = fb.read_entries(bundle)
    return fb.units_of(entries, CAT), problems + [p for e in entries for p in e.problems]


def test_a_lab_bundle_is_one_unit_with_its_patient_report_and_results():
    found, problems = units(lab_bundle(org_id=7))
    assert problems == [] and len(found) == 1
    unit = found[0]
    assert unit.entries == [1, 0, 2, 3] and unit.problems == []
    item = unit.item
    assert (item.issuer, item.patient.name, item.patient.sex, item.patient.where) == (
        "#7", "钱多多", "F", "Bundle.entry[0].resource")
    r = item.reports[0]
    assert (r.filler_number, r.category, r.code.code, r.code.system, r.status, r.where) == (
        "F-100", "LAB", "24326-1", LOINC, "final", "Bundle.entry[1].resource")
    assert [(o.seq, o.code.code, o.value_num, o.unit, o.ref_low, o.ref_high, o.flag, o.where) for o in r.observations] \
        == [(1, "2823-3", 4.1, "mmol/L", 3.5, 5.3, "N", "Bundle.entry[2].resource"),
            (2, "2951-2", 140.0, "mmol/L", 3.5, 5.3, "N", "Bundle.entry[3].resource")]


def test_an_invalid_resource_is_refused_naming_the_element():
    bundle = lab_bundle()
    bundle["entry"][2]["resource"]["valueQuantity"]["value"] = "4,1"
    bundle["entry"][1]["resource"]["issued"] = "yesterday"
    found, problems = units(bundle)
    where = {(p.code, p.where, p.field) for p in problems}
    assert ("RES-200", "Bundle.entry[2].resource", "valueQuantity.value") in where
    assert ("RES-200", "Bundle.entry[1].resource", "issued") in where
    assert all(u.item is None for u in found if 1 in u.entries or 2 in u.entries)  # not mapped


def test_unknown_references_types_and_methods_are_refused():
    bundle = lab_bundle()
    bundle["entry"][1]["resource"]["result"].append({"reference": "urn:uuid:nowhere"})
    bundle["entry"].append({"request": {"method": "DELETE", "url": "Observation/1"},
                            "resource": {"resourceType": "Observation", "status": "final",
                                         "code": {"text": "x"}, "valueString": "y"}})
    bundle["entry"].append({"request": {"method": "POST", "url": "Condition"},
                            "resource": {"resourceType": "Condition", "subject": {"reference": "Patient/1"}}})
    found, problems = units(bundle)
    assert {p.code for p in problems} == {"RES-201"}
    assert {p.code for u in found for p in u.problems} == {"RES-201", "RES-202"}


def test_contained_observations_and_a_stored_patient_are_resolved():
    report = copy.deepcopy(lab_bundle()["entry"][1]["resource"])
    report["subject"] = {"reference": "Patient/42"}
    report["contained"] = [{**copy.deepcopy(lab_bundle()["entry"][2]["resource"]), "id": "k"}]
    report["contained"][0]["subject"] = {"reference": "Patient/42"}
    report["result"] = [{"reference": "#k"}]
    found = fb.units_of([fb.Entry(0, report, "DiagnosticReport")], CAT)
    item = found[0].item
    assert found[0].problems == [] and item.patient.patient_id == 42
    assert item.reports[0].observations[0].where == "DiagnosticReport.contained[0]"


def test_an_observation_alone_is_its_own_report_and_needs_an_identifier():
    obs = copy.deepcopy(lab_bundle()["entry"][2]["resource"])
    obs["subject"] = {"identifier": {"system": ff.RESIDENT_ID_SYSTEMS[0], "value": "420102197506012349"}}
    found = fb.units_of([fb.Entry(0, obs, "Observation")], CAT)
    assert [p.code for p in found[0].problems] == ["RES-206"]
    obs["identifier"] = [{"value": "R-1"}]
    item = fb.units_of([fb.Entry(0, obs, "Observation")], CAT)[0].item
    assert item.patient.resident_id == "420102197506012349" and item.patient.name is None
    assert (item.reports[0].filler_number, item.reports[0].observations[0].code.code) == ("R-1", "2823-3")


def test_a_batch_is_one_unit_per_report_and_a_transaction_names_one_patient():
    first, second = lab_bundle(kind="batch", filler="F-1"), lab_bundle(filler="F-2", name=("孙", "丽"))
    second["entry"][0]["fullUrl"] = "urn:uuid:pat-2"
    for e in second["entry"][1:]:
        e["resource"]["subject"] = {"reference": "urn:uuid:pat-2"}
    first["entry"] += second["entry"]
    found, problems = units(first)
    assert problems == [] and len(found) == 2 and [u.item.patient.name for u in found] == ["钱多多", "孙丽"]
    entries, _ = fb.read_entries(first)
    merged = fb.merge(found, entries)
    assert [p.code for p in merged.problems] == ["RES-204"]


def test_an_imaging_study_with_its_dicomweb_endpoint():
    study = {"resourceType": "ImagingStudy", "status": "available", "subject": {"reference": "Patient/3"},
             "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.156.1.2.3"},
                            {"type": {"coding": [{"code": "ACSN"}]}, "value": "CT-9"}],
             "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}],
             "numberOfSeries": 2, "numberOfInstances": 120, "started": "2025-05-20T14:15:00+08:00",
             "contained": [{"resourceType": "Endpoint", "id": "pacs", "status": "active",
                            "connectionType": {"code": "dicom-wado-rs"}, "payloadType": [{"text": "DICOM"}],
                            "address": "http://127.0.0.1:8042/dicom-web"}],
             "endpoint": [{"reference": "#pacs"}]}
    assert ff.validate(study, "ImagingStudy") == []
    item = fb.units_of([fb.Entry(0, study, "ImagingStudy")], CAT)[0].item
    s = item.studies[0]
    assert (s.study_uid, s.accession, s.modality, s.series_count, s.instance_count, s.dicomweb_base) == (
        "1.2.156.1.2.3", "CT-9", "CT", 2, 120, "http://127.0.0.1:8042/dicom-web")


def test_a_final_observation_without_a_value_is_refused():
    obs = copy.deepcopy(lab_bundle()["entry"][2]["resource"])
    del obs["valueQuantity"]
    item, problems = ff.observation_item(obs, "Observation", 1)
    assert item is None and [(p.code, p.field) for p in problems] == [("RES-207", "value[x]")]
    obs["dataAbsentReason"] = {"text": "标本溶血"}
    assert ff.observation_item(obs, "Observation", 1)[0].value_text is None


def test_patient_identifiers_by_system_and_type():
    p = ff.patient_item({"resourceType": "Patient", "identifier": [
        {"type": {"coding": [{"code": "MR"}]}, "value": "ZY-1"}, {"system": "urn:oid:2.16.156.10011.1.3",
                                                                  "value": "420102197506012349"},
        {"type": {"coding": [{"code": "SN"}]}, "value": "YB123456"}], "name": [{"text": "钱多多"}],
        "telecom": [{"system": "phone", "value": "13800001111"}]}, "Patient")
    assert (p.resident_id, p.mrn, p.insurance, p.name, p.phone) == (
        "420102197506012349", "ZY-1", "YB123456", "钱多多", "13800001111")
