"""Google's limits: rate limits back off with jitter through the shared limiters, and a
calendar made read-only ("Calendar usage limits exceeded") parks the rep.

These tests use a fake built from Google's documented payloads (`FakeGoogle`); the clock
and sleep are injected, so nothing waits.
"""

from __future__ import annotations

import pytest

from crmsync.domain.sync import ServerUnavailable
from crmsync.groupware.google import UsageLimitExceeded
from tests.groupware.contract import sample_contact, sample_event
from tests.groupware.google.fake_google import FakeGoogle
from tests.groupware.google.harness import GoogleHarness

PROJECT = "google:crmsync-test"
REP_SCOPE = f"{PROJECT}:rep@example.com"


def _blocked(h: GoogleHarness, name: str) -> bool:
    limiter = h.limiters.get(name)
    return limiter is not None and limiter._blocked_until > 0


@pytest.mark.parametrize("kind", ["rateLimitExceeded", "userRateLimitExceeded", "429"])
def test_rate_limits_back_off_exponentially_with_jitter_for_the_rep(kind: str) -> None:
    h = GoogleHarness()
    assert h.fake is not None
    h.fake.fail_next(2, kind, api="calendar")
    h.events.changes(None, {})
    first, second = h.clock.sleeps
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 2.0  # 1 s then 2 s, up to half off
    assert _blocked(h, REP_SCOPE) and not _blocked(h, PROJECT)
    h.close()


def test_retry_after_is_waited_when_google_names_it() -> None:
    h = GoogleHarness()
    assert h.fake is not None
    h.fake.fail_next(1, "429", api="calendar", retry_after="7")
    h.events.changes(None, {})
    assert h.clock.sleeps == [7.0]
    h.close()


def test_a_project_quota_holds_back_the_whole_project() -> None:
    h = GoogleHarness()
    assert h.fake is not None
    h.fake.fail_next(1, "429-project", api="people")
    h.contacts.changes(None, {})
    assert _blocked(h, PROJECT) and not _blocked(h, REP_SCOPE)
    h.fake.fail_next(1, "429", api="people")  # "… per minute per user": the rep only
    h.contacts.changes(None, {})
    assert _blocked(h, REP_SCOPE)
    h.close()


def test_spent_attempts_are_a_transient_server_failure() -> None:
    h = GoogleHarness()
    assert h.fake is not None
    before = h.request_count()
    h.fake.fail_next(10, "503")
    with pytest.raises(ServerUnavailable, match="failed 4 times") as caught:
        h.contacts.changes(None, {})
    assert caught.value.transient and h.request_count() - before == 4
    h.close()


def test_calendar_usage_limit_parks_the_rep_for_hours_without_retrying() -> None:
    fake = FakeGoogle(users=("rep@example.com", "bob@example.com"))
    h = GoogleHarness(fake=fake)
    bob = GoogleHarness(fake=fake, rep="bob@example.com")
    fake.fail_next(1, "quotaExceeded", api="calendar")
    with pytest.raises(UsageLimitExceeded) as caught:
        h.events.create(sample_event(), "e1")
    parked = caught.value
    assert isinstance(parked, ServerUnavailable) and parked.transient
    assert parked.retry_after == 3 * 3600
    assert "read-only" in parked.message and "support.google.com" in parked.suggestion
    assert h.clock.sleeps == []
    # Every request for the rep, contacts too, is refused here without reaching Google.
    sent = len(fake.requests)
    with pytest.raises(UsageLimitExceeded):
        h.contacts.create(sample_contact(), "c1")
    assert len(fake.requests) == sent
    # Other reps go on.
    bob.events.create(sample_event(), "b1")
    # Hours later the rep is served again.
    h.clock.now += 3 * 3600 + 1
    assert h.connection.parked_for(h.rep) == 0
    h.events.create(sample_event(), "e1")
    h.close()
    bob.close()
