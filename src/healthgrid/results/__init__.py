"""Shared results and mutual recognition (检查检验结果互认, 国卫医发〔2022〕6号): the region's
laboratory and imaging results, seen everywhere and recognised instead of repeated.

- Reference data, pure: ``catalogue`` (items with LOINC, validity days, prices, the region's
  HR lists by level, local code maps), ``domain`` (levels, statuses, marks, EQA facts, the
  repeat exceptions), ``recognition`` (``decide``: the recognisable prior results or why not,
  and the doctor's override).
- Ingestion: ``hl7v2`` / ``hl7v2_map`` / ``hl7v2_ack`` (HL7 v2 ORU^R01 and ADT parsed, ACK/NAK,
  MLLP frames), ``from_hl7`` / ``from_fhir`` / ``from_fhir_bundle`` → ``intake`` (the
  normalised items) → ``ingest`` (staged: preheat ``ingest_refs``, patients through the patient
  index ``ingest_patients``, ``ingest_plan``, all-or-none ``ingest_write``; every message kept
  verbatim and encrypted, ``ingest_log``), ``bulk`` (file import), ``mllp`` (the listener),
  ``jobs`` (result-available notifications).
- The decision at order time: ``reference`` (EQA results, local codes), ``ordering`` (check
  and record, every decision logged), ``measures`` (the repeat-test figures).
- Reads: ``queries`` / ``views`` (audited), ``timeline`` / ``trends`` / ``charts`` (the
  patient's results across facilities), ``imaging`` (studies indexed from a PACS over DICOMweb).
- Adapters: ``api*``, ``fhir/`` (DiagnosticReport, Observation, ImagingStudy; transaction and
  batch Bundles), ``web/``, ``cli``; ``synth`` (a year of results and decisions).

Rules: ../shared/specs/domain-rules.md §4.
"""
