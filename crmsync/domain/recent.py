"""Answers about the last few values asked after, by identity, per thread.

Records are immutable, and one write asks the same questions of the same record object
several times (its text as a mail item holds it, its content hash) a little apart: the
engine asks for a whole batch before the batch's writes. `functools.lru_cache` answers
by equality, so each ask hashes the record through every nested field first, which cost
about as much as many answers themselves; by identity an ask costs a dict lookup.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class RecentAnswers(Generic[V]):
    """The answers for the last ``size`` values, each kept with its value so that the
    value's id cannot be reused while its answer is remembered."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._local = threading.local()

    def _answers(self) -> OrderedDict[int, tuple[object, V]]:
        answers: OrderedDict[int, tuple[object, V]] | None = getattr(
            self._local, "answers", None
        )
        if answers is None:
            answers = self._local.answers = OrderedDict()
        return answers

    def get(self, value: object) -> V | None:
        """The answer remembered for this very object, or ``None``."""
        known = self._answers().get(id(value))
        return known[1] if known is not None and known[0] is value else None

    def put(self, value: object, answer: V) -> None:
        answers = self._answers()
        while len(answers) >= self.size:
            answers.popitem(last=False)
        answers[id(value)] = (value, answer)
