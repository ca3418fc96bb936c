"""The event scope rules: date window in the rep's zone, user-selected events, privacy."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from crmsync.domain.records import Event, EventTiming, ItemKind, Recurrence
from crmsync.domain.settings import EventSelection, EventSettings, EventWindow, SyncConfig
from crmsync.domain.sync import Side
from crmsync.service.policies import policy_for, window_first_day

BERLIN = "Europe/Berlin"
# 2026-11-24 10:00 in Berlin.
NOW = dt.datetime(2026, 11, 24, 9, tzinfo=dt.UTC)


def local(day: int, hour: int, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=ZoneInfo(BERLIN)).astimezone(dt.UTC)


def scope(**settings: object):
    config = SyncConfig("c", events=EventSettings(**settings))  # type: ignore[arg-type]
    return policy_for(config, ItemKind.EVENT, now=NOW, rep_zone=BERLIN).out_of_scope


def timed(end: dt.datetime, **fields: object) -> Event:
    return Event("x", EventTiming(end - dt.timedelta(hours=1), end, BERLIN), **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("window", "days", "first"),
    [
        (EventWindow.TODAY, 30, dt.date(2026, 11, 24)),
        (EventWindow.LAST_MONTH, 30, dt.date(2026, 10, 1)),
        (EventWindow.LAST_N_DAYS, 30, dt.date(2026, 10, 25)),
        (EventWindow.LAST_N_DAYS, 180, dt.date(2026, 5, 28)),
    ],
)
def test_the_window_starts_on_the_spec_day(window: EventWindow, days: int, first: dt.date) -> None:
    settings = EventSettings(window=window, window_days=days)
    assert window_first_day(settings, NOW, BERLIN) == first


def test_the_window_starts_at_midnight_in_the_reps_zone() -> None:
    rule = scope()
    # 23:30 yesterday in Berlin is 22:30 UTC: out; 00:30 today in Berlin is 23:30 UTC: in.
    assert rule(Side.CRM, timed(local(23, 23) + dt.timedelta(minutes=30))) == "outside TODAY"
    assert rule(Side.CRM, timed(local(24, 0) + dt.timedelta(minutes=30))) is None


def test_all_day_events_count_by_their_last_day() -> None:
    rule = scope()
    yesterday = Event("y", EventTiming(dt.date(2026, 11, 23), dt.date(2026, 11, 24)))
    today = Event("t", EventTiming(dt.date(2026, 11, 24), dt.date(2026, 11, 25)))
    assert rule(Side.MAIL, yesterday) == "outside TODAY"
    assert rule(Side.MAIL, today) is None


def test_last_n_days_keeps_older_events_and_says_which_window() -> None:
    old = timed(local(1, 10))
    assert scope()(Side.CRM, old) == "outside TODAY"
    assert scope(window=EventWindow.LAST_N_DAYS, window_days=30)(Side.CRM, old) is None
    assert (
        scope(window=EventWindow.LAST_N_DAYS, window_days=10)(Side.CRM, old)
        == "outside LAST 10 DAYS"
    )


def test_more_than_180_days_is_refused() -> None:
    with pytest.raises(ValueError, match="1 to 180"):
        EventSettings(window=EventWindow.LAST_N_DAYS, window_days=181)


def test_series_are_not_cut_by_the_window() -> None:
    series = timed(local(1, 10), recurrence=Recurrence("FREQ=WEEKLY"))
    assert scope()(Side.CRM, series) is None
    assert scope(sync_series=False)(Side.CRM, series) == "event series, not synced"


def test_user_selected_events_need_the_category_on_the_mail_side_only() -> None:
    rule = scope(selection=EventSelection.USER_SELECTED)
    plain = timed(local(25, 10))
    selected = timed(local(25, 10), categories=("Work", "crm"))
    assert rule(Side.MAIL, plain) == "not selected: no CRM category"
    assert rule(Side.MAIL, selected) is None
    assert rule(Side.CRM, plain) is None  # CRM events sync to the mailbox regardless


def test_private_events_follow_the_setting() -> None:
    private = timed(local(25, 10), is_private=True)
    assert scope()(Side.MAIL, private) == "private, not synced"
    assert scope(sync_private=True)(Side.MAIL, private) is None
