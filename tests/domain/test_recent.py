"""`RecentAnswers`: answers by identity, for the last few values, per thread."""

from __future__ import annotations

import threading

from crmsync.domain.recent import RecentAnswers
from crmsync.domain.records import Contact


def test_an_answer_is_for_the_very_object_not_an_equal_one() -> None:
    recent: RecentAnswers[str] = RecentAnswers(8)
    asked, equal = Contact("Ann"), Contact("Ann")
    recent.put(asked, "a")
    assert recent.get(asked) == "a"
    assert recent.get(equal) is None


def test_only_the_last_size_values_are_remembered() -> None:
    recent: RecentAnswers[int] = RecentAnswers(3)
    values = [Contact(str(n)) for n in range(5)]
    for n, value in enumerate(values):
        recent.put(value, n)
    assert [recent.get(v) for v in values] == [None, None, 2, 3, 4]


def test_another_thread_has_answers_of_its_own() -> None:
    recent: RecentAnswers[str] = RecentAnswers(8)
    value = Contact("Ann")
    recent.put(value, "here")
    seen: list[str | None] = []
    thread = threading.Thread(target=lambda: seen.append(recent.get(value)))
    thread.start()
    thread.join()
    assert seen == [None] and recent.get(value) == "here"
