"""Signals on the database: raising with de-duplication (and two workers racing) and
suppression, the notification of the county CDC, every step of the response and its
refusals, scope, the 24-hour reminder, reading one signal, and the warning products."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from tests.conftest import SESSION_INFO

from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.errors import Conflict, Forbidden, Invalid, PreconditionFailed
from healthgrid.migrate import upgrade
from healthgrid.notifications import service as notifications
from healthgrid.security.models import AuditEvent
from healthgrid.surveillance import products, signal_queries, signals
from healthgrid.surveillance.detection_methods import Alarm
from healthgrid.surveillance.models import Signal, SignalEvent

from .signal_fixtures import DAY, NOW, SYS, add_card, make_world, tune

MUMPS = "3600"


@pytest.fixture
def world(session):
    return make_world(session)


def alarm(world, county=0, *, day=DAY, method="mpm", stream=f"case:{MUMPS}", observed=12.0, threshold=7.0, **detail):
    return Alarm(stream, stream.split(":")[1] if stream.startswith("case:") else None, world.county(county), method,
                 day, observed, threshold, {"percentile": 80, **detail})


def raised(session, world, county=0, **kw) -> Signal:
    out = signals.raise_signal(session, alarm(world, county, **kw), now=NOW)
    assert out.outcome == "created"
    return session.get(Signal, out.signal_id)


# -- raising ----------------------------------------------------------------------------------------

def test_a_new_signal_is_generated_with_its_clock_event_and_outbox_message(session, world):
    s = raised(session, world)
    assert (s.status, s.open_key, s.verify_due_at) == ("generated", f"case:{MUMPS}|{world.county()}",
                                                       NOW + timedelta(hours=24))
    [event] = session.scalars(select(SignalEvent).where(SignalEvent.signal_id == s.id)).all()
    assert (event.from_status, event.to_status, event.note) == (None, "generated", "mpm: 12 > 7")


def test_a_second_alarm_of_the_same_stream_and_county_joins_the_open_signal(session, world):
    s = raised(session, world)
    again = signals.raise_signal(session, alarm(world, day=DAY + timedelta(days=1), method="scan"), now=NOW)
    assert (again.signal_id, again.outcome) == (s.id, "deduped")
    assert session.get(Signal, s.id).version == 1  # left untouched
    other_county = signals.raise_signal(session, alarm(world, 1), now=NOW)
    other_stream = signals.raise_signal(session, alarm(world, stream="fever:ILI", method="cusum"), now=NOW)
    assert other_county.outcome == other_stream.outcome == "created"


def test_after_closing_no_new_signal_for_the_suppression_days(session, world):
    tune(session, suppression_days=7)
    s = raised(session, world)
    for action, outcome in (("verify", "excluded"), ("close", None)):
        signals.act_on_signal(session, world.epi_a, s.id, action=action, outcome=outcome, note="查无聚集", now=NOW)
    assert session.get(Signal, s.id).open_key is None
    # closed on the local day after DAY (NOW is 01:30 the next morning)
    within = signals.raise_signal(session, alarm(world, day=DAY + timedelta(days=8)), now=NOW)
    assert within == signals.Raised(None, "suppressed")
    after = signals.raise_signal(session, alarm(world, day=DAY + timedelta(days=9)), now=NOW)
    assert after.outcome == "created" and after.signal_id != s.id


def test_a_fixed_threshold_case_is_never_suppressed(session, world):
    tune(session, suppression_days=30)
    first = add_card(session, "0100", world.county(), DAY)
    s = signals.raise_for_card(session, {"card_id": first.id, "fixed_threshold": True}, now=NOW)
    for action, outcome in (("verify", "excluded"), ("close", None)):
        signals.act_on_signal(session, SYS, s.signal_id, action=action, outcome=outcome, note="误报", now=NOW)
    second = add_card(session, "0100", world.county(), DAY + timedelta(days=1))
    again = signals.raise_for_card(session, {"card_id": second.id, "fixed_threshold": True}, now=NOW)
    assert again.outcome == "created"
    repeat = signals.raise_for_card(session, {"card_id": first.id, "fixed_threshold": True}, now=NOW)
    assert repeat.outcome == "deduped"  # a case already signalled is not signalled twice


# -- notification ------------------------------------------------------------------------------------

def test_the_county_cdc_desk_is_notified_and_the_signal_becomes_notified(session, world):
    s = raised(session, world, 1)
    assert signals.notify_signal(session, s.id, now=NOW) is True
    assert (s.status, s.notified_at) == ("notified", NOW)
    [message] = notifications.messages_to(session, "org", world.cdcs[1].id)
    assert message.link == f"/surveillance/signals/{s.id}" and "流行性腮腺炎" in message.body["zh"]
    assert "清远县" in message.body["zh"]
    assert signals.notify_signal(session, s.id, now=NOW) is False  # once
    assert len(notifications.messages_to(session, "org", world.cdcs[1].id)) == 1


def test_the_county_epidemiologist_finds_the_signal_in_their_inbox(session, world):
    s = raised(session, world, 0)
    signals.notify_signal(session, s.id, now=NOW)
    [message] = notifications.inbox(session, world.epi_a, patient_ids=[])
    assert message.link == f"/surveillance/signals/{s.id}"
    other = raised(session, world, 1)
    signals.notify_signal(session, other.id, now=NOW)
    assert [m.link for m in notifications.inbox(session, world.epi_a, patient_ids=[])] == [message.link]


def test_a_county_without_its_own_cdc_is_answered_by_the_city_cdc(session, world):
    from healthgrid.registry import service as registry

    registry.update_organization(session, SYS, world.cdcs[2].id, {"active": False})
    assert signals.county_cdc(session, world.county(2)) == world.city_cdc.id


# -- the response ------------------------------------------------------------------------------------

def test_a_suspected_event_is_investigated_confirmed_and_closed(session, world):
    s = raised(session, world)
    signals.notify_signal(session, s.id, now=NOW)
    later = NOW + timedelta(hours=2)
    v = signals.verify_signal(session, world.epi_a, s.id, outcome="suspected", note="同一学校3个班级",
                              expected_version=2, now=later)
    assert (v.status, v.verification, v.verified_at, v.responsible) == ("suspected", "suspected", later,
                                                                        world.epi_a.username)
    v = signals.investigate_signal(session, world.epi_a, s.id, note="赴现场", expected_version=v.version, now=later)
    v = signals.conclude_signal(session, world.epi_a, s.id, outcome="confirmed", note="流行性腮腺炎暴发",
                                expected_version=v.version, now=later)
    v = signals.close_signal(session, world.epi_a, s.id, expected_version=v.version, now=later)
    assert (v.status, v.conclusion, v.closed_at, v.actions) == ("closed", "confirmed", later, [])
    moves = [(e.from_status, e.to_status) for e in v.events if e.to_status]
    assert moves == [(None, "generated"), ("generated", "notified"), ("notified", "suspected"),
                     ("suspected", "field_investigation"), ("field_investigation", "confirmed"),
                     ("confirmed", "closed")]
    audited = session.scalars(select(AuditEvent.detail).where(AuditEvent.resource_type == "Signal",
                                                              AuditEvent.action == "update")).all()
    assert len(audited) == 4


def test_an_excluded_investigation_is_closed(session, world):
    s = raised(session, world)
    for action, outcome in (("verify", "suspected"), ("investigate", None), ("conclude", "excluded"), ("close", None)):
        v = signals.act_on_signal(session, world.epi_a, s.id, action=action, outcome=outcome, note="调查", now=NOW)
    assert (v.status, v.conclusion) == ("closed", "excluded")


def test_an_illegal_move_is_refused_naming_the_allowed_next_states(session, world):
    s = raised(session, world)
    with pytest.raises(Conflict) as exc:
        signals.close_signal(session, world.epi_a, s.id, now=NOW)
    assert exc.value.code == "SURV-401" and exc.value.detail["allowed"] == ["notified", "suspected",
                                                                            "verified_excluded"]
    with pytest.raises(Conflict):
        signals.investigate_signal(session, world.epi_a, s.id, now=NOW)
    assert session.get(Signal, s.id).status == "generated"


def test_verification_needs_a_note_and_a_known_outcome(session, world):
    s = raised(session, world)
    with pytest.raises(Invalid) as exc:
        signals.verify_signal(session, world.epi_a, s.id, outcome="suspected", note=" ", now=NOW)
    assert exc.value.code == "SURV-404"
    with pytest.raises(Invalid) as exc:
        signals.verify_signal(session, world.epi_a, s.id, outcome="maybe", note="?", now=NOW)
    assert exc.value.code == "SURV-400"


def test_a_stale_version_is_refused(session, world):
    s = raised(session, world)
    signals.notify_signal(session, s.id, now=NOW)
    with pytest.raises(PreconditionFailed) as exc:
        signals.verify_signal(session, world.epi_a, s.id, outcome="excluded", note="无", expected_version=1, now=NOW)
    assert exc.value.code == "SURV-402" and exc.value.detail["version"] == 2


def test_a_responsible_epidemiologist_is_assigned_and_notes_are_kept(session, world):
    s = raised(session, world)
    v = signals.assign_signal(session, world.epi_city, s.id, responsible=world.epi_a.username, now=NOW)
    assert v.responsible == world.epi_a.username
    with pytest.raises(Invalid) as exc:
        signals.assign_signal(session, world.epi_city, s.id, responsible=world.admin_a.username, now=NOW)
    assert exc.value.code == "SURV-405"  # a facility administrator does not answer signals
    version = session.get(Signal, s.id).version
    v = signals.note_signal(session, world.epi_a, s.id, note="已电话联系学校", now=NOW)
    assert v.version == version and v.events[-1].note == "已电话联系学校" and v.events[-1].to_status is None


def test_only_the_cdc_of_the_county_or_above_may_act(session, world):
    s = raised(session, world, 0)
    with pytest.raises(Forbidden):
        signals.verify_signal(session, world.epi_b, s.id, outcome="excluded", note="无", now=NOW)
    with pytest.raises(Forbidden):
        signals.note_signal(session, world.admin_a, s.id, note="x", now=NOW)
    assert signals.note_signal(session, world.epi_city, s.id, note="市疾控已知悉", now=NOW).id == s.id


# -- the 24-hour reminder ------------------------------------------------------------------------------

def test_a_signal_unverified_after_24_hours_is_reminded_once(session, world):
    s = raised(session, world)
    signals.assign_signal(session, world.epi_a, s.id, now=NOW)
    done = raised(session, world, 1)
    signals.verify_signal(session, world.epi_b, done.id, outcome="excluded", note="无", now=NOW)
    assert signals.remind_overdue(session, NOW + timedelta(hours=23)) == 0
    assert signals.remind_overdue(session, NOW + timedelta(hours=25)) == 1
    assert signals.remind_overdue(session, NOW + timedelta(hours=30)) == 0
    old = raised(session, world, 2)  # a deadline long past (a backfilled history): not news
    assert signals.remind_overdue(session, NOW + timedelta(days=9)) == 0 and old.status == "generated"
    [to_desk] = notifications.messages_to(session, "org", world.cdcs[0].id)
    [to_epi] = notifications.messages_to(session, "user", world.epi_a.user_id)
    assert to_desk.topic == to_epi.topic == "surveillance.signal_overdue"


# -- reading -----------------------------------------------------------------------------------------------

def test_a_case_signal_is_read_with_its_events_cards_and_series(session, world):
    cards = [add_card(session, MUMPS, world.county(), DAY - timedelta(days=d)) for d in (0, 3, 8)]
    s = raised(session, world)
    v = signal_queries.get_signal(session, world.epi_a, s.id, now=NOW)
    assert v.card_ids == sorted(c.id for c in cards[:2])  # the 7-day window only; ids, never contents
    assert v.stream_zh == "流行性腮腺炎" and v.county_name == "永宁县" and v.actions == ["assign", "verify"]
    assert len(v.curve.days) == 56 and v.curve.days[-1] == DAY and v.curve.statistic_kind == "cases_7d"
    assert v.curve.counts[-1] == 1 and v.curve.statistic[-1] == 2  # 7-day sum on the day
    viewed = session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "Signal",
                                                      AuditEvent.action == "view")).all()
    assert len(viewed) == 1


def test_the_list_filters_and_keeps_to_the_counties_in_scope(session, world):
    a = raised(session, world, 0)
    b = raised(session, world, 1, stream="fever:ILI", method="cusum")
    overdue = NOW + timedelta(hours=25)
    q = signal_queries.SignalQuery
    assert [v.id for v in signal_queries.list_signals(session, world.epi_a, q(), now=NOW)] == [a.id]
    assert {v.id for v in signal_queries.list_signals(session, world.epi_city, q(), now=NOW)} == {a.id, b.id}
    assert [v.id for v in signal_queries.list_signals(session, SYS, q(method="cusum"), now=NOW)] == [b.id]
    assert [v.id for v in signal_queries.list_signals(session, SYS, q(disease=MUMPS), now=NOW)] == [a.id]
    signals.verify_signal(session, SYS, b.id, outcome="suspected", note="核实", now=NOW)
    late = signal_queries.list_signals(session, SYS, q(overdue=True), now=overdue)
    assert [v.id for v in late] == [a.id] and late[0].overdue
    assert [v.id for v in signal_queries.list_signals(session, SYS, q(status=["suspected"]), now=NOW)] == [b.id]
    with pytest.raises(Invalid):
        signal_queries.list_signals(session, SYS, q(status=["open"]), now=NOW)
    with pytest.raises(Forbidden):
        signal_queries.list_signals(session, world.admin_a, q(), now=NOW)


# -- warning products ----------------------------------------------------------------------------------------

def test_products_are_drafted_edited_and_issued_only_from_a_suspected_event(session, world):
    s = raised(session, world)
    drafts = {p: products.draft_warning(session, world.epi_a, s.id, product=p, now=NOW) for p in products.PRODUCTS}
    risk = drafts["risk_notice"]
    assert risk.title == "永宁县流行性腮腺炎健康风险提示" and risk.audience == "社会公众"
    assert "近7日报告病例12例" in risk.body and "永宁县疾病预防控制中心" in risk.body
    assert drafts["notification"].audience.startswith("有关部门") and "首诊负责制" in drafts["notification"].body
    assert drafts["decision_advice"].body.startswith("永宁县人民政府")
    edited = products.edit_warning(session, world.epi_a, risk.id, title="健康风险提示（修订）", body="正文")
    assert (edited.title, edited.body, edited.status) == ("健康风险提示（修订）", "正文", "draft")
    with pytest.raises(Conflict) as exc:
        products.issue_warning(session, world.epi_a, risk.id, now=NOW)
    assert exc.value.code == "SURV-463"  # not verified yet
    signals.verify_signal(session, world.epi_a, s.id, outcome="suspected", note="疑似暴发", now=NOW)
    issued = products.issue_warning(session, world.epi_a, risk.id, now=NOW)
    assert (issued.status, issued.issued_by, issued.issued_at) == ("issued", world.epi_a.username, NOW)
    with pytest.raises(Conflict) as exc:
        products.edit_warning(session, world.epi_a, risk.id, title="x", body="y")
    assert exc.value.code == "SURV-462"
    with pytest.raises(Conflict) as exc:
        products.issue_warning(session, world.epi_a, risk.id, now=NOW)
    assert exc.value.code == "SURV-465"
    assert [w.product for w in products.list_warnings(session, world.epi_a, s.id)] == list(products.PRODUCTS)
    printed = products.get_warning(session, world.epi_a, risk.id, printing=True)
    assert printed.issuer_name == "永宁县疾病预防控制中心"
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "print")) == 1


def test_no_product_for_an_excluded_signal_or_outside_scope(session, world):
    s = raised(session, world)
    with pytest.raises(Forbidden):
        products.draft_warning(session, world.epi_b, s.id, product="risk_notice", now=NOW)
    with pytest.raises(Invalid) as exc:
        products.draft_warning(session, world.epi_a, s.id, product="press_release", now=NOW)
    assert exc.value.code == "SURV-460"
    signals.verify_signal(session, world.epi_a, s.id, outcome="excluded", note="无", now=NOW)
    with pytest.raises(Conflict) as exc:
        products.draft_warning(session, world.epi_a, s.id, product="risk_notice", now=NOW)
    assert exc.value.code == "SURV-463"


# -- two workers raising at once (PostgreSQL: the unique open key decides) --------------------------------

@pytest.fixture(scope="module")
def maker(fresh_databases):
    url = fresh_databases.create("surv_race")
    upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine, info=dict(SESSION_INFO))
    engine.dispose()


def test_two_workers_raising_the_same_signal_make_one(maker):
    from tests.scheduling.test_race import race

    with maker() as s:
        world = make_world(s, prefix="95")

    def raise_it(session):
        return signals.raise_signal(session, alarm(world), now=NOW)

    out = race(maker, [raise_it] * 4)
    assert out.errors == []
    assert sorted(r.outcome for r in out.won) == ["created", "deduped", "deduped", "deduped"]
    assert len({r.signal_id for r in out.won}) == 1
    with maker() as s:
        assert s.scalar(select(func.count()).select_from(Signal)) == 1
