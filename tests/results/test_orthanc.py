"""Imaging with a real PACS: Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``) in a private
network namespace (tests/results/orthanc.py). A two-slice CT study written by pydicom is
stored there (REST ``POST /instances``), indexed in HealthGrid through QIDO-RS, linked to
the patient's report, and shown from the patient's results page: the preview is a WADO-RS
rendered frame fetched through the platform, "查看影像" hands over to Orthanc's viewer.
CI sets HEALTHGRID_REQUIRE_ORTHANC=1, so a missing Orthanc fails instead of skipping."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from tests.results import orthanc as pacs
from tests.results.results_world import make_world

from healthgrid.errors import Forbidden, HealthGridError, Invalid, NotFound
from healthgrid.results import imaging, queries
from healthgrid.results.models import ImagingStudy
from healthgrid.security.models import AuditEvent

if not pacs.REQUIRED:  # in CI a missing pydicom (a dev dependency) fails the import instead
    pytest.importorskip("pydicom")


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    yield from pacs.orthanc_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def ct_study(orthanc):
    """A two-slice head CT stored in Orthanc: (study, series, [instances])."""
    from pydicom.uid import generate_uid

    study, series = generate_uid(), generate_uid()
    sops = [generate_uid() for _ in range(2)]
    for n, sop in enumerate(sops, start=1):
        stored = pacs.store(orthanc, pacs.ct_instance(study_uid=study, series_uid=series, sop_uid=sop, number=n))
        assert stored["Status"] in ("Success", "AlreadyStored")
    return study, series, sops


@pytest.fixture
def world(session):
    return make_world(session)


def test_a_study_stored_in_orthanc_is_indexed_through_qido_rs(session, world, orthanc, ct_study):
    study_uid, _, _ = ct_study
    ct = world.results.reports["ct"]
    found = imaging.index_study(session, world.lis, dicomweb_base=orthanc.dicomweb + "/", study_uid=study_uid,
                                report_id=ct)
    assert (found.study_uid, found.modality, found.body_site, found.accession_number) == (
        study_uid, "CT", "HEAD", "CT20250715001")
    assert (found.series_count, found.instance_count, found.description) == (1, 2, "头部CT平扫")
    assert found.started_at == datetime(2025, 7, 15, 2, 15, 30, tzinfo=UTC)  # 10:15:30 at +08:00
    assert found.dicomweb_base == orthanc.dicomweb and found.pacs_study_id
    assert found.patient_id == world.patient and found.report_id == ct
    assert study_uid in {s.study_uid for s in queries.get_report(session, world.doctor, ct).studies}
    again = imaging.index_study(session, world.lis, dicomweb_base=orthanc.dicomweb, study_uid=study_uid,
                                report_id=ct)
    assert again.id == found.id  # indexing again refreshes, never duplicates
    audit = session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "ImagingStudy",
                                                     AuditEvent.username == world.lis.username)).all()
    assert [e.action for e in audit] == ["create", "update"]


def test_the_preview_is_a_wado_rs_rendered_frame_and_the_viewer_is_orthancs(session, client, world, orthanc,
                                                                            ct_study):
    study_uid, series_uid, sops = ct_study
    direct = urllib.request.Request(imaging.rendered_frame_url(orthanc.dicomweb, study_uid, series_uid, sops[0]),
                                    headers={"Accept": "image/png"})
    with urllib.request.urlopen(direct, timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("image/png") and answer.read(8) == b"\x89PNG\r\n\x1a\n"
    study = imaging.index_study(session, world.lis, dicomweb_base=orthanc.dicomweb, study_uid=study_uid,
                                report_id=world.results.reports["ct"])
    body, media = imaging.preview(session, world.doctor, study.id)
    assert media == "image/png" and body.startswith(b"\x89PNG")
    page = client.get(f"/patients/{world.patient}/results")
    assert page.status_code == 200
    assert f'data-study-uid="{study_uid}"' in page.text and f"/results/imaging/{study.id}/viewer" in page.text
    shown = client.get(f"/results/imaging/{study.id}/preview")
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"
    hand_over = client.get(f"/results/imaging/{study.id}/viewer", follow_redirects=False)
    assert hand_over.status_code == 303
    viewer = hand_over.headers["location"]
    assert viewer == f"{orthanc.url}/app/explorer.html#study?uuid={study.pacs_study_id}"
    with urllib.request.urlopen(viewer.split("#")[0], timeout=10) as answer:  # Orthanc Explorer itself
        assert answer.status == 200
    api = client.get(f"/api/results/imaging/{study.id}").json()
    assert api["viewer_url"] == viewer and api["preview_url"] == f"/api/results/imaging/{study.id}/preview"
    assert client.get(api["preview_url"]).content.startswith(b"\x89PNG")


def test_who_may_index_and_see_the_images(session, world, orthanc, ct_study):
    study_uid = ct_study[0]
    with pytest.raises(Forbidden) as refused:
        imaging.index_study(session, world.township_lis, dicomweb_base=orthanc.dicomweb, study_uid=study_uid,
                            report_id=world.results.reports["ct"])  # the county hospital's report
    assert refused.value.code == "SEC-103"
    study = imaging.index_study(session, world.lis, dicomweb_base=orthanc.dicomweb, study_uid=study_uid,
                                report_id=world.results.reports["ct"])
    with pytest.raises(Forbidden):
        imaging.preview(session, world.stranger, study.id)
    session.commit()
    denied = session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "ImagingStudy",
                                                      AuditEvent.outcome == "denied")).all()
    assert {e.username for e in denied} >= {world.township_lis.username, world.stranger.username}


def test_pacs_failures_are_coded_and_write_nothing(session, world, orthanc):
    before = session.scalar(select(func.count()).select_from(ImagingStudy))
    owner = dict(patient_id=world.patient, issuer_org_id=world.results.hospital_id)
    cases = [
        (dict(dicomweb_base=orthanc.dicomweb, study_uid="1.2.3.999999", **owner), NotFound, "RES-161"),
        (dict(dicomweb_base="http://127.0.0.1:9/dicom-web", study_uid="1.2.3.4", **owner), HealthGridError,
         "RES-160"),
        (dict(dicomweb_base="ftp://pacs/dicom-web", study_uid="1.2.3.4", **owner), Invalid, "RES-156"),
        (dict(dicomweb_base=orthanc.dicomweb, study_uid="1.2.abc", **owner), Invalid, "RES-156"),
        (dict(dicomweb_base=orthanc.dicomweb, study_uid="1.2.3.4", patient_id=world.patient), Invalid, "RES-157"),
    ]
    for kwargs, kind, code in cases:
        with pytest.raises(kind) as refused:
            imaging.index_study(session, world.lis, **kwargs)
        assert refused.value.code == code, kwargs
    assert session.scalar(select(func.count()).select_from(ImagingStudy)) == before


def test_the_pacs_integration_indexes_over_the_api(client, session, world, orthanc, ct_study):
    made = client.post("/api/results/imaging", json={"dicomweb_base": orthanc.dicomweb, "study_uid": ct_study[0],
                                                      "patient_id": world.patient,
                                                      "issuer_org_id": world.results.hospital_id})
    assert made.status_code == 201, made.text
    assert made.json()["instance_count"] == 2 and made.json()["viewer_url"].startswith(orthanc.url)
    bad = client.post("/api/results/imaging", json={"dicomweb_base": orthanc.dicomweb, "study_uid": "1.2.3.999999",
                                                     "patient_id": world.patient,
                                                     "issuer_org_id": world.results.hospital_id})
    assert bad.status_code == 404 and bad.json()["code"] == "RES-161"
