"""Imaging studies (影像检查) kept in the hospitals' PACS and indexed here, so that a study done
once is seen from every facility (the city's 影像云 is one such PACS): the images stay in
the PACS; the platform keeps the study's metadata (``res_imaging_study``) and where to
fetch it — the PACS's DICOMweb root (PS3.18) and, for Orthanc, its own study id.

- ``index_study``: the PACS integration of the issuing facility (``results.submit`` on it)
  names a study by its Study Instance UID; the metadata is read from the PACS with QIDO-RS
  (``/studies?StudyInstanceUID=``, ``/studies/{uid}/series``), never taken on trust, and
  linked to the patient's report (or to the patient). Indexing again refreshes it.
- Showing it: the page shows a preview — the first frame of the first instance, rendered by
  the PACS (WADO-RS ``…/frames/1/rendered``) and served *through* the platform, because the
  page's CSP allows images only from the platform itself and because each view must be
  checked and audited like any other read of the record; and "查看影像" goes through the
  platform (checked, audited) to the PACS's own viewer (Orthanc Explorer for Orthanc),
  which the browser reaches directly on the hospital intranet — full diagnostic viewing is
  the PACS's job, not a proxy's.

PACS failures are coded: RES-160 unreachable or failing, RES-161 the study is not in the
PACS, RES-162 an answer that is not DICOM JSON; RES-156 a malformed UID or DICOMweb root,
RES-157 report and patient disagree, RES-158 the study is indexed by another facility.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import transaction, utcnow
from ..errors import Conflict, HealthGridError, Invalid, NotFound
from ..patients import service as patients
from ..security import access
from ..security.domain import Actor, AuditAction, Perm
from . import queries, views
from .domain import CN_TZ
from .models import ImagingStudy, Report
from .views import StudyView

DICOM_JSON = "application/dicom+json"
TIMEOUT = 10.0
MAX_IMAGE = 20 * 1024 * 1024
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")  # PS3.5 §9.1
ORTHANC_SUFFIX = "/dicom-web"
# DICOM tags (PS3.6) read from QIDO-RS answers.
STUDY_UID, STUDY_DATE, STUDY_TIME, TZ_OFFSET = "0020000D", "00080020", "00080030", "00080201"
ACCESSION, MODALITIES, DESCRIPTION = "00080050", "00080061", "00081030"
N_SERIES, N_INSTANCES, PATIENT_ID = "00201206", "00201208", "00100020"
SERIES_UID, MODALITY, BODY_PART, SERIES_NO = "0020000E", "00080060", "00180015", "00200011"
SOP_UID, INSTANCE_NO = "00080018", "00200013"


class PacsError(HealthGridError):
    """The PACS did not answer as DICOMweb says (HTTP 502 on the platform's surfaces)."""

    status = 502
    fhir_code = "transient"


@dataclass(frozen=True)
class StudyMeta:
    study_uid: str
    dicom_patient_id: str | None
    accession_number: str | None
    modality: str | None
    body_site: str | None
    description: str | None
    started_at: datetime | None
    series_count: int | None
    instance_count: int | None


# -- DICOM JSON (PS3.18 §F.2) ----------------------------------------------------------------------

def _value(obj: dict[str, Any], tag: str) -> Any:
    values = (obj.get(tag) or {}).get("Value") or []
    return values[0] if values else None


def _text(obj: dict[str, Any], tag: str) -> str | None:
    value = _value(obj, tag)
    if isinstance(value, dict):  # a PN: its alphabetic, ideographic or phonetic group
        value = value.get("Alphabetic") or value.get("Ideographic")
    return str(value).strip() or None if value is not None else None


def _int(obj: dict[str, Any], tag: str) -> int | None:
    value = _value(obj, tag)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def study_time(obj: dict[str, Any]) -> datetime | None:
    """StudyDate + StudyTime, in the offset the PACS states (TimezoneOffsetFromUTC), else China's."""
    day, clock = _text(obj, STUDY_DATE), _text(obj, STUDY_TIME) or "000000"
    if not day or not re.fullmatch(r"\d{8}", day):
        return None
    digits = clock.split(".")[0].ljust(6, "0")[:6]
    zone = CN_TZ
    offset = _text(obj, TZ_OFFSET)
    if offset and re.fullmatch(r"[+-]\d{4}", offset):
        sign = 1 if offset[0] == "+" else -1
        zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:])))
    try:
        return datetime.strptime(day + digits, "%Y%m%d%H%M%S").replace(tzinfo=zone)
    except ValueError:
        return None


def parse_study(study: dict[str, Any], series: list[dict[str, Any]]) -> StudyMeta:
    """A QIDO-RS study and its series as the platform keeps them."""
    uid = _text(study, STUDY_UID)
    if not uid:
        raise PacsError("RES-162", "PACS: the QIDO-RS study has no StudyInstanceUID (0020000D)", {"tag": STUDY_UID})
    modalities = [str(m) for m in (study.get(MODALITIES) or {}).get("Value") or []]
    modalities += [m for s in series if (m := _text(s, MODALITY)) and m not in modalities]
    parts = [p for s in series if (p := _text(s, BODY_PART))]
    return StudyMeta(uid, _text(study, PATIENT_ID), _text(study, ACCESSION), modalities[0] if modalities else None,
                     parts[0] if parts else None, _text(study, DESCRIPTION), study_time(study),
                     _int(study, N_SERIES) or (len(series) or None), _int(study, N_INSTANCES))


# -- talking to the PACS -----------------------------------------------------------------------

def check_base(base: str) -> str:
    """A DICOMweb root: http(s), a host, no query or fragment; without its trailing slash."""
    parsed = urllib.parse.urlsplit(base.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
        raise Invalid("RES-156", f"dicomweb_base: {base!r} is not an http(s) DICOMweb root such as "
                                 "http://pacs.example:8042/dicom-web", {"field": "dicomweb_base"})
    return base.strip().rstrip("/")


def check_uid(uid: str, field: str = "study_uid") -> str:
    if len(uid) > 64 or not _UID.match(uid):
        raise Invalid("RES-156", f"{field}: {uid!r} is not a DICOM UID (digits and dots, at most 64)",
                      {"field": field})
    return uid


def _get(url: str, accept: str, *, data: bytes | None = None, limit: int = MAX_IMAGE) -> tuple[bytes, str]:
    request = urllib.request.Request(url, data=data, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310 (http(s) checked)
            body = answer.read(limit + 1)
            kind = answer.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise NotFound("RES-161", f"PACS: {url} answered 404", {"url": url}) from None
        raise PacsError("RES-160", f"PACS: {url} answered HTTP {exc.code}", {"url": url}) from None
    except (urllib.error.URLError, OSError) as exc:
        raise PacsError("RES-160", f"PACS: {url} is unreachable ({exc})", {"url": url}) from None
    if len(body) > limit:
        raise PacsError("RES-160", f"PACS: {url} answered more than {limit} bytes", {"url": url})
    return body, kind


def _dicom_json(url: str) -> list[dict[str, Any]]:
    body, _ = _get(url, DICOM_JSON)
    if not body.strip():
        return []  # QIDO-RS may answer 204 / an empty body for no match
    try:
        found = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PacsError("RES-162", f"PACS: {url} did not answer DICOM JSON", {"url": url}) from None
    if not isinstance(found, list) or not all(isinstance(x, dict) for x in found):
        raise PacsError("RES-162", f"PACS: {url} did not answer a DICOM JSON array", {"url": url})
    return found


def fetch_study(base: str, study_uid: str) -> StudyMeta:
    """QIDO-RS: the study and its series."""
    # The optional attributes are named (a PACS returns only its defaults for "all": Orthanc
    # leaves BodyPartExamined out unless asked for it).
    wanted = [STUDY_DATE, STUDY_TIME, TZ_OFFSET, ACCESSION, MODALITIES, DESCRIPTION, N_SERIES, N_INSTANCES,
              PATIENT_ID]
    query = urllib.parse.urlencode([("StudyInstanceUID", study_uid)] + [("includefield", t) for t in wanted])
    found = _dicom_json(f"{base}/studies?{query}")
    match = [s for s in found if _text(s, STUDY_UID) == study_uid]
    if not match:
        raise NotFound("RES-161", f"PACS: study {study_uid} is not in {base}", {"study_uid": study_uid})
    fields = urllib.parse.urlencode([("includefield", t) for t in (MODALITY, BODY_PART, SERIES_NO)])
    series = _dicom_json(f"{base}/studies/{study_uid}/series?{fields}")
    return parse_study(match[0], series)


def orthanc_root(base: str) -> str | None:
    """Orthanc's REST root when the DICOMweb root is Orthanc's plugin (``…/dicom-web``)."""
    return base[: -len(ORTHANC_SUFFIX)] if base.endswith(ORTHANC_SUFFIX) else None


def orthanc_study_id(base: str, study_uid: str) -> str | None:
    """Orthanc's own id of the study (``POST /tools/lookup``), None for another PACS."""
    root = orthanc_root(base)
    if root is None:
        return None
    try:
        body, _ = _get(f"{root}/tools/lookup", "application/json", data=study_uid.encode(), limit=65536)
        return next((str(x["ID"]) for x in json.loads(body) if x.get("Type") == "Study"), None)
    except (HealthGridError, ValueError, TypeError, KeyError, AttributeError):
        return None  # not Orthanc after all: the study is still indexed, without a viewer link


def viewer_url(study: StudyView) -> str | None:
    """Where the browser views the study in the PACS: Orthanc Explorer's study page."""
    root = orthanc_root(study.dicomweb_base or "")
    if root is None or not study.pacs_study_id:
        return None
    return f"{root}/app/explorer.html#study?uuid={urllib.parse.quote(study.pacs_study_id)}"


def first_instance(base: str, study_uid: str) -> tuple[str, str]:
    """(series UID, SOP instance UID) of the first image: lowest series, then instance number."""
    fields = urllib.parse.urlencode([("includefield", t) for t in (SERIES_NO, INSTANCE_NO)])
    found = _dicom_json(f"{base}/studies/{study_uid}/instances?{fields}")
    found = [x for x in found if _text(x, SERIES_UID) and _text(x, SOP_UID)]
    if not found:
        raise NotFound("RES-161", f"PACS: study {study_uid} has no instances in {base}", {"study_uid": study_uid})
    first = min(found, key=lambda x: (_int(x, SERIES_NO) or 0, _int(x, INSTANCE_NO) or 0))
    return _text(first, SERIES_UID), _text(first, SOP_UID)


def rendered_frame_url(base: str, study_uid: str, series_uid: str, instance_uid: str, frame: int = 1) -> str:
    """WADO-RS rendered frame (PS3.18 §10.4.1.1.3)."""
    return f"{base}/studies/{study_uid}/series/{series_uid}/instances/{instance_uid}/frames/{frame}/rendered"


# -- use cases ---------------------------------------------------------------------------------

def index_study(session: Session, actor: Actor, *, dicomweb_base: str, study_uid: str, report_id: int | None = None,
                patient_id: int | None = None, issuer_org_id: int | None = None) -> StudyView:
    """Read the study from the PACS (QIDO-RS) and keep it here, linked to the report or patient.
    The caller is checked (and audited) before the PACS is asked anything, and no transaction
    is held open while it answers."""
    base, uid = check_base(dicomweb_base), check_uid(study_uid)
    with transaction(session):
        report = session.get(Report, report_id) if report_id is not None else None
        if report_id is not None and report is None:
            raise NotFound("RES-151", f"report_id: no result report {report_id}", {"field": "report_id"})
        patient, issuer = _owner(session, report, patient_id, issuer_org_id)
        known = session.execute(select(ImagingStudy.id, ImagingStudy.issuer_org_id)
                                .where(ImagingStudy.study_uid == uid)).first()
        if known is not None and known.issuer_org_id != issuer:
            raise Conflict("RES-158", f"study_uid: {uid} is indexed by another organisation", {"field": "study_uid"})
        access.check(session, actor, Perm.RESULT_SUBMIT, AuditAction.UPDATE if known else AuditAction.CREATE,
                     resource_type="ImagingStudy", resource_id=known.id if known else uid, org_id=issuer,
                     patient_id=patient, detail={"study_uid": uid})
    meta = fetch_study(base, uid)
    pacs_id = orthanc_study_id(base, uid)
    with transaction(session):
        row = session.scalar(select(ImagingStudy).where(ImagingStudy.study_uid == uid))
        if row is not None and row.issuer_org_id != issuer:
            raise Conflict("RES-158", f"study_uid: {uid} is indexed by another organisation", {"field": "study_uid"})
        if row is None:
            row = ImagingStudy(study_uid=uid, issuer_org_id=issuer, created_at=utcnow())
            session.add(row)
        _apply(row, meta, base, pacs_id, patient, report.id if report else row.report_id)
        session.flush()
        return views.study_views(session, [row], unmasked=actor.can(Perm.PII_UNMASKED))[0]


def _owner(session: Session, report: Report | None, patient_id: int | None,
           issuer_org_id: int | None) -> tuple[int, int]:
    if report is not None:
        if patient_id is not None and (patients.resolve_patient_id(session, patient_id)
                                       != patients.resolve_patient_id(session, report.patient_id)):
            raise Invalid("RES-157", "patient_id: not the patient of the report", {"field": "patient_id"})
        if issuer_org_id is not None and issuer_org_id != report.issuer_org_id:
            raise Invalid("RES-157", "issuer_org_id: not the issuer of the report", {"field": "issuer_org_id"})
        return report.patient_id, report.issuer_org_id
    if patient_id is None or issuer_org_id is None:
        raise Invalid("RES-157", "report_id, or patient_id and issuer_org_id: say whose study it is",
                      {"field": "report_id"})
    return patients.resolve_patient_id(session, patient_id), issuer_org_id


def _apply(row: ImagingStudy, meta: StudyMeta, base: str, pacs_id: str | None, patient_id: int,
           report_id: int | None) -> None:
    row.patient_id, row.report_id, row.dicomweb_base = patient_id, report_id, base
    row.pacs_study_id = pacs_id or row.pacs_study_id
    row.accession_number, row.modality, row.body_site = meta.accession_number, meta.modality, meta.body_site
    row.description, row.started_at = meta.description and meta.description[:200], meta.started_at
    row.series_count, row.instance_count = meta.series_count, meta.instance_count


def study_for_viewing(session: Session, actor: Actor, study_id: int) -> tuple[StudyView, str | None]:
    """The study and its PACS viewer URL; checked and audited as a view of the images."""
    study = queries.get_study(session, actor, study_id)
    return study, viewer_url(study)


def preview(session: Session, actor: Actor, study_id: int) -> tuple[bytes, str]:
    """The first frame of the study rendered by the PACS as PNG, read
    through the platform: checked and audited as a view of the study."""
    study = queries.get_study(session, actor, study_id)
    if not study.dicomweb_base:
        raise NotFound("RES-161", f"imaging study {study_id} has no DICOMweb endpoint", {"id": study_id})
    series, instance = first_instance(study.dicomweb_base, study.study_uid)
    # One media type: Orthanc's plugin refuses an Accept list with q-values (400).
    body, kind = _get(rendered_frame_url(study.dicomweb_base, study.study_uid, series, instance), "image/png")
    media = kind.split(";")[0].strip().lower()
    if media not in ("image/png", "image/jpeg", "image/gif"):
        raise PacsError("RES-162", f"PACS: the rendered frame is {media or 'untyped'}, not an image",
                        {"study_uid": study.study_uid})
    return body, media
