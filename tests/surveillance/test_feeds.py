"""Feed ingestion on the database: all or none, the upsert report, places and scope, audit."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from healthgrid.errors import Forbidden, Invalid
from healthgrid.security.models import AuditEvent
from healthgrid.surveillance import feeds
from healthgrid.surveillance.models import FeedBatch, FeedCount

from .signal_fixtures import NOW, SYS, make_world


@pytest.fixture
def world(session):
    return make_world(session)


def rows(world, n=3, count=10, total=200, metric="ILI", source="H001"):
    return [{"source": source, "division_code": world.county(), "date": f"2025-03-{1 + i:02d}", "metric": metric,
             "count": count, "total": total} for i in range(n)]


def stored(session):
    return session.scalar(select(func.count()).select_from(FeedCount))


def test_a_good_batch_is_created_and_its_report_kept(session, world):
    report = feeds.ingest_feed(session, world.admin_a, feed="fever", rows=rows(world), filename="ili.csv", now=NOW)
    assert (report.status, report.created, report.updated, report.ignored) == ("accepted", 3, 0, 0)
    assert report.errors == [] and report.errors_by_code == {}
    batch = session.get(FeedBatch, report.batch_id)
    assert batch.report["created"] == 3 and batch.filename == "ili.csv" and batch.received_by == world.admin_a.username
    counts = session.scalars(select(FeedCount).order_by(FeedCount.day)).all()
    assert [(c.county_code, c.count, c.total, c.batch_id) for c in counts] == [(world.county(), 10, 200, batch.id)] * 3


def test_sending_again_ignores_the_same_values_and_updates_changed_ones(session, world):
    feeds.ingest_feed(session, world.admin_a, feed="fever", rows=rows(world), now=NOW)
    again = rows(world, n=4)
    again[1]["count"] = 11
    report = feeds.ingest_feed(session, world.admin_a, feed="fever", rows=again, now=NOW)
    assert (report.created, report.updated, report.ignored) == (1, 1, 2)
    assert stored(session) == 4
    assert session.scalar(select(FeedCount.count).where(FeedCount.day == date(2025, 3, 2))) == 11


def test_one_bad_row_and_nothing_is_written(session, world):
    batch = rows(world, n=5)
    batch[3]["total"] = 5  # fewer visits than ILI visits
    batch[4]["metric"] = "antipyretic"
    with pytest.raises(Invalid) as exc:
        feeds.ingest_feed(session, world.admin_a, feed="fever", rows=batch, now=NOW)
    assert exc.value.code == "SURV-520"
    report = exc.value.detail["report"]
    assert report["status"] == "rejected" and report["created"] == 0
    assert report["errors_by_code"] == {"SURV-507": 1, "SURV-510": 1}
    assert [(e["row"], e["code"], e["field"]) for e in report["errors"]] == [(4, "SURV-510", "total"),
                                                                             (5, "SURV-507", "metric")]
    assert stored(session) == 0 and session.scalar(select(func.count()).select_from(FeedBatch)) == 0


def test_an_unknown_division_and_a_city_are_refused_per_row(session, world):
    batch = rows(world, n=3)
    batch[0]["division_code"] = f"{world.prefix}0199"
    batch[1]["division_code"] = world.city.code
    batch[2].update(division_code=f"{world.prefix}0199", metric="cough")  # both errors of a row are listed
    with pytest.raises(Invalid) as exc:
        feeds.ingest_feed(session, SYS, feed="fever", rows=batch, now=NOW)
    codes = [(e["row"], e["code"]) for e in exc.value.detail["report"]["errors"]]
    assert codes == [(1, "SURV-503"), (2, "SURV-504"), (3, "SURV-503"), (3, "SURV-507")]


def test_a_township_row_counts_for_its_county(session, world):
    batch = rows(world, n=1)
    batch[0]["division_code"] = world.town_a.code
    feeds.ingest_feed(session, world.admin_a, feed="fever", rows=batch, now=NOW)
    assert session.scalar(select(FeedCount.county_code)) == world.county()


def test_a_facility_admin_sends_only_for_the_place_of_its_organisation(session, world):
    batch = rows(world, n=2)
    batch[1]["division_code"] = world.county(1)  # another county
    with pytest.raises(Invalid) as exc:
        feeds.ingest_feed(session, world.admin_a, feed="fever", rows=batch, now=NOW)
    assert [(e["row"], e["code"]) for e in exc.value.detail["report"]["errors"]] == [(2, "SURV-512")]
    denied = session.scalars(select(AuditEvent).where(AuditEvent.reason == "SURV-512")).all()
    assert len(denied) == 1 and denied[0].outcome == "denied"


def test_a_county_cdc_sends_for_its_county_and_every_batch_is_audited(session, world):
    report = feeds.ingest_feed(session, world.epi_a, feed="school", now=NOW, rows=[
        {"source": "S1/3-2", "division_code": world.town_a.code, "date": "2025-03-10", "metric": "fever", "count": 4}])
    assert report.created == 1
    entry = session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "FeedBatch",
                                                     AuditEvent.outcome == "success")).one()
    assert entry.resource_id == str(report.batch_id) and entry.username == world.epi_a.username


def test_a_clinician_may_not_send_feeds(session, world):
    from .signal_fixtures import user

    doctor = user(session, "doc-feed", "clinician", "organization", world.hospital_a.id, world.hospital_a.id)
    with pytest.raises(Forbidden):
        feeds.ingest_feed(session, doctor, feed="fever", rows=rows(world), now=NOW)


def test_an_empty_batch_or_an_unknown_feed_is_refused(session, world):
    with pytest.raises(Invalid) as exc:
        feeds.ingest_feed(session, SYS, feed="fever", rows=[], now=NOW)
    assert exc.value.code == "SURV-513"
    with pytest.raises(Invalid) as exc:
        feeds.ingest_feed(session, SYS, feed="wastewater", rows=rows(world), now=NOW)
    assert exc.value.code == "SURV-500"


def test_the_same_source_day_and_metric_may_come_from_different_feeds(session, world):
    feeds.ingest_feed(session, SYS, feed="fever", rows=rows(world, n=1), now=NOW)
    feeds.ingest_feed(session, SYS, feed="ed", rows=rows(world, n=1), now=NOW)
    assert stored(session) == 2


def test_batches_are_listed_newest_first_own_ones_for_a_facility(session, world):
    first = feeds.ingest_feed(session, world.admin_a, feed="fever", rows=rows(world), now=NOW)
    second = feeds.ingest_feed(session, world.epi_a, feed="lab", now=NOW,
                               rows=rows(world, n=1, metric="influenza_a", source="LAB1"))
    assert [b.id for b in feeds.list_batches(session, world.admin_a)] == [first.batch_id]
    assert [b.id for b in feeds.list_batches(session, world.epi_a)][:2] == [second.batch_id, first.batch_id]
    assert [b.id for b in feeds.list_batches(session, world.epi_a, feed="lab")] == [second.batch_id]
