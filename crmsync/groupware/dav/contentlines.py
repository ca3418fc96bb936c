"""A minimal, lossless model of iCalendar / vCard content lines (RFC 5545 3.1, RFC 6350 3.2).

Format libraries re-serialize whole items and lose data on real-world input (see DESIGN
"Facts measured"), so items are kept here as received: a tree of components whose
properties remember their original physical lines. Serializing an untouched tree gives
back the input byte for byte (modulo line endings, which are always CRLF on output); a
property that was changed or added is folded at 75 octets without splitting a UTF-8
character.

Values are kept escaped as on the wire; `escape_text` / `unescape_text` and
`split_structured` interpret them. The one exception is vCard 2.1's QUOTED-PRINTABLE: such
a value (soft line breaks joined) is decoded on parsing, so every reader sees text; it is
written back as received while untouched and as plain UTF-8 once changed.
"""

from __future__ import annotations

import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

FOLD_OCTETS = 75
_BOM = "\ufeff"


class ContentLineError(ValueError):
    """The text is not a well-formed tree of content lines; the message says where."""


@dataclass(slots=True)
class Param:
    """One parameter: its name (upper-cased) and its values, decoded (no quotes, RFC 6868)."""

    name: str
    values: list[str]


@dataclass(slots=True)
class Property:
    """One content line: ``group.NAME;PARAM=...:value`` with the value still escaped.

    ``raw`` holds the original physical lines while the property is untouched; changing
    it through `set_value` / `set_param` / `remove_param` drops them, so it is re-rendered.
    """

    name: str
    value: str
    params: list[Param] = field(default_factory=list)
    group: str = ""
    raw: list[str] | None = None
    # The value was QUOTED-PRINTABLE on the wire (now decoded); see `render`.
    quoted_printable: bool = False

    def param(self, name: str) -> str | None:
        """The first value of parameter ``name`` (case-insensitive), or ``None``."""
        for p in self.params:
            if p.name == name.upper():
                return p.values[0] if p.values else ""
        return None

    def param_values(self, name: str) -> list[str]:
        """Every value of every parameter called ``name``, in order."""
        return [v for p in self.params if p.name == name.upper() for v in p.values]

    def set_value(self, value: str) -> None:
        if value != self.value:
            self.value = value
            self.raw = None

    def set_param(self, name: str, *values: str) -> None:
        """Replace parameter ``name`` with ``values`` (added at the end when absent)."""
        name = name.upper()
        for i, p in enumerate(self.params):
            if p.name == name:
                if p.values != list(values):
                    self.params[i] = Param(name, list(values))
                    self.params = [q for j, q in enumerate(self.params) if j <= i or q.name != name]
                    self.raw = None
                return
        self.params.append(Param(name, list(values)))
        self.raw = None

    def remove_param(self, name: str) -> None:
        kept = [p for p in self.params if p.name != name.upper()]
        if len(kept) != len(self.params):
            self.params = kept
            self.raw = None

    def render(self) -> list[str]:
        """The physical lines of this property (the original ones while untouched)."""
        if self.raw is not None:
            return self.raw
        text = (f"{self.group}." if self.group else "") + self.name
        value = self.value
        params = self.params
        if self.quoted_printable:
            # Changed: written as plain UTF-8 text, which every vCard version reads.
            params = [
                p
                for p in params
                if p.name not in _QP_PARAMS and not (p.name == "QUOTED-PRINTABLE" and not p.values)
            ]
            value = value.replace("\r\n", "\\n").replace("\n", "\\n")
        for p in params:
            text += ";" + p.name
            if p.values:
                text += "=" + ",".join(_quote_param(v) for v in p.values)
        return fold(text + ":" + value)


@dataclass(slots=True)
class Component:
    """``BEGIN:NAME`` ... ``END:NAME`` with its properties and sub-components in order."""

    name: str
    children: list[Property | Component] = field(default_factory=list)
    begin_raw: list[str] | None = None
    end_raw: list[str] | None = None

    @property
    def properties(self) -> list[Property]:
        return [c for c in self.children if isinstance(c, Property)]

    @property
    def components(self) -> list[Component]:
        return [c for c in self.children if isinstance(c, Component)]

    def all(self, name: str) -> list[Property]:
        """Every property called ``name`` (case-insensitive, any group), in order."""
        name = name.upper()
        # One pass over the children, the name compared first: reading and rendering an
        # item look properties up dozens of times (a fifth of their CPU went here).
        return [c for c in self.children if c.name == name and isinstance(c, Property)]

    def first(self, name: str) -> Property | None:
        name = name.upper()
        for c in self.children:
            if c.name == name and isinstance(c, Property):
                return c
        return None

    def value(self, name: str) -> str | None:
        """The raw (escaped) value of the first property ``name``, or ``None``."""
        prop = self.first(name)
        return None if prop is None else prop.value

    def sub(self, name: str) -> list[Component]:
        return [c for c in self.components if c.name == name.upper()]

    def add(self, prop: Property | Component, before: Property | Component | None = None) -> None:
        """Insert ``prop`` before ``before`` if given, else after the last property."""
        if before is not None:
            self.children.insert(self._index(before), prop)
            return
        children = self.children
        at = len(children)
        if isinstance(prop, Property):
            # After the last property (at 0 when there is none), searched from the end.
            while at and not isinstance(children[at - 1], Property):
                at -= 1
        children.insert(at, prop)

    def remove(self, child: Property | Component) -> None:
        del self.children[self._index(child)]

    def remove_all(self, name: str) -> None:
        name = name.upper()
        self.children = [
            c for c in self.children if not (isinstance(c, Property) and c.name == name)
        ]

    def set(self, name: str, value: str, **params: str) -> Property:
        """Give the first property ``name`` this value (adding it if absent); returns it."""
        prop = self.first(name)
        if prop is None:
            prop = Property(name.upper(), value)
            self.add(prop)
        else:
            prop.set_value(value)
        for key, val in params.items():
            prop.set_param(key.replace("_", "-"), val)
        return prop

    def walk(self) -> Iterator[Component]:
        yield self
        for c in self.components:
            yield from c.walk()

    def _index(self, child: Property | Component) -> int:
        for i, c in enumerate(self.children):
            if c is child:
                return i
        raise ValueError("not a child of this component")

    def render_lines(self) -> list[str]:
        lines = list(self.begin_raw or [f"BEGIN:{self.name}"])
        for child in self.children:
            lines.extend(child.render() if isinstance(child, Property) else child.render_lines())
        lines.extend(self.end_raw or [f"END:{self.name}"])
        return lines

    def serialize(self) -> str:
        """The component as text with CRLF line endings (and a final CRLF)."""
        return "\r\n".join(self.render_lines()) + "\r\n"


def parse(text: str) -> Component:
    """Parse one top-level component (VCALENDAR or VCARD).

    Tolerates LF-only endings, a UTF-8 BOM and blank lines; anything else malformed
    (unbalanced BEGIN/END, a line without ``:``, text outside the component) raises
    `ContentLineError` naming the line.
    """
    if text.startswith(_BOM):
        text = text[1:]
    physical = re.split(r"\r\n|\n|\r", text)
    # (first line number, physical lines, unfolded text)
    logical: list[tuple[int, list[str], list[str]]] = []
    soft_break = False
    for number, line in enumerate(physical, start=1):
        if soft_break:
            # A QUOTED-PRINTABLE line ending in "=" continues on the next line as is.
            logical[-1][1].append(line)
            logical[-1][2][-1] = logical[-1][2][-1][:-1] + line
        elif line[:1] in (" ", "\t") and logical:
            logical[-1][1].append(line)
            logical[-1][2][-1] += line[1:]
        elif line.strip():
            logical.append((number, [line], [line]))
        else:
            continue
        joined = logical[-1][2][-1]
        soft_break = joined.endswith("=") and bool(_QP_LINE.match(joined))
    stack: list[Component] = []
    root: Component | None = None
    for number, lines, (joined,) in logical:
        prop = _parse_line(number, lines, joined)
        if prop.name == "BEGIN" and not prop.params and not prop.group:
            comp = Component(prop.value.strip().upper(), begin_raw=lines)
            if stack:
                stack[-1].children.append(comp)
            elif root is not None:
                raise ContentLineError(f"line {number}: a second top-level component begins")
            else:
                root = comp
            stack.append(comp)
        elif prop.name == "END" and not prop.params and not prop.group:
            name = prop.value.strip().upper()
            if not stack or stack[-1].name != name:
                expected = stack[-1].name if stack else "nothing"
                raise ContentLineError(f"line {number}: END:{name} but {expected} is open")
            stack.pop().end_raw = lines
        elif not stack:
            raise ContentLineError(f"line {number}: {prop.name} is outside any component")
        else:
            stack[-1].children.append(prop)
    if root is None:
        raise ContentLineError("no BEGIN line: the text holds no component")
    if stack:
        raise ContentLineError(f"END:{stack[-1].name} is missing")
    return root


def _parse_line(number: int, lines: list[str], text: str) -> Property:
    m = _NAME.match(text)
    if not m:
        raise ContentLineError(f"line {number}: no property name in {text[:40]!r}")
    group, _, name = m.group(0).rpartition(".")
    pos = m.end()
    if text.startswith(":", pos):  # no parameters, as most lines
        return Property(name.upper(), text[pos + 1 :], [], group, raw=lines)
    params: list[Param] = []
    while pos < len(text) and text[pos] == ";":
        pm = _NAME.match(text, pos + 1)
        if not pm or "." in pm.group(0):
            raise ContentLineError(f"line {number}: bad parameter name in {text[:60]!r}")
        pos = pm.end()
        values: list[str] = []
        if pos < len(text) and text[pos] == "=":
            pos += 1
            while True:
                if pos < len(text) and text[pos] == '"':
                    close = text.find('"', pos + 1)
                    if close < 0:
                        raise ContentLineError(f"line {number}: unclosed quote in {text[:60]!r}")
                    values.append(_decode_param(text[pos + 1 : close]))
                    pos = close + 1
                else:
                    vm = _PARAM_VALUE.match(text, pos)
                    assert vm is not None  # the pattern matches the empty string
                    values.append(_decode_param(vm.group(0)))
                    pos = vm.end()
                if pos < len(text) and text[pos] == ",":
                    pos += 1
                    continue
                break
        params.append(Param(pm.group(0).upper(), values))
    if pos >= len(text) or text[pos] != ":":
        raise ContentLineError(f"line {number}: no ':' after the name in {text[:60]!r}")
    prop = Property(name.upper(), text[pos + 1 :], params, group, raw=lines)
    if any(
        (p.name == "ENCODING" and [v.upper() for v in p.values] == ["QUOTED-PRINTABLE"])
        or (p.name == "QUOTED-PRINTABLE" and not p.values)
        for p in params
    ):
        prop.value = _decode_quoted_printable(prop.value, prop.param("CHARSET"))
        prop.quoted_printable = True
    return prop


_QP_PARAMS = ("ENCODING", "CHARSET")
_QP_LINE = re.compile(r"[^:]*;(ENCODING=)?QUOTED-PRINTABLE[;:]", re.IGNORECASE)


def _decode_quoted_printable(value: str, charset: str | None) -> str:
    data = quopri.decodestring(value.encode("ascii", "replace"))
    try:
        text = data.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        # Old exports often mislabel Windows text; Latin-1 decodes any byte.
        text = data.decode("latin-1")
    # Outlook encodes its line breaks as =0D=0A; a line break is LF everywhere else (an
    # escaped \n), so a reader never sees a CR.
    return text.replace("\r\n", "\n").replace("\r", "\n")


_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)?")
_PARAM_VALUE = re.compile(r'[^";:,]*')


def _decode_param(value: str) -> str:
    # RFC 6868: ^n newline, ^' double quote, ^^ caret.
    return re.sub(r"\^(['n^])", lambda m: {"n": "\n", "'": '"', "^": "^"}[m.group(1)], value)


def _quote_param(value: str) -> str:
    encoded = value.replace("^", "^^").replace("\n", "^n").replace('"', "^'")
    if re.search(r"[;:,]", encoded) or encoded != encoded.strip() or encoded == "":
        return f'"{encoded}"'
    return encoded


def fold(line: str) -> list[str]:
    """Split one logical line into physical lines of at most 75 octets, never inside a
    UTF-8 character; continuation lines start with one space."""
    if line.isascii():  # one octet per character: slice instead of walking characters
        if len(line) <= FOLD_OCTETS:
            return [line]
        step = FOLD_OCTETS - 1
        return [line[:FOLD_OCTETS]] + [
            " " + line[i : i + step] for i in range(FOLD_OCTETS, len(line), step)
        ]
    out: list[str] = []
    current = ""
    size = 0
    limit = FOLD_OCTETS
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > limit:
            out.append(current)
            current, size, limit = " ", 1, FOLD_OCTETS
        current += ch
        size += n
    out.append(current)
    return out


def escape_text(value: str) -> str:
    """A TEXT value as written on the wire (RFC 5545 3.3.11, RFC 6350 3.4)."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        # A lone CR ends a content line for some readers (crmsync's own, SabreDAV's): the
        # item became unreadable. TEXT has no CR (RFC 5545 3.3.11): a line break.
        .replace("\r", "\\n")
    )


def unescape_text(value: str) -> str:
    """The text an escaped TEXT value stands for; unknown escapes keep their character."""
    if "\\" not in value:  # most values: no escape, the same string (no copy)
        return value
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def split_unescaped(value: str, sep: str) -> list[str]:
    """Split an escaped value at ``sep`` characters not preceded by a backslash."""
    if "\\" not in value:
        # No escape: str.split gives the same parts; the loop below builds each part a
        # character at a time (6 % of parsing a downloaded item's CPU).
        return value.split(sep)
    parts: list[str] = []
    current = ""
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            current += value[i : i + 2]
            i += 2
            continue
        if ch == sep:
            parts.append(current)
            current = ""
        else:
            current += ch
        i += 1
    parts.append(current)
    return parts


def split_structured(value: str) -> list[str]:
    """The unescaped components of a structured value such as N or ADR (``;``-separated)."""
    return [unescape_text(part) for part in split_unescaped(value, ";")]


def join_structured(parts: list[str]) -> str:
    return ";".join(escape_text(p) for p in parts)
