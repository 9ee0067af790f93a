"""Shared results' share of the synthetic region, on a freshly generated tiny region (registry
and residents, seed 7): the results are consistent with each other and with the clock, the
values realistic, the decisions agree with what they offered and with the rules, the same
seed gives the same rows, and the measures have a story to tell."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.conftest import SESSION_INFO
from tests.factories import SYS

from healthgrid.db import make_engine
from healthgrid.migrate import upgrade
from healthgrid.patients import synth as patients_synth
from healthgrid.registry import synth as registry_synth
from healthgrid.results import measures
from healthgrid.results import synth as results_synth
from healthgrid.results.catalogue import load_catalogue
from healthgrid.results.domain import LOCAL_REASONS, NATIONAL_REASONS
from healthgrid.results.models import Decision, Eqa, ImagingStudy, Observation, Report

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
TABLES = (Report, Observation, ImagingStudy, Decision, Eqa)


@pytest.fixture(scope="module")
def region(fresh_databases):
    """An engine on a new database holding the tiny region's facilities and residents."""
    url = fresh_databases.create("results_synth")
    upgrade(url)
    eng = make_engine(url)
    with eng.begin() as conn:
        registry_synth.generate(conn, size="tiny", seed=7)
        patients_synth.generate(conn, size="tiny", seed=7, info=SESSION_INFO)
    yield eng
    eng.dispose()


def _rows(conn) -> dict[str, list[tuple]]:
    out = {}
    for model in TABLES:
        cols = [c for c in model.__table__.columns if c.name not in ("recorded_at",)]
        out[model.__tablename__] = [tuple(r) for r in conn.execute(select(*cols).order_by(model.__table__.c.id))]
    return out


@pytest.fixture(scope="module")
def generated(region):
    """The results generated once (kept), and the rows of a second run rolled back."""
    with region.connect() as conn, conn.begin() as tx:
        again = results_synth.generate(conn, size="tiny", seed=7, info=SESSION_INFO, now=NOW)
        rows = _rows(conn)
        tx.rollback()
    with region.begin() as conn:
        counts = results_synth.generate(conn, size="tiny", seed=7, info=SESSION_INFO, now=NOW)
    return counts, again, rows


def test_the_same_seed_gives_the_same_rows(region, generated):
    counts, again, rows = generated
    assert counts == again
    with region.connect() as conn:
        assert _rows(conn) == rows


def test_counts_are_what_was_written_and_every_outcome_occurs(region, generated):
    counts, _again, rows = generated
    assert counts["res_reports"] == len(rows["res_report"]) > 500
    assert counts["res_observations"] == len(rows["res_observation"]) > 3 * counts["res_reports"]
    assert counts["res_decisions"] == len(rows["res_decision"])
    for outcome in ("recognised", "repeat_with_reason", "repeat_no_prior", "repeat_not_recognisable"):
        assert counts[f"res_decisions_{outcome}"] > 0, outcome


def test_reports_and_observations_agree_with_each_other_and_the_clock(region, generated):
    with Session(region) as s:
        reports = {r.id: r for r in s.scalars(select(Report))}
        for r in reports.values():
            assert NOW - timedelta(days=366) <= r.effective_at <= r.issued_at <= NOW
            assert r.status in ("final", "corrected") and (r.version == 2) == (r.status == "corrected")
        for o in s.scalars(select(Observation)):
            r = reports[o.report_id]
            assert (o.patient_id, o.issuer_org_id) == (r.patient_id, r.issuer_org_id)
            assert o.value_num is not None or o.value_text
        studies = list(s.scalars(select(ImagingStudy)))
        assert studies and all(reports[x.report_id].category == "RAD" and x.dicomweb_base is None for x in studies)
        assert len({x.study_uid for x in studies}) == len(studies)


def test_values_are_realistic_and_chronic_patients_have_trends(region, generated):
    with Session(region) as s:
        flags = defaultdict(int)
        for (flag,) in s.execute(select(Observation.flag).where(Observation.value_num.is_not(None))):
            flags[flag] += 1
        share = 1 - flags["N"] / sum(flags.values())
        assert 0.03 < share < 0.3  # some abnormal flags, mostly normal
        series = defaultdict(list)
        for pid, v in s.execute(select(Observation.patient_id, Observation.value_num).where(Observation.item == "HBA1C")
                                .order_by(Observation.patient_id, Observation.effective_at)):
            series[pid].append(v)
        followed = [v for v in series.values() if len(v) >= 3]
        assert followed and all(max(v) - min(v) < 3.5 for v in followed)  # a drift, not noise
        assert sum(min(v) >= 6.0 for v in followed) >= len(followed) * 0.8  # diabetic patients


def test_marks_follow_the_list_and_eqa_mostly_passes(region, generated):
    cat = load_catalogue()
    with Session(region) as s:
        marks = {m for (m,) in s.execute(select(Report.mark).distinct())}
        assert marks <= {None, "演98HR"} and "演98HR" in marks  # seed 7: the synthetic province 98
        passed = [p for (p,) in s.execute(select(Eqa.passed))]
        assert 0.9 < sum(passed) / len(passed) < 1.0
        assert {i for (i,) in s.execute(select(Eqa.item).distinct())} <= set(cat.items)


def test_decisions_agree_with_what_they_offered_and_the_rules(region, generated):
    reasons = {str(r) for r in NATIONAL_REASONS} | {str(r) for r in LOCAL_REASONS}
    with Session(region) as s:
        reports = {r.id: r for r in s.scalars(select(Report))}
        for d in s.scalars(select(Decision)):
            offered = {int(c["result"]) for c in d.candidates}
            assert (d.outcome in ("recognised", "repeat_with_reason", "pending")) == bool(offered)
            if d.outcome == "recognised":
                r = reports[d.recognised_report_id]
                assert d.recognised_report_id in offered and r.patient_id == d.patient_id
                assert r.issued_at <= d.decided_at and r.mark is not None
            if d.outcome == "repeat_with_reason":
                assert d.override_reason in reasons and d.patient_informed in (True, False)
                assert d.override_reason != "other" or d.override_text
                assert d.patient_informed or d.override_reason == "emergency"
            for c in d.candidates:
                assert reports[int(c["result"])].issued_at <= d.decided_at


def test_the_measures_tell_the_story(region, generated):
    with Session(region, info=dict(SESSION_INFO)) as s:
        m = measures.recognition_measures(s, SYS, since=(NOW - timedelta(days=365)).date(), until=NOW.date())
        t = m.total
        assert t.orders > 1000 and t.recognised > 0 and t.repeat_with_reason > 0 and t.repeat_no_prior > 0
        assert 0 < t.recognisable_share < 0.5 and 0.4 < t.recognition_rate < 0.95 and t.cost_avoided_cny > 0
        assert len(m.facilities) >= 4 and sum(t.by_reason.values()) == t.repeat_with_reason
