"""``healthgrid results import-hl7`` on the generated region's database: files of MLLP-framed or
CR/LF-separated messages, a report line per message, exit code 2 when any is refused, the
same file twice answered as duplicates, and the ``--source`` organisation."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select
from tests.conftest import SESSION_INFO
from tests.factories import resident_id
from tests.results.ingest_world import oru
from typer.testing import CliRunner

from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.registry import queries as registry_queries
from healthgrid.results.cli import app
from healthgrid.results.models import Report
from healthgrid.security import service as security

runner = CliRunner()


@pytest.fixture(scope="module")
def region(region_url):
    eng = make_engine(region_url)
    with make_sessionmaker(eng, info=dict(SESSION_INFO))() as s:
        org_id = security.user_by_name(s, "demo-clinician").org_id
        other = next(h for h in registry_queries.hospital_ids(s) if h != org_id)
        codes = tuple(registry_queries.organization_by_id(s, o).code for o in (org_id, other))
    yield {"url": region_url, "code": codes[0], "other": codes[1], "engine": eng, "org_id": org_id}
    eng.dispose()


def message(region, n: int, **kw) -> bytes:
    rid = resident_id(date(1958, 8, 8), seq=700 + 2 * n, county="110105")
    return oru(control=f"CLI-{n}", filler=f"CLI-F-{n}", rid=rid, name="司马青", born="19580808",
               facility=kw.pop("facility", region["code"]), mrn=f"CLI-MR-{n}", **kw)


def invoke(region, *files, source=None):
    args = ["import-hl7", *map(str, files), "--source", source or region["code"], "--database-url", region["url"]]
    return runner.invoke(app, args)


def reports(region, *numbers) -> list:
    with make_sessionmaker(region["engine"], info=dict(SESSION_INFO))() as s:
        return list(s.scalars(select(Report).where(Report.filler_number.in_([f"CLI-F-{n}" for n in numbers]))))


def test_a_framed_file_of_two_messages_is_imported_and_reported(region, tmp_path):
    path = tmp_path / "two.hl7"
    path.write_bytes(b"\x0b" + message(region, 1) + b"\x1c\r\x0b" + message(region, 2) + b"\x1c\r")
    result = invoke(region, path)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [re.match(r"two\.hl7#(\d) (\S+): (\w+)", line).groups() for line in lines] == [
        ("1", "CLI-1", "accepted"), ("2", "CLI-2", "accepted")]
    assert "created" in lines[0] and len(reports(region, 1, 2)) == 2
    again = invoke(region, path)
    assert again.exit_code == 0 and again.output.count(": duplicate") == 2 and len(reports(region, 1, 2)) == 2


def test_a_refused_message_gives_exit_code_2_and_the_others_are_kept(region, tmp_path):
    good, bad = message(region, 3), message(region, 4).replace(b"||4.1|", b"||4..1|")
    path = tmp_path / "lf.txt"
    path.write_bytes(good.replace(b"\r", b"\n") + bad.replace(b"\r", b"\r\n"))
    result = invoke(region, path)
    assert result.exit_code == 2
    assert "lf.txt#1 CLI-3: accepted" in result.output
    assert re.search(r"lf\.txt#2 CLI-4: rejected — RES-026 OBX-5: .*4\.\.1", result.output)
    assert [r.filler_number for r in reports(region, 3, 4)] == ["CLI-F-3"]


def test_the_files_are_those_of_the_source_organisation(region, tmp_path):
    theirs = tmp_path / "theirs.hl7"
    theirs.write_bytes(message(region, 5, facility=region["other"]))
    result = invoke(region, theirs)
    assert result.exit_code == 2 and "RES-192" in result.output and not reports(region, 5)
    named = tmp_path / "named.hl7"  # MSH-4 names the hospital without its code: taken as the source
    sender = f"|{region['code']}^{region['code']}^L|".encode()
    named.write_bytes(message(region, 6).replace(sender, "|某医院|".encode()))
    assert invoke(region, named).exit_code == 0
    assert reports(region, 6)[0].issuer_org_id == region["org_id"]


def test_an_unknown_source_stops_before_reading(region, tmp_path):
    path = tmp_path / "x.hl7"
    path.write_bytes(message(region, 7))
    result = invoke(region, path, source="NO-SUCH-ORG")
    assert result.exit_code != 0 and not reports(region, 7)


def test_a_worker_process_parses_the_next_chunk_and_the_order_is_kept(region, tmp_path, monkeypatch):
    from healthgrid.results import ingest

    monkeypatch.setattr(ingest, "CHUNK", 2)
    parts = [message(region, n) for n in (8, 9, 10, 11)]
    path = tmp_path / "many.hl7"
    path.write_bytes(b"".join(b"\x0b" + p + b"\x1c\r" for p in parts[:2]) + b"stray bytes\r"
                     + b"".join(b"\x0b" + p + b"\x1c\r" for p in parts[2:]))
    result = runner.invoke(app, ["import-hl7", str(path), "--source", region["code"], "--workers", "1",
                                 "--database-url", region["url"]])
    assert result.exit_code == 2
    found = re.findall(r"many\.hl7#(\d) (\S+): (\w+)", result.output)
    assert [(n, status) for n, _, status in found] == [("1", "accepted"), ("2", "accepted"), ("3", "rejected"),
                                                       ("4", "accepted"), ("5", "accepted")]
    assert "RES-030" in result.output and len(reports(region, 8, 9, 10, 11)) == 4
