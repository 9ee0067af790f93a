"""Infectious-disease surveillance and multi-point early warning (传染病监测预警, issue 8).

What this context will own (../shared/specs/domain-rules.md §5): the notifiable-disease report
card and its validation, the versioned disease catalogue and reporting time limits, the daily
feeds of the multi-point triggered system (syndromic, pharmacy, school, laboratory), the
detectors that turn count series into signals, the signal lifecycle and its warning products,
the CDC dashboard, and the FHIR view of case reports.

So far the pure parts exist: the detectors (vectorised functions over ``counts[series, time]``
arrays in :mod:`healthgrid.surveillance.detectors`), the disease catalogue
(:mod:`.catalogue`, ``catalogue.json``: classes valid from/to, subtypes, reporting limits)
and the report card's field and cross-field rules (:mod:`.cards`, :mod:`.card_fields`).
There are no models, services, API, pages or jobs yet.
"""
