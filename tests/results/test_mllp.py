"""The MLLP listener over real TCP on 127.0.0.1: an asyncio client sends framed messages on one
connection and reads each answer — AA once stored (and only then), AE/AR naming the problem for
a malformed message, a refused sender or a bad frame, the connection kept open throughout; a
message that cannot be stored at all is answered AE and nothing is acknowledged."""

from __future__ import annotations

import asyncio

import hl7
import pytest
from sqlalchemy.orm import Session
from tests.conftest import SESSION_INFO
from tests.results.ingest_world import count, make_hubei, oru, sample

from healthgrid.results.mllp import Listener, ListenerConfig
from healthgrid.results.models import Message, Observation, Report

VT, FS_CR = b"\x0b", b"\x1c\r"


@pytest.fixture
def hubei(session):
    return make_hubei(session)


def sessions_on(session):
    """Sessions of the listener's worker on the test's connection (its commits are savepoints of
    the test's transaction, rolled back at the end)."""
    conn = session.get_bind()
    return lambda: Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False,
                           info=dict(SESSION_INFO))


async def exchange(listener: Listener, chunks: list[bytes], answers: int) -> list[bytes]:
    """Send ``chunks`` on one connection, read ``answers`` framed replies."""
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    out = []
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        for _ in range(answers):
            block = await asyncio.wait_for(reader.readuntil(FS_CR), timeout=30)
            assert block.startswith(VT)
            out.append(block[1:-2])
    finally:
        writer.close()
    return out


def run(session, actor, chunks: list[bytes], answers: int, sessions=None) -> list:
    async def go():
        listener = Listener(sessions or sessions_on(session), actor, ListenerConfig(port=0, workers=1,
                                                                                    idle_seconds=30))
        await listener.start()
        try:
            return await exchange(listener, chunks, answers)
        finally:
            await listener.close()
    return asyncio.run(go())


def msa(reply: bytes, codec: str = "utf-8") -> tuple[str, str, str]:
    msg = hl7.parse(reply.decode(codec))
    seg = msg.segment("MSA")
    return str(seg[1]), str(seg[2]), str(seg[3]) if len(seg) > 3 else ""


def framed(data: bytes) -> bytes:
    return VT + data + FS_CR


def test_messages_on_one_connection_are_acknowledged_once_stored(session, hubei):
    first, second = oru(control="M-1", filler="MF-1"), oru(control="M-2", filler="MF-2")
    replies = run(session, hubei.admin_first, [framed(first) + framed(second), framed(first)], 3)
    assert [msa(r)[:2] for r in replies] == [("AA", "M-1"), ("AA", "M-2"), ("AA", "M-1")]
    assert count(session, Report) == 2 and count(session, Observation) == 4 and count(session, Message) == 2
    ack = hl7.parse(replies[0].decode())
    assert str(ack.segment("MSH")[9]) == "ACK^R01^ACK" and str(ack.segment("MSH")[5]) == "LIS"


def test_a_malformed_message_gets_a_nak_naming_the_problem_and_the_connection_carries_on(session, hubei):
    no_obx_value = oru(control="M-bad", filler="MF-bad").replace(b"||4.1|", b"||four|")
    unknown_org = oru(control="M-org", filler="MF-org", facility="999999999")
    good = oru(control="M-ok", filler="MF-ok")
    replies = run(session, hubei.admin_first, [framed(no_obx_value), framed(unknown_org), framed(good)], 3)
    code, control, text = msa(replies[0])
    assert (code, control) == ("AE", "M-bad") and text.startswith("RES-026") and "OBX-5" in text
    err = hl7.parse(replies[0].decode()).segment("ERR")
    assert str(err[2]) == "OBX^1^5" and str(err[3]).startswith("102")
    assert msa(replies[1])[0] == "AE" and msa(replies[1])[2].startswith("RES-192")
    assert msa(replies[2])[:2] == ("AA", "M-ok")
    assert count(session, Report) == 1
    assert sorted(m.status for m in session.query(Message)) == ["accepted", "rejected", "rejected"]


def test_a_bad_frame_gets_a_nak_not_a_crash(session, hubei):
    good = oru(control="M-after", filler="MF-after")
    stump = VT + oru(control="M-cut", filler="MF-cut")[:200]  # a frame cut short, then a whole one
    replies = run(session, hubei.admin_first, [b"garbage before any frame\r", stump, framed(good)], 3)
    assert msa(replies[0])[0] == "AR" and msa(replies[0])[2].startswith("RES-030")
    assert msa(replies[1])[0] == "AR" and msa(replies[1])[1] == "M-cut"
    assert msa(replies[2])[:2] == ("AA", "M-after") and count(session, Report) == 1


def test_a_message_of_another_facility_is_refused_for_this_integration(session, hubei):
    replies = run(session, hubei.admin_renmin, [framed(oru(control="M-x", filler="MF-x"))], 1)
    code, _, text = msa(replies[0])
    assert code == "AE" and text.startswith("SEC-103") and count(session, Report) == 0


def test_the_answer_speaks_the_senders_charset(session, hubei):
    replies = run(session, hubei.admin_first, [framed(sample("oru_r01_cbc_gb18030.hl7"))], 1)
    assert msa(replies[0], "gb18030")[0] == "AE"  # a community centre's message on the hospital's line
    msh = hl7.parse(replies[0].decode("gb18030")).segment("MSH")
    assert str(msh[6]) == "黄陂区前川街社区卫生服务中心^420116101" and str(msh[18]) == "GB 18030-2000"


def test_nothing_is_acknowledged_when_it_cannot_be_stored(session, hubei):
    def broken():
        raise OSError("database unreachable")
    replies = run(session, hubei.admin_first, [framed(oru(control="M-down", filler="MF-down"))], 1,
                  sessions=broken)
    code, control, text = msa(replies[0])
    assert (code, control) == ("AE", "M-down") and "send it again" in text
    assert count(session, Message) == 0


def test_a_result_sent_over_mllp_appears_on_the_patients_results_timeline(session, hubei):
    """The issue's path end to end: an ORU^R01 over MLLP, acknowledged, and the hospital's
    clinician then finds it on the patient's timeline (the audited read the pages use)."""
    from healthgrid.results import timeline

    [reply] = run(session, hubei.admin_first, [framed(oru(control="M-tl", filler="MF-tl"))], 1)
    assert msa(reply)[:2] == ("AA", "M-tl")
    report = session.query(Report).filter_by(filler_number="MF-tl").one()
    seen = timeline.patient_results(session, hubei.clinician, report.patient_id)
    found = [r for day in seen.days for group in day.facilities for r in group.reports if r.id == report.id]
    assert len(found) == 1 and found[0].issuer_org_id == hubei.first.id
    assert found[0].filler_number == "MF-tl"
