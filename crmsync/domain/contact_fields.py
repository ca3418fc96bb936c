"""Contact fields: their types, the admin's field mappings and filters, and the converters.

The synced `Contact` is shaped like the mail server's contact: its attributes are the
*mail fields*. A configuration maps each mail field to a CRM field, a standard one (the
same names by default) or a custom one (``custom:NAME``), or to nothing (the field does
not sync). Values cross between types through typed converters that refuse what does not
fit (an email without ``@``, a phone without digits), so a bad value becomes an error
row for that item, never a silently mangled record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from crmsync.domain.records import Address, Contact, named_after_company


class FieldType(StrEnum):
    TEXT = "text"
    PHONE = "phone"
    EMAIL = "email"
    ADDRESS = "address"
    DATE = "date"
    FLAG = "flag"


# The mail-side fields and their types, in `Contact`'s order.
MAIL_FIELDS: dict[str, FieldType] = {
    "first_name": FieldType.TEXT,
    "last_name": FieldType.TEXT,
    "salutation": FieldType.TEXT,
    "title": FieldType.TEXT,
    "department": FieldType.TEXT,
    "account_name": FieldType.TEXT,
    "email": FieldType.EMAIL,
    "phone": FieldType.PHONE,
    "mobile_phone": FieldType.PHONE,
    "home_phone": FieldType.PHONE,
    "other_phone": FieldType.PHONE,
    "fax": FieldType.PHONE,
    "mailing_address": FieldType.ADDRESS,
    "other_address": FieldType.ADDRESS,
    "birthdate": FieldType.DATE,
    "description": FieldType.TEXT,
    "is_person_account": FieldType.FLAG,
}
# The CRM's standard contact fields carry the same names and types.
STANDARD_CRM_FIELDS = MAIL_FIELDS
# A contact always needs a name to exist on both sides.
REQUIRED_MAIL_FIELDS = ("last_name",)
CUSTOM_PREFIX = "custom:"
# Which CRM field types may feed a mail field of a given type (and back).
COMPATIBLE: dict[FieldType, frozenset[FieldType]] = {
    FieldType.TEXT: frozenset({FieldType.TEXT, FieldType.PHONE, FieldType.EMAIL}),
    FieldType.PHONE: frozenset({FieldType.PHONE, FieldType.TEXT}),
    FieldType.EMAIL: frozenset({FieldType.EMAIL, FieldType.TEXT}),
    FieldType.ADDRESS: frozenset({FieldType.ADDRESS}),
    FieldType.DATE: frozenset({FieldType.DATE, FieldType.TEXT}),
    FieldType.FLAG: frozenset({FieldType.FLAG}),
}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class InvalidValue(ValueError):
    """A value that the target field's type cannot hold."""


def is_custom(crm_field: str) -> bool:
    return crm_field.startswith(CUSTOM_PREFIX)


def custom_name(crm_field: str) -> str:
    return crm_field.removeprefix(CUSTOM_PREFIX)


def empty_value(field_type: FieldType) -> Any:
    return {
        FieldType.ADDRESS: Address(),
        FieldType.DATE: None,
        FieldType.FLAG: False,
    }.get(field_type, "")


def convert(value: Any, source: FieldType, target: FieldType) -> Any:
    """``value`` of type ``source`` as a value of type ``target``; raises `InvalidValue`."""
    if value is None or value == "":
        return empty_value(target)
    if source is target:
        return value
    if target is FieldType.PHONE:
        text = " ".join(str(value).split())
        if not any(c.isdigit() for c in text):
            raise InvalidValue(f"{text!r} is not a phone number (it has no digits)")
        return text
    if target is FieldType.EMAIL:
        text = str(value).strip()
        if not _EMAIL.fullmatch(text):
            raise InvalidValue(f"{text!r} is not an email address")
        return text
    if target is FieldType.DATE:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise InvalidValue(f"{value!r} is not a date (YYYY-MM-DD)") from None
    if target is FieldType.TEXT:
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    raise InvalidValue(f"a {source} value cannot become a {target}")


def _converted(name: str, value: Any, source: FieldType, target: FieldType) -> Any:
    try:
        return convert(value, source, target)
    except InvalidValue as exc:
        raise InvalidValue(f"{name}: {exc}") from None


def as_text(value: Any) -> str:
    """How a custom field stores a value."""
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, dt.date) else str(value)


@dataclass(frozen=True)
class FieldMapping:
    """One mail field's CRM field; ``crm_field=""`` means the mail field does not sync."""

    mail_field: str
    crm_field: str

    @classmethod
    def parse(cls, text: str) -> FieldMapping:
        """``MAIL_FIELD=CRM_FIELD`` (an empty CRM field: the mail field does not sync)."""
        mail, sep, crm = text.partition("=")
        if not sep:
            raise ValueError(f"a mapping is MAIL_FIELD=CRM_FIELD, not {text!r}")
        return cls(mail.strip(), crm.strip())

    @property
    def text(self) -> str:
        return f"{self.mail_field}={self.crm_field}"


@dataclass(frozen=True)
class ContactFieldMap:
    """Each synced mail field with its CRM field and that field's type."""

    fields: Mapping[str, tuple[str, FieldType]]

    @property
    def synced(self) -> frozenset[str]:
        return frozenset(self.fields)

    @property
    def is_identity(self) -> bool:
        return self.fields.keys() == MAIL_FIELDS.keys() and all(
            crm == mail for mail, (crm, _) in self.fields.items()
        )

    def crm_field_of(self, mail_field: str) -> str | None:
        entry = self.fields.get(mail_field)
        return entry[0] if entry else None

    def mail_field_of(self, crm_field: str) -> str | None:
        for mail, (crm, _) in self.fields.items():
            if crm == crm_field:
                return mail
        return None

    def to_contact(self, crm_values: Mapping[str, Any]) -> Contact:
        """The synced contact from the CRM's values (standard by name, custom as
        ``custom:NAME``); unsynced fields stay empty. Raises `InvalidValue`."""
        values = {
            mail: _converted(crm, crm_values.get(crm), crm_type, MAIL_FIELDS[mail])
            for mail, (crm, crm_type) in self.fields.items()
        }
        return Contact(**values)

    def to_crm(self, contact: Contact) -> dict[str, Any]:
        """The CRM values the synced ``contact`` sets, keyed like `to_contact`'s input."""
        return {
            crm: _converted(mail, getattr(contact, mail), MAIL_FIELDS[mail], crm_type)
            for mail, (crm, crm_type) in self.fields.items()
        }

    def blank_unsynced(self, contact: Contact) -> Contact:
        """``contact`` with the fields that do not sync emptied, so they never compare or
        get written."""
        unsynced = {
            name: empty_value(kind) for name, kind in MAIL_FIELDS.items() if name not in self.fields
        }
        return dataclasses.replace(contact, **unsynced) if unsynced else contact

    def synced_of_item(self, contact: Contact) -> Contact:
        """The synced contact a mail server's item holding ``contact`` stands for: named
        after its company when it names no person (`named_after_company`), the fields that
        do not sync emptied."""
        return self.blank_unsynced(named_after_company(contact))


IDENTITY_MAP = ContactFieldMap({name: (name, kind) for name, kind in MAIL_FIELDS.items()})


def contact_field_map(
    overrides: tuple[FieldMapping, ...], custom_types: Mapping[str, FieldType] | None = None
) -> ContactFieldMap:
    """The default mapping changed by ``overrides``; raises `ValueError` with every reason
    a mapping is invalid (see `mapping_problems`)."""
    problems = mapping_problems(overrides, custom_types or {})
    if problems:
        raise ValueError("; ".join(problems))
    chosen = {name: name for name in MAIL_FIELDS}
    chosen.update({m.mail_field: m.crm_field for m in overrides})
    return ContactFieldMap(
        {
            mail: (crm, crm_field_type(crm, custom_types or {}))
            for mail, crm in chosen.items()
            if crm
        }
    )


def crm_field_type(crm_field: str, custom_types: Mapping[str, FieldType]) -> FieldType:
    if is_custom(crm_field):
        return custom_types[custom_name(crm_field)]
    return STANDARD_CRM_FIELDS[crm_field]


def mapping_problems(
    overrides: tuple[FieldMapping, ...], custom_types: Mapping[str, FieldType]
) -> list[str]:
    """Why the overrides cannot be used, one sentence each (empty: they can)."""
    problems: list[str] = []
    chosen = {name: name for name in MAIL_FIELDS}
    for m in overrides:
        if m.mail_field not in MAIL_FIELDS:
            problems.append(
                f"{m.mail_field!r} is not a mail contact field (one of: {', '.join(MAIL_FIELDS)})"
            )
            continue
        chosen[m.mail_field] = m.crm_field
        if not m.crm_field:
            continue
        if is_custom(m.crm_field):
            if custom_name(m.crm_field) not in custom_types:
                problems.append(
                    f"{m.crm_field!r} is not a custom contact field of the CRM; define it first"
                )
                continue
        elif m.crm_field not in STANDARD_CRM_FIELDS:
            problems.append(f"{m.crm_field!r} is not a CRM contact field")
            continue
        crm_type = crm_field_type(m.crm_field, custom_types)
        mail_type = MAIL_FIELDS[m.mail_field]
        if crm_type not in COMPATIBLE[mail_type]:
            problems.append(
                f"{m.mail_field} holds a {mail_type} and cannot map to {m.crm_field}, "
                f"a {crm_type} field"
            )
    for required in REQUIRED_MAIL_FIELDS:
        if not chosen.get(required):
            problems.append(f"{required} must sync: a contact needs a name on both sides")
    used: dict[str, str] = {}
    for mail, crm in chosen.items():
        if crm and crm in used:
            problems.append(f"{crm} is mapped twice (to {used[crm]} and {mail})")
        used.setdefault(crm, mail)
    return problems


class FilterOperator(StrEnum):
    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    STARTS_WITH = "starts_with"
    IS_EMPTY = "is_empty"
    IS_NOT_EMPTY = "is_not_empty"


_NO_VALUE = (FilterOperator.IS_EMPTY, FilterOperator.IS_NOT_EMPTY)


@dataclass(frozen=True)
class ContactFilter:
    """A condition on one CRM contact field; ``field`` may name an address part
    (``mailing_address.country``). Text compares without regard to case."""

    field: str
    operator: FilterOperator
    value: str = ""

    @classmethod
    def parse(cls, text: str) -> ContactFilter:
        """``FIELD OPERATOR [VALUE]``; the value may hold spaces."""
        parts = text.split(None, 2)
        if len(parts) < 2:
            raise ValueError(f"a filter is 'FIELD OPERATOR [VALUE]', not {text!r}")
        try:
            operator = FilterOperator(parts[1])
        except ValueError:
            known = ", ".join(op.value for op in FilterOperator)
            raise ValueError(f"{parts[1]!r} is not a filter operator ({known})") from None
        return cls(parts[0], operator, parts[2] if len(parts) > 2 else "")

    @property
    def text(self) -> str:
        """The form `parse` reads."""
        return " ".join(p for p in (self.field, self.operator.value, self.value) if p)

    @property
    def label(self) -> str:
        words = self.operator.value.replace("_", " ")
        return f"{self.field} {words}" + ("" if self.operator in _NO_VALUE else f" {self.value}")

    def problems(self, field_map: ContactFieldMap) -> list[str]:
        base, _, part = self.field.partition(".")
        mail = field_map.mail_field_of(base)
        if base not in STANDARD_CRM_FIELDS and not is_custom(base):
            return [f"filter {self.label!r}: {base!r} is not a CRM contact field"]
        if mail is None:
            return [f"filter {self.label!r}: {base} does not sync, so it cannot filter"]
        kind = MAIL_FIELDS[mail]
        if kind is FieldType.ADDRESS and part not in {f.name for f in dataclasses.fields(Address)}:
            return [f"filter {self.label!r}: name an address part, e.g. {base}.country"]
        if kind is not FieldType.ADDRESS and part:
            return [f"filter {self.label!r}: {base} has no parts"]
        if self.operator not in _NO_VALUE and not self.value:
            return [f"filter {self.label!r}: give a value to compare with"]
        return []

    def matches(self, contact: Contact, field_map: ContactFieldMap) -> bool:
        base, _, part = self.field.partition(".")
        value: Any = getattr(contact, field_map.mail_field_of(base) or base)
        if part:
            value = getattr(value, part)
        text = "" if value is None else str(value).casefold()
        wanted = self.value.casefold()
        match self.operator:
            case FilterOperator.EQUALS:
                return text == wanted
            case FilterOperator.NOT_EQUALS:
                return text != wanted
            case FilterOperator.CONTAINS:
                return wanted in text
            case FilterOperator.NOT_CONTAINS:
                return wanted not in text
            case FilterOperator.STARTS_WITH:
                return text.startswith(wanted)
            case FilterOperator.IS_EMPTY:
                return not text or text == "false"
            case FilterOperator.IS_NOT_EMPTY:
                return bool(text) and text != "false"
