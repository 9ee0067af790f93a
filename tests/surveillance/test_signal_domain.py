"""The signal lifecycle, its refusals, the 24-hour clock, suppression and the KPIs (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from healthgrid.errors import Conflict, Invalid
from healthgrid.surveillance import signal_domain as sd

S = sd.Status
T0 = datetime(2025, 3, 11, 1, 0, tzinfo=UTC)

MOVES = [  # (action, outcome, from, to)
    ("verify", "excluded", S.NOTIFIED, S.VERIFIED_EXCLUDED),
    ("verify", "suspected", S.NOTIFIED, S.SUSPECTED),
    ("verify", "suspected", S.GENERATED, S.SUSPECTED),  # seen on the page before the notification
    ("investigate", None, S.SUSPECTED, S.FIELD_INVESTIGATION),
    ("conclude", "confirmed", S.FIELD_INVESTIGATION, S.CONFIRMED),
    ("conclude", "excluded", S.FIELD_INVESTIGATION, S.EXCLUDED),
    ("close", None, S.VERIFIED_EXCLUDED, S.CLOSED),
    ("close", None, S.CONFIRMED, S.CLOSED),
    ("close", None, S.EXCLUDED, S.CLOSED),
]


@pytest.mark.parametrize(("action", "outcome", "start", "end"), MOVES)
def test_each_step_of_the_lifecycle_is_allowed(action, outcome, start, end):
    target = sd.target_of(action, outcome)
    assert target is end
    sd.check_transition(start.value, target)
    assert action in sd.actions_from(start.value)


REFUSED = [
    ("close", None, S.NOTIFIED),  # not verified yet
    ("close", None, S.SUSPECTED),  # a suspected event is investigated before it is closed
    ("investigate", None, S.NOTIFIED),
    ("conclude", "confirmed", S.SUSPECTED),
    ("verify", "excluded", S.FIELD_INVESTIGATION),
    ("verify", "suspected", S.CLOSED),
    ("investigate", None, S.CLOSED),
]


@pytest.mark.parametrize(("action", "outcome", "start"), REFUSED)
def test_an_illegal_move_names_the_allowed_next_states(action, outcome, start):
    with pytest.raises(Conflict) as exc:
        sd.check_transition(start.value, sd.target_of(action, outcome))
    assert exc.value.code == "SURV-401"
    assert exc.value.detail["allowed"] == sorted(s.value for s in sd.NEXT[start])
    assert action not in sd.actions_from(start.value)


def test_unknown_actions_and_outcomes_are_refused():
    for action, outcome in (("approve", None), ("verify", None), ("verify", "confirmed"), ("conclude", "suspected")):
        with pytest.raises(Invalid) as exc:
            sd.target_of(action, outcome)
        assert exc.value.code == "SURV-400"


def test_a_closed_signal_offers_nothing():
    assert sd.actions_from("closed") == []
    assert sd.actions_from("notified") == ["assign", "verify"]


def test_notes_are_bounded_and_required_where_asked():
    assert sd.check_note("  ") is None
    with pytest.raises(Invalid):
        sd.check_note("", required=True)
    with pytest.raises(Invalid):
        sd.check_note("x" * 2001)


def test_the_24_hour_clock():
    due = sd.verify_due(T0, 24)
    assert due == T0 + timedelta(hours=24)
    assert not sd.is_overdue("notified", due, due)
    assert sd.is_overdue("notified", due, due + timedelta(seconds=1))
    assert sd.is_overdue("generated", due, due + timedelta(hours=5))
    assert not sd.is_overdue("suspected", due, due + timedelta(hours=5))  # verified: the clock stopped


@pytest.mark.parametrize(("closed", "detected", "days", "expected"), [
    (date(2025, 3, 1), date(2025, 3, 8), 7, True),
    (date(2025, 3, 1), date(2025, 3, 9), 7, False),
    (date(2025, 3, 1), date(2025, 3, 1), 0, True),
    (None, date(2025, 3, 9), 7, False),
    (date(2025, 3, 10), date(2025, 3, 9), 7, False),  # detected before the other was closed (backfill)
])
def test_suppression_after_a_closed_signal(closed, detected, days, expected):
    assert sd.suppressed(closed, detected, days) is expected


def test_open_key_is_stream_and_county():
    assert sd.open_key("case:3600", "930102") == "case:3600|930102"


def test_response_kpis():
    pairs = [(T0, T0 + timedelta(hours=1)), (T0, T0 + timedelta(hours=3)), (T0, T0 + timedelta(hours=30)), (T0, None)]
    k = sd.response_kpis(pairs)
    assert (k.signals, k.responded, k.within) == (4, 3, 2)
    assert k.response_rate == 0.75 and k.within_rate == 0.5 and k.median_hours == 3
    assert sd.response_kpis([]).response_rate is None
