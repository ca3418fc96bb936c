"""The subset of SOQL the fake Salesforce understands: what crmsync sends, and no more.

SOQL reference: https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select.htm
``SELECT f, Rel.f FROM Obj [WHERE cond] [ORDER BY f [ASC|DESC], ...] [LIMIT n]`` where a
condition combines ``f op literal``, ``f [NOT] IN (...)``, AND, OR, NOT and parentheses;
literals are quoted strings (backslash escapes), numbers, TRUE/FALSE, NULL, date
(``2026-01-05``) and dateTime (``2026-01-05T14:00:00Z``) literals, unquoted as SOQL wants.
Anything else is a ``MALFORMED_QUERY``, as Salesforce answers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class MalformedQuery(ValueError):
    pass


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*')
      | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
      | (?P<date>\d{4}-\d{2}-\d{2})
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|!=|<>|=|<|>|\(|\)|,)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[1]), text[1:-1])


@dataclass
class Query:
    fields: list[str]
    sobject: str
    where: Callable[[Mapping[str, Any]], bool] | None = None
    order: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    limit: int | None = None
    referenced: set[str] = field(default_factory=set)


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def compare(have: Any, op: str, want: Any) -> bool:
    if isinstance(want, dt.datetime):
        have = _instant(have)
    if have is None or want is None:
        if op in ("=", "!=", "<>"):
            return (have is None and want is None) == (op == "=")
        return False
    if isinstance(want, str) and isinstance(have, str) and op in ("=", "!=", "<>"):
        # SOQL compares text without regard to case.
        have, want = have.lower(), want.lower()
    match op:
        case "=":
            return bool(have == want)
        case "!=" | "<>":
            return bool(have != want)
        case "<":
            return bool(have < want)
        case "<=":
            return bool(have <= want)
        case ">":
            return bool(have > want)
        case ">=":
            return bool(have >= want)
    raise MalformedQuery(f"unknown operator {op}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise MalformedQuery(f"unexpected text at {text[pos : pos + 20]!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match[kind]))
            pos = match.end()
        self.at = 0
        self.referenced: set[str] = set()

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise MalformedQuery("unexpected end of query")
        self.at += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1].upper() in words:
            self.at += 1
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.keyword(word):
            raise MalformedQuery(f"expected {word}")

    def literal(self) -> Any:
        kind, text = self.take()
        if kind == "string":
            return _unescape(text)
        if kind == "datetime":
            return _instant(text)
        if kind == "date":
            return text
        if kind == "number":
            return float(text) if "." in text else int(text)
        if kind == "word" and text.upper() in ("TRUE", "FALSE"):
            return text.upper() == "TRUE"
        if kind == "word" and text.upper() == "NULL":
            return None
        raise MalformedQuery(f"expected a value, not {text!r}")

    def condition(self) -> Callable[[Mapping[str, Any]], bool]:
        left = self.conjunction()
        while self.keyword("OR"):
            right = self.conjunction()
            left = (lambda a, b: lambda row: a(row) or b(row))(left, right)
        return left

    def conjunction(self) -> Callable[[Mapping[str, Any]], bool]:
        left = self.factor()
        while self.keyword("AND"):
            right = self.factor()
            left = (lambda a, b: lambda row: a(row) and b(row))(left, right)
        return left

    def factor(self) -> Callable[[Mapping[str, Any]], bool]:
        if self.keyword("NOT"):
            inner = self.factor()
            return lambda row: not inner(row)
        if self.peek() == ("op", "("):
            self.take()
            inner = self.condition()
            if self.take() != ("op", ")"):
                raise MalformedQuery("expected )")
            return inner
        kind, name = self.take()
        if kind != "word":
            raise MalformedQuery(f"expected a field, not {name!r}")
        self.referenced.add(name)
        negate = self.keyword("NOT")
        if self.keyword("IN"):
            if self.take() != ("op", "("):
                raise MalformedQuery("expected ( after IN")
            values = [self.literal()]
            while self.peek() == ("op", ","):
                self.take()
                values.append(self.literal())
            if self.take() != ("op", ")"):
                raise MalformedQuery("expected )")
            return lambda row: any(compare(row.get(name), "=", v) for v in values) != negate
        if negate:
            raise MalformedQuery("NOT must be followed by IN here")
        kind, op = self.take()
        if kind != "op" or op in ("(", ")", ","):
            raise MalformedQuery(f"expected an operator after {name}")
        value = self.literal()
        return lambda row: compare(row.get(name), op, value)


def parse(text: str) -> Query:
    p = _Parser(text)
    p.expect("SELECT")
    fields = []
    while True:
        kind, name = p.take()
        if kind != "word":
            raise MalformedQuery(f"expected a field name, not {name!r}")
        fields.append(name)
        if p.peek() != ("op", ","):
            break
        p.take()
    p.expect("FROM")
    kind, sobject = p.take()
    if kind != "word":
        raise MalformedQuery("expected an object after FROM")
    query = Query(fields, sobject)
    if p.keyword("WHERE"):
        query.where = p.condition()
    if p.keyword("ORDER"):
        p.expect("BY")
        while True:
            kind, name = p.take()
            descending = p.keyword("DESC")
            if not descending:
                p.keyword("ASC")
            query.order.append((name, descending))
            p.referenced.add(name)
            if p.peek() != ("op", ","):
                break
            p.take()
    if p.keyword("LIMIT"):
        value = p.literal()
        if not isinstance(value, int) or value < 0:
            raise MalformedQuery("LIMIT takes a whole number")
        query.limit = value
    if p.peek() is not None:
        raise MalformedQuery(f"unexpected {p.peek()[1]!r}")  # type: ignore[index]
    query.referenced = p.referenced | set(fields)
    return query
