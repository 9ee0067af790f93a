"""The synthetic surveillance history: the plan's seasons, weekday effect and injected
outbreaks; the cards and feed counts written for a small region (counts equal to the plan,
personal fields sealed as agreed, clocks never after now, valid cards); the truth kept for
the bench; determinism for a seed; and the simulated response to signals."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select
from tests.conftest import SESSION_INFO

from healthgrid.registry import service as registry
from healthgrid.security.domain import Actor
from healthgrid.security.pii import SESSION_KEY
from healthgrid.surveillance import kpis, synth
from healthgrid.surveillance.card_fields import CardIn
from healthgrid.surveillance.cards import validate_card
from healthgrid.surveillance.catalogue import load_catalogue
from healthgrid.surveillance.dashboard_counts import CHINA, daily_cases
from healthgrid.surveillance.models import Card, CardEvent, FeedCount, Signal, SignalEvent
from healthgrid.surveillance.synth_cards import World
from healthgrid.surveillance.synth_feeds import school_day
from healthgrid.surveillance.synth_responses import timeline

SYS = Actor.system_actor("tests")
NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai; the history ends on 1 March
COUNTIES = ["910102", "910103", "910104"]


def _months(p: synth.Plan, disease: str, months: set[int]) -> float:
    mask = np.array([(p.start + timedelta(days=t)).month in months for t in range(p.days)])
    return float(p.cases[disease][:, mask].mean())


@pytest.fixture(scope="module")
def plan() -> synth.Plan:
    return synth.plan(COUNTIES, [1.0, 1.5, 0.7], start=date(2023, 3, 2), end=date(2026, 3, 1), seed=11)


def test_the_plan_has_seasons_and_fewer_diagnoses_at_weekends(plan):
    assert plan.days == 1096 and set(plan.cases) == {d.code for d in synth.DISEASES}
    assert _months(plan, "3500", {12, 1, 2}) > 3 * _months(plan, "3500", {6, 7, 8})  # influenza: winter
    assert _months(plan, "4000", {4, 5, 6, 7}) > 2 * _months(plan, "4000", {12, 1, 2})  # HFMD: spring-summer
    assert 0.75 < _months(plan, "2600", {12, 1, 2}) / _months(plan, "2600", {6, 7, 8}) < 1.33  # TB: flat
    sundays = np.array([(plan.start + timedelta(days=t)).weekday() == 6 for t in range(plan.days)])
    flat = plan.cases["2600"] + plan.cases["0300"]
    assert flat[:, sundays].mean() < 0.8 * flat[:, ~sundays].mean()
    assert plan.cases["3500"][1].sum() > plan.cases["3500"][2].sum()  # the larger county reports more


def test_injected_outbreaks_are_where_the_truth_says(plan):
    assert {o.disease for o in plan.outbreaks} == {"3500", "4000", "3900", "L030", "3600"}
    for o in plan.outbreaks:
        c, lo, hi = COUNTIES.index(o.county), (o.start - plan.start).days, (o.end - plan.start).days + 1
        assert o.start >= plan.start + timedelta(days=365) and o.end <= plan.end
        excess = plan.cases[o.disease][c, lo:hi].sum() - plan.expected[o.disease][c, lo:hi].sum()
        assert excess > 0.4 * o.size, o
    recent = next(o for o in plan.outbreaks if o.disease == "3900")
    assert recent.start >= plan.end - timedelta(days=synth.RECENT_DAYS)


def test_the_plan_is_the_same_for_a_seed_and_differs_for_another(plan):
    again = synth.plan(COUNTIES, [1.0, 1.5, 0.7], start=date(2023, 3, 2), end=date(2026, 3, 1), seed=11)
    assert again.outbreaks == plan.outbreaks
    assert all(np.array_equal(again.cases[d], plan.cases[d]) for d in plan.cases)
    other = synth.plan(COUNTIES, [1.0, 1.5, 0.7], start=date(2023, 3, 2), end=date(2026, 3, 1), seed=12)
    assert not np.array_equal(other.cases["3500"], plan.cases["3500"])


# -- written for a region -----------------------------------------------------------------------------

def small_region(session) -> None:
    """A city of two counties, each with two villages, a hospital, a health centre and a CDC."""
    registry.create_division(session, SYS, code="910000", name="青川省", level="province")
    registry.create_division(session, SYS, code="910100", name="安平市", level="city", parent_code="910000")
    for code, name in (("910102", "永宁县"), ("910103", "清平区")):
        registry.create_division(session, SYS, code=code, name=name, level="county", parent_code="910100")
        town = f"{code}001000"
        registry.create_division(session, SYS, code=town, name=name[:2] + "镇", level="township", parent_code=code)
        for v, vname in ((1, "桃源村"), (2, "柳溪村")):
            registry.create_division(session, SYS, code=f"{code}001{v:03d}", name=vname, level="village",
                                     parent_code=town)
        for org_code, org_name, org_type, level, division in (
                (f"H{code}", f"{name}人民医院", "general_hospital", "L2", code),
                (f"T{code}", f"{name[:2]}镇卫生院", "township_health_centre", "L1", town),
                (f"C{code}", f"{name}疾病预防控制中心", "cdc", "L2", code)):
            registry.create_organization(session, SYS, code=org_code, name=org_name, level=level, org_type=org_type,
                                         division_code=division, latitude=30.0, longitude=110.0 + int(code[-1]))


@pytest.fixture
def generated(session):
    small_region(session)
    out = synth.generate(session.connection(), size="tiny", seed=5, info=SESSION_INFO, now=NOW)
    return out


def test_cards_and_feeds_follow_the_plan(session, generated):
    world = World.load(session)
    first, last = synth.history("tiny", date(2026, 3, 2))
    assert (first, last) == (date(2022, 3, 2), date(2026, 3, 1))  # four years: three of baseline
    p = synth.plan([c.code for c in world.counties], [c.weight for c in world.counties], start=first, end=last,
                   seed=5)
    for code in ("3500", "4000", "2600"):
        for c, county in enumerate(world.counties):
            seen = daily_cases(session, disease=code, counties=[county.code], since=first,
                               until=last - timedelta(days=3))
            assert np.array_equal(seen, p.cases[code][c, :-3]), (code, county.code)  # deleted duplicates not counted
    assert session.scalar(select(func.count()).select_from(Card)) == generated["surv_cards"]
    assert session.scalar(select(func.count()).select_from(Card).where(Card.status == "deleted")) == \
        generated["surv_cards_deleted"] > 0
    assert session.scalar(select(func.count()).select_from(CardEvent)) == generated["surv_card_events"]
    assert session.scalar(select(func.count()).select_from(FeedCount)) == generated["surv_feed_counts"]
    assert generated["surv_outbreaks_injected"] == len(p.outbreaks) == 5
    assert synth.injected_outbreaks(session) == p.outbreaks
    assert synth.synthetic_days(session) == (first, last)


def test_cards_are_stored_as_agreed_and_never_after_now(session, generated):
    ring = SESSION_INFO[SESSION_KEY]
    cards = session.scalars(select(Card).order_by(Card.id)).all()
    keys = {"patient_name", "parent_name", "id_type", "id_number", "id_holder", "phone", "work_unit", "school_class",
            "current_address", "household_address"}
    for card in cards[::37]:
        personal = json.loads(ring.decrypt(card.personal_enc, "surv.card.personal"))
        assert set(personal) == keys and card.card_number == f"CRB{card.id:010d}"
        assert card.id_bidx == ring.blind_index(personal["id_number"], "surv.card.id")
        assert card.county_code == card.current_address_code[:6] and card.county_code in ("910102", "910103")
        assert set(card.fields) <= {"supplementary_card", "report_unit_area_code", "synthetic",
                                    "population_group_other"}  # no personal data in clear
    latest = max(max(c.reported_at, c.reviewed_at or c.reported_at, c.deleted_at or c.reported_at, c.updated_at)
                 for c in cards)
    assert latest <= NOW
    in_time = sum(c.reported_at <= c.report_due_at for c in cards) / len(cards)
    reviewed = [c for c in cards if c.reviewed_at is not None]
    assert 0.88 < in_time < 0.98 and sum(c.reviewed_at <= c.review_due_at for c in reviewed) / len(reviewed) > 0.9
    assert {c.status for c in cards} >= {"reviewed", "deleted"} and any(c.report_type == "correction" for c in cards)
    hfmd = [c for c in cards if c.disease == "4000"]
    assert max(c.age for c in hfmd if c.age_unit == "years") <= 9 and all(c.fields["supplementary_card"] for c in hfmd)


def test_a_sample_of_cards_passes_the_card_rules(session, generated):
    """Every rule of §5.3 (the synthetic region's 9x codes are accepted as synthetic)."""
    ring, cat = SESSION_INFO[SESSION_KEY], load_catalogue()
    seen: set[str] = set()
    for card in session.scalars(select(Card).where(Card.status != "deleted").order_by(Card.id)).all()[::23]:
        p = json.loads(ring.decrypt(card.personal_enc, "surv.card.personal"))
        form = CardIn(card_number=card.card_number, report_type=card.report_type,
                      corrected_disease=card.corrected_disease, correction_reason=card.correction_reason,
                      **{k: v for k, v in p.items()}, sex=card.sex, birth_date=card.birth_date, age=card.age,
                      age_unit=card.age_unit, belongs_to=card.belongs_to,
                      current_address_code=card.current_address_code, population_group=card.population_group,
                      population_group_other=card.fields.get("population_group_other"), case_class=card.case_class,
                      case_class2=card.case_class2, onset_date=card.onset_date,
                      diagnosed_at=card.diagnosed_at.astimezone(CHINA).replace(tzinfo=None), disease=card.disease,
                      subtype=card.subtype, supplementary_card=card.fields["supplementary_card"],
                      report_area_code=card.report_area_code, report_unit_code=card.report_unit_code,
                      report_unit_area_code=card.fields["report_unit_area_code"], doctor=card.doctor,
                      fill_date=card.fill_date)
        seen |= {p.code for p in validate_card(form, catalogue=cat, now=NOW.astimezone(CHINA).replace(tzinfo=None))}
    assert seen == set()


def test_feeds_follow_the_seasons_and_school_days(session, generated):
    rows = session.execute(select(FeedCount.feed, FeedCount.metric, FeedCount.day, FeedCount.count,
                                  FeedCount.total)).all()
    assert {(f, m) for f, m, *_ in rows} == {("fever", "ILI"), ("lab", "influenza_a"), ("pharmacy", "antipyretic"),
                                             ("pharmacy", "antidiarrhoeal"), ("school", "fever")}
    assert all(school_day(d) for f, _m, d, _n, _t in rows if f == "school")
    assert all(t is not None and n <= t for f, _m, _d, n, t in rows if f in ("fever", "lab"))
    ili = [(d.month, n) for f, _m, d, n, _t in rows if f == "fever"]
    winter = np.mean([n for m, n in ili if m in (12, 1, 2)])
    summer = np.mean([n for m, n in ili if m in (6, 7, 8)])
    assert winter > 2 * summer


def test_generation_is_deterministic_for_a_seed(session):
    small_region(session)
    conn = session.connection()

    def fingerprint() -> tuple:
        cards = conn.execute(select(Card.disease, Card.county_code, Card.diagnosed_at, Card.reported_at,
                                    Card.reviewed_at, Card.status, Card.sex, Card.birth_date, Card.population_group,
                                    Card.id_bidx).order_by(Card.id)).all()
        feeds = conn.execute(select(FeedCount.feed, FeedCount.source, FeedCount.day, FeedCount.metric,
                                    FeedCount.count, FeedCount.total).order_by(FeedCount.id)).all()
        return cards, feeds

    runs = []
    for _ in range(2):
        nested = conn.begin_nested()
        synth.generate(conn, size="tiny", seed=9, info=SESSION_INFO, now=NOW)
        runs.append(fingerprint())
        nested.rollback()
    assert runs[0] == runs[1] and len(runs[0][0]) > 5000


# -- the response to signals ------------------------------------------------------------------------------

def _signals(session, n: int, start: datetime) -> None:
    for i in range(n):
        day = (start + timedelta(days=i)).astimezone(CHINA).date()
        session.add(Signal(stream="case:3500" if i % 10 else "case:0100", county_code="910102",
                           division_code="910102", method="mpm" if i % 10 else "fixed", detected_on=day,
                           observed=5, threshold=3, detail={}, status="generated",
                           open_key=f"case:{i}|910102", generated_at=start + timedelta(days=i),
                           verify_due_at=start + timedelta(days=i, hours=24)))
    session.flush()


def test_simulated_responses_follow_the_lifecycle_and_give_cidars_like_kpis(session):
    start = datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
    _signals(session, 300, start)
    now = start + timedelta(days=299, hours=2)  # the last signals are recent: some not yet verified
    out = synth.simulate_responses(session, seed=3, now=now)
    assert out["signals_walked"] == 300
    allowed = {("generated", "notified"), ("notified", "verified_excluded"), ("notified", "suspected"),
               ("suspected", "field_investigation"), ("field_investigation", "confirmed"),
               ("field_investigation", "excluded"), ("verified_excluded", "closed"), ("confirmed", "closed"),
               ("excluded", "closed")}
    session.expire_all()
    for sig in session.scalars(select(Signal)):
        events = session.scalars(select(SignalEvent).where(SignalEvent.signal_id == sig.id)
                                 .order_by(SignalEvent.at)).all()
        chain = [(e.from_status, e.to_status) for e in events]
        assert set(chain) <= allowed and chain[0][0] == "generated" and chain[-1][1] == sig.status
        assert all(e.at <= now for e in events) and (sig.open_key is None) == (sig.status == "closed")
        assert sig.verification == {"verified_excluded": "excluded", "suspected": "suspected"}.get(
            next((to for _f, to in chain if to in ("verified_excluded", "suspected")), None))
    small_region(session)
    k = kpis.response_kpis(session, SYS, county="910102", since=date(2025, 1, 1), until=date(2025, 10, 1), now=now)
    assert k.response_rate.value > 0.95 and k.within_24h_rate.value > 0.88
    assert k.median_response_hours < 2.5 and 0.01 < k.suspected_rate.value < 0.15


def test_a_later_run_continues_the_same_story(session):
    start = datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
    _signals(session, 40, start)
    early = start + timedelta(days=20)
    synth.simulate_responses(session, seed=4, now=early)
    synth.simulate_responses(session, seed=4, now=start + timedelta(days=80))
    session.expire_all()
    for sig in session.scalars(select(Signal)):
        steps = timeline(sig.generated_at, random.Random(f"responses-4-{sig.id}"),
                         fixed=sig.method == "fixed")
        done = [(s, at) for s, at in steps if at <= start + timedelta(days=80)]
        events = session.scalars(select(SignalEvent).where(SignalEvent.signal_id == sig.id)
                                 .order_by(SignalEvent.at)).all()
        assert [(e.to_status, e.at) for e in events] == done
