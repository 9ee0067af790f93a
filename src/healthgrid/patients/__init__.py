"""Patients context: the region's master patient index (MPI, 患者主索引) — one resident, one
record across every facility (issue 4).

Public service functions (``service``): ``register_patient``, ``update_patient``,
``get_patient``, ``search_patients``, ``match_patients``, ``resolve_patient_id``; the review
queue and merges (``merging``): ``list_reviews``, ``get_review``, ``decide_review``,
``merge_patients``, ``unmerge_patients``. Batch de-duplication of the whole index runs on
Splink (``linkage``); the synthetic region's residents come from ``synth``.
"""
