"""The content-line model: lossless on untouched input, correct folding, tolerant input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmsync.groupware.dav import contentlines as cl

SAMPLE = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:1\r\n"
    'ATTENDEE;CN="Doe, Jane";ROLE=REQ-\r\n PARTICIPANT:mailto:j@example.com\r\n'
    "SUMMARY:caf\u00e9 \\, ok\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_untouched_text_serializes_byte_for_byte() -> None:
    assert cl.parse(SAMPLE).serialize() == SAMPLE


def test_lf_input_and_bom_are_tolerated() -> None:
    text = "\ufeff" + SAMPLE.replace("\r\n", "\n")
    assert cl.parse(text).serialize() == SAMPLE


def test_parameters_are_decoded() -> None:
    vevent = cl.parse(SAMPLE).sub("VEVENT")[0]
    attendee = vevent.first("ATTENDEE")
    assert attendee is not None
    assert attendee.param("CN") == "Doe, Jane"
    assert attendee.param("ROLE") == "REQ-PARTICIPANT"
    assert attendee.value == "mailto:j@example.com"


def test_changing_one_property_keeps_the_others_raw() -> None:
    root = cl.parse(SAMPLE)
    root.sub("VEVENT")[0].set("SUMMARY", "new")
    out = root.serialize()
    assert 'ATTENDEE;CN="Doe, Jane";ROLE=REQ-\r\n PARTICIPANT:mailto:j@example.com\r\n' in out
    assert "SUMMARY:new\r\n" in out


@pytest.mark.parametrize(
    "bad, words",
    [
        ("BEGIN:VCARD\r\nFN:x\r\n", "END:VCARD is missing"),
        ("BEGIN:VCARD\r\nEND:VCALENDAR\r\n", "but VCARD is open"),
        ("BEGIN:VCARD\r\nno colon here\r\nEND:VCARD\r\n", "no ':'"),
        ("FN:x\r\n", "outside any component"),
        ("", "no BEGIN"),
    ],
)
def test_malformed_text_raises_with_the_line(bad: str, words: str) -> None:
    with pytest.raises(cl.ContentLineError, match=words):
        cl.parse(bad)


def test_rfc6868_parameter_encoding_round_trips() -> None:
    prop = cl.Property("ATTENDEE", "mailto:a@b")
    prop.set_param("CN", 'Say "hi"\nthere ^')
    text = "BEGIN:X\r\n" + "\r\n".join(prop.render()) + "\r\nEND:X\r\n"
    assert cl.parse(text).first("ATTENDEE").param("CN") == 'Say "hi"\nthere ^'  # type: ignore[union-attr]


texts = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff"), max_size=300
) | st.text(max_size=50).map(lambda s: s.replace("\r", ""))


@given(texts)
def test_fold_limits_octets_and_unfolds_back(value: str) -> None:
    value = "".join(ch for ch in value if ch not in "\r\n")
    lines = cl.fold("X-TEST:" + value)
    assert all(len(line.encode("utf-8")) <= 75 for line in lines)
    assert all(line.startswith(" ") for line in lines[1:])
    assert lines[0] + "".join(line[1:] for line in lines[1:]) == "X-TEST:" + value


@given(texts)
def test_text_escaping_round_trips(value: str) -> None:
    value = value.replace("\r", "")
    escaped = cl.escape_text(value)
    assert "\n" not in escaped
    assert cl.unescape_text(escaped) == value
    assert [cl.unescape_text(p) for p in cl.split_unescaped(cl.escape_text(value), ";")] == [value]


names = st.from_regex(r"X-[A-Z]{1,8}", fullmatch=True)
values = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff"), max_size=120
)


@given(st.lists(st.tuples(names, values), max_size=8))
def test_serialize_then_parse_is_identity(props: list[tuple[str, str]]) -> None:
    root = cl.Component("VCARD")
    for name, value in props:
        root.add(cl.Property(name, value))
    text = root.serialize()
    again = cl.parse(text)
    assert [(p.name, p.value) for p in again.properties] == [(n, v) for n, v in props]
    assert again.serialize() == text
