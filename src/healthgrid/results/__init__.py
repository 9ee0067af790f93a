"""Shared results and mutual recognition (检查检验结果互认, 国卫医发〔2022〕6号).

This context will own the laboratory and imaging results of the region and the decision
whether an outside result must be recognised instead of repeating the test:

- ``catalogue``: the versioned item catalogue (LOINC where one exists, this platform's own
  item codes otherwise), reference ranges, validity days, prices, the region's recognised-item
  lists (HR mark with its regional prefix, by organisation level) and facilities' local codes;
- ``domain``: the shared vocabulary: levels, result statuses, marks, local days, the labs'
  external quality assessment (EQA, 室间质评) facts and the doctor's repeat exceptions;
- ``recognition``: ``decide(...)`` at order time: the recognisable prior results (best
  first) or why each is not, and the doctor's override — a value object ready to be logged
  for the repeat-test measures;
- ``hl7v2`` (+ ``hl7v2_map``): HL7 v2.3–2.5.1 ORU^R01 and ADT^A01/A04/A08 parsed into plain
  dataclasses, ACK/NAK built, MLLP frames.

Still to come (issue 7): tables and migration, the staged ingestion pipeline (FHIR Bundles,
HL7 files and the MLLP listener), patient resolution through the patient index, Orthanc
imaging, the timeline, notifications, FHIR read/search, synthetic results and the measures.
Rules: ../shared/specs/domain-rules.md §4.
"""
