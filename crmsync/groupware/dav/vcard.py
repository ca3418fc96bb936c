"""vCard 3.0 / 4.0 items ↔ `Contact`, changing only mapped properties in place.

Mapping (what a caller may rely on):
N (last; first; middle; prefix = salutation; suffix), FN (written from the display name),
ORG (account_name; department), TITLE, EMAIL (the preferred one, else the first),
TEL by TYPE (fax → fax, cell → mobile_phone, home → home_phone, other → other_phone,
work / voice / untyped → phone), ADR by TYPE (work or untyped → mailing_address,
home / other → other_address), BDAY, NOTE, ``X-CRMSYNC-PERSON-ACCOUNT:TRUE`` for person
accounts, UID, and the marker in ``X-CRMSYNC-CRM-ID``. New items are vCard 3.0; an update
keeps the item's version, its unmapped components (middle name, PO box ...), Apple
``itemN.`` groups and every property it does not map.
"""

from __future__ import annotations

import datetime as dt
import re

from crmsync.domain.contact_fields import IDENTITY_MAP, ContactFieldMap
from crmsync.domain.records import (
    NO_ADDRESS,
    Address,
    Contact,
    Record,
    shared_address,
    shared_text,
)
from crmsync.groupware.dav import contentlines as cl
from crmsync.groupware.dav.formats import MARKER_PROPERTY, MalformedItem, NotSynced, ParsedItem
from crmsync.groupware.dav.multistatus import CARDDAV, tag
from crmsync.groupware.dav.read_back import contact_reads_back

PERSON_ACCOUNT_PROPERTY = "X-CRMSYNC-PERSON-ACCOUNT"
_PHONE_FIELDS = ("phone", "mobile_phone", "home_phone", "fax", "other_phone")
_ADDRESS_FIELDS = ("mailing_address", "other_address")
# How a new TEL / ADR is typed, per vCard version.
_TEL_TYPES = {
    "phone": ("WORK", "VOICE"),
    "mobile_phone": ("CELL",),
    "home_phone": ("HOME", "VOICE"),
    "fax": ("WORK", "FAX"),
    "other_phone": ("OTHER", "VOICE"),
}
_ADR_TYPES = {"mailing_address": ("WORK",), "other_address": ("HOME",)}


def _types(prop: cl.Property) -> set[str]:
    """TYPE values, lower-cased, including vCard 2.1 bare parameters and PREF."""
    found: set[str] = set()
    for p in prop.params:
        if p.name == "TYPE":
            found.update(v.strip().lower() for value in p.values for v in value.split(","))
        elif not p.values:
            found.add(p.name.lower())
        elif p.name == "PREF":
            found.add("pref")
    return found


def _tel_field(prop: cl.Property) -> str | None:
    types = _types(prop)
    if "fax" in types:
        return "fax"
    if "cell" in types or "mobile" in types:
        return "mobile_phone"
    if "pager" in types:
        return None
    if "home" in types:
        return "home_phone"
    if "other" in types or "x-other" in types:
        return "other_phone"
    return "phone"


def _adr_field(prop: cl.Property) -> str:
    types = _types(prop)
    if "home" in types or "other" in types:
        return "other_address"
    return "mailing_address"


def _pick(props: list[cl.Property]) -> cl.Property | None:
    """The preferred property of a list, else the first."""
    for prop in props:
        if "pref" in _types(prop):
            return prop
    return props[0] if props else None


def _select(card: cl.Component) -> dict[str, cl.Property | None]:
    """Which property carries each mapped field (``None`` when absent)."""
    chosen: dict[str, cl.Property | None] = {
        "N": card.first("N"),
        "FN": card.first("FN"),
        "ORG": card.first("ORG"),
        "title": card.first("TITLE"),
        "email": _pick(card.all("EMAIL")),
        "birthdate": card.first("BDAY"),
        "description": card.first("NOTE"),
        "person": card.first(PERSON_ACCOUNT_PROPERTY),
    }
    for name in _PHONE_FIELDS:
        chosen[name] = _pick([p for p in card.all("TEL") if _tel_field(p) == name])
    for name in _ADDRESS_FIELDS:
        chosen[name] = _pick([p for p in card.all("ADR") if _adr_field(p) == name])
    return chosen


def _text(prop: cl.Property | None) -> str:
    return "" if prop is None else cl.unescape_text(prop.value)


def _phone(prop: cl.Property | None) -> str:
    value = _text(prop)
    return value[4:] if value.lower().startswith("tel:") else value


def _components(prop: cl.Property | None, size: int) -> list[str]:
    parts = [] if prop is None else cl.split_structured(prop.value)
    return parts + [""] * (size - len(parts))


def _address(prop: cl.Property | None) -> Address:
    if prop is None:
        return NO_ADDRESS
    parts = _components(prop, 7)
    # The CRM has street lines, not ADR's PO box and extended address (suite, building,
    # c/o): they follow the street, each on its own line.
    street = "\n".join(part for part in (parts[2], parts[1], parts[0]) if part)
    return shared_address(street, parts[3], parts[4], parts[5], parts[6])


def _street_components(current: list[str], street: str) -> dict[int, str]:
    """ADR's PO box, extended address and street (components 0-2) for the CRM's street
    lines: the card's PO box and extended address stay in place while the lines still end
    with them; the other lines are the street."""
    lines = street.split("\n")
    kept = {0: "", 1: ""}
    for index in (0, 1):  # `_address` puts the PO box last, the extended address before it
        if current[index] and lines and lines[-1] == current[index]:
            kept[index] = lines.pop()
    if lines == [""] and any(kept.values()):
        # An empty first line has no component of its own: the text stays whole.
        return {0: "", 1: "", 2: street}
    return {**kept, 2: "\n".join(lines)}


def _birthdate(prop: cl.Property | None) -> dt.date | None:
    if prop is None:
        return None
    value = prop.value.strip().split("T")[0]
    m = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})", value)
    if not m:
        # A birthday without a year (--0517) or free text: not representable, left alone.
        return None
    if prop.param("X-APPLE-OMIT-YEAR") == m.group(1):
        # Apple's way of writing a birthday without a year (the year is a placeholder).
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _validate(card: cl.Component) -> None:
    if card.name != "VCARD":
        raise MalformedItem(
            f"the item is a {card.name}, not a VCARD",
            "Remove this item from the address book or replace it with a vCard.",
        )
    if card.first("VERSION") is None:
        raise MalformedItem(
            "the vCard has no VERSION line",
            "Add VERSION:3.0 (or 4.0) after BEGIN:VCARD, or re-save the contact in a "
            "client that writes valid vCards.",
        )
    version = (card.value("VERSION") or "").strip()
    if version not in ("2.1", "3.0", "4.0"):
        raise MalformedItem(
            f"the vCard has VERSION:{version}; crmsync reads vCard 2.1, 3.0 and 4.0",
            "Re-save the contact in a client that writes vCard 3.0 or 4.0.",
        )
    if card.first("FN") is None and card.first("N") is None:
        raise MalformedItem(
            "the vCard has neither FN nor N, so the contact has no name",
            "Give the contact a name in the address book (this adds FN and N lines).",
        )
    if card.first("FN") is None and version != "2.1" and not _nameable_without_fn(card):
        raise MalformedItem(
            f"the vCard has no FN (vCard {version} requires one) and its N holds no name",
            "Give the contact a name in the address book (this adds FN and N lines).",
        )
    identifying = ("FN", "N", "EMAIL", "TEL", "ORG")
    if not any(
        cl.unescape_text(p.value).replace(";", "").strip()
        for name in identifying
        for p in card.all(name)
    ):
        raise MalformedItem(
            "the vCard's FN and N are empty and it has no email, phone or organization, "
            "so nothing identifies the contact",
            "Give the contact a name (or delete it) in the address book.",
        )


def _nameable_without_fn(card: cl.Component) -> bool:
    """Whether N (a family or given name) or ORG can stand in for a missing FN."""
    n = _components(card.first("N"), 2)
    return any(part.strip() for part in n[:2]) or bool(_components(card.first("ORG"), 1)[0])


def _repair_note(card: cl.Component) -> str:
    """What the reader supplied that the card lacks though its version requires it."""
    version = (card.value("VERSION") or "").strip()
    if card.first("FN") is None and version != "2.1":
        # vCard 2.1 makes FN optional; 3.0 and 4.0 do not. Servers refuse such a card
        # (Radicale, Xandikos) and a write from crmsync adds FN from the names.
        source = "N" if any(p.strip() for p in _components(card.first("N"), 2)[:2]) else "ORG"
        return f"repaired: the vCard has no FN (vCard {version} requires one); named from {source}"
    return ""


def _kind(card: cl.Component) -> str:
    """KIND (vCard 4.0) or Apple's spelling of it in 3.0, lower-cased ("" for a person)."""
    for name in ("KIND", "X-ADDRESSBOOKSERVER-KIND"):
        if value := (card.value(name) or "").strip().lower():
            return value
    return "org" if (card.value("X-ABSHOWAS") or "").strip().upper() == "COMPANY" else ""


def _is_company_card(card: cl.Component) -> bool:
    """A card that names a company, not a person: KIND:org (X-ABShowAs:COMPANY), or an
    ORG whose name is the FN (or there is no FN) with no person's name in N."""
    if _kind(card) == "org":
        return True
    n = _components(card.first("N"), 2)
    company = _components(card.first("ORG"), 1)[0]
    formatted = _text(card.first("FN"))
    return (
        not any(n[:2])
        and bool(company.strip())
        and (not formatted or " ".join(formatted.split()) == " ".join(company.split()))
    )


def _read(card: cl.Component) -> Contact:
    kind = _kind(card)
    if kind == "group":
        # A list of other contacts (vCard 4.0 KIND:group, Apple's X-ADDRESSBOOKSERVER-KIND).
        source = "KIND" if card.first("KIND") is not None else "X-ADDRESSBOOKSERVER-KIND"
        raise NotSynced(f"a group card ({source}:group) lists other contacts; it is no contact")
    if kind == "location":
        # RFC 6350 6.1.4: a place (a meeting room, a site), not a person or company.
        raise NotSynced("a location card (KIND:location) names a place; it is no contact")
    sel = _select(card)
    n = _components(sel["N"], 5)
    first, last = n[1], n[0]
    org = _components(sel["ORG"], 2)
    account = org[0]
    if _is_company_card(card):
        # No person's name to invent: the company, which the CRM holds as the last name
        # too (a contact needs one), and which is never written back as N.
        account = account or _text(sel["FN"]).strip()
        first, last = "", account
    elif sel["N"] is None:
        # No N: the name is FN, a person's last word the family name. (An empty N says
        # the card has no structured name.)
        first, _, last = _text(sel["FN"]).strip().rpartition(" ")
    person = sel["person"]
    return Contact(
        first_name=first,
        last_name=last,
        salutation=shared_text(n[3]),
        title=shared_text(_text(sel["title"])),
        department=shared_text(org[1]),
        account_name=shared_text(account),
        email=_text(sel["email"]),
        phone=_phone(sel["phone"]),
        mobile_phone=_phone(sel["mobile_phone"]),
        home_phone=_phone(sel["home_phone"]),
        other_phone=_phone(sel["other_phone"]),
        fax=_phone(sel["fax"]),
        mailing_address=_address(sel["mailing_address"]),
        other_address=_address(sel["other_address"]),
        birthdate=_birthdate(sel["birthdate"]),
        description=_text(sel["description"]),
        is_person_account=person is not None and person.value.strip().upper() == "TRUE",
    )


def _parse_tree(text: str) -> cl.Component:
    try:
        card = cl.parse(text)
    except cl.ContentLineError as exc:
        raise MalformedItem(
            f"the vCard cannot be read: {exc}",
            "Re-save the contact in a client that writes valid vCards, or delete it.",
        ) from exc
    _validate(card)
    return card


def parse_vcard(text: str, field_map: ContactFieldMap = IDENTITY_MAP) -> ParsedItem[Contact]:
    """The contact a vCard holds (fields that do not sync left empty); raises
    `MalformedItem` with a precise message."""
    card = _parse_tree(text)
    marker = card.first(MARKER_PROPERTY)
    uid = card.first("UID")
    return ParsedItem(
        field_map.blank_unsynced(_read(card)),
        cl.unescape_text(marker.value) if marker else None,
        cl.unescape_text(uid.value) if uid else None,
        _repair_note(card),
    )


def _formatted_name(contact: Contact) -> str:
    return contact.display_name or contact.account_name or contact.phone or "Unnamed contact"


def _version4(card: cl.Component) -> bool:
    return (card.value("VERSION") or "").strip().startswith("4")


def _type_param(card: cl.Component, types: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(t.lower() for t in types) if _version4(card) else types


def _set_phone(prop: cl.Property, number: str) -> None:
    uri = prop.param("VALUE") == "uri" or prop.value.lower().startswith("tel:")
    prop.set_value(("tel:" + number) if uri else cl.escape_text(number))


def _replace_components(prop: cl.Property, updates: dict[int, str], size: int) -> None:
    parts = cl.split_unescaped(prop.value, ";")
    parts += [""] * (size - len(parts))
    for index, value in updates.items():
        if cl.unescape_text(parts[index]) != value:
            parts[index] = cl.escape_text(value)
    prop.set_value(";".join(parts))


def _apply(card: cl.Component, old: Contact, new: Contact) -> None:
    """Change ``card``'s properties for every field where ``new`` differs from ``old``."""
    sel = _select(card)

    def place(name: str, value: str, **params: str | tuple[str, ...]) -> cl.Property:
        prop = cl.Property(name, value)
        for key, val in params.items():
            prop.set_param(key, *((val,) if isinstance(val, str) else val))
        card.add(prop)
        return prop

    def drop(prop: cl.Property) -> None:
        card.remove(prop)
        if prop.group:
            # An Apple itemN. group labels its member; without it the label is an orphan.
            for other in [p for p in card.properties if p.group == prop.group]:
                card.remove(other)

    names = ("first_name", "last_name", "salutation")
    renamed = any(getattr(old, f) != getattr(new, f) for f in names)
    if _is_company_card(card):
        # The company's name lives in ORG and FN; the CRM's last name only repeats it,
        # so N is never written from it. A person's name from the CRM makes it a person.
        renamed = not new.is_company
        if renamed:
            for prop in card.all("KIND") + card.all("X-ABSHOWAS"):
                if prop.value.strip().upper() in ("ORG", "COMPANY"):
                    drop(prop)
    # Only a changed name is written: N a card lacks is not invented from its FN.
    if renamed:
        if sel["N"] is None:
            place("N", cl.join_structured([new.last_name, new.first_name, "", new.salutation, ""]))
        else:
            _replace_components(
                sel["N"], {0: new.last_name, 1: new.first_name, 3: new.salutation}, 5
            )
    if _formatted_name(old) != _formatted_name(new) or sel["FN"] is None:
        fn = cl.escape_text(_formatted_name(new))
        if sel["FN"] is None:
            place("FN", fn)
        else:
            sel["FN"].set_value(fn)
    if (old.account_name, old.department) != (new.account_name, new.department):
        prop = sel["ORG"]
        if not (new.account_name or new.department):
            if prop is not None:
                drop(prop)
        elif prop is None:
            place("ORG", cl.join_structured([new.account_name, new.department]))
        else:
            _replace_components(prop, {0: new.account_name, 1: new.department}, 2)

    def text_field(
        key: str, prop_name: str, old_value: str, new_value: str, **params: str | tuple[str, ...]
    ) -> None:
        if old_value == new_value:
            return
        prop = sel[key]
        if not new_value:
            if prop is not None:
                drop(prop)
        elif prop is None:
            place(prop_name, cl.escape_text(new_value), **params)
        else:
            prop.set_value(cl.escape_text(new_value))

    text_field("title", "TITLE", old.title, new.title)
    text_field("description", "NOTE", old.description, new.description)
    # The CRM's email is the card's preferred one (the one read from it): a new EMAIL says so.
    if _version4(card):
        text_field("email", "EMAIL", old.email, new.email, PREF="1")
    else:
        text_field("email", "EMAIL", old.email, new.email, TYPE=("INTERNET", "PREF"))
    for name in _PHONE_FIELDS:
        old_value, new_value = getattr(old, name), getattr(new, name)
        if old_value == new_value:
            continue
        prop = sel[name]
        if not new_value:
            if prop is not None:
                drop(prop)
        elif prop is None:
            place("TEL", cl.escape_text(new_value), TYPE=_type_param(card, _TEL_TYPES[name]))
        else:
            _set_phone(prop, new_value)
    for name in _ADDRESS_FIELDS:
        old_addr, new_addr = getattr(old, name), getattr(new, name)
        if old_addr == new_addr:
            continue
        prop = sel[name]
        values = {
            3: new_addr.city,
            4: new_addr.state,
            5: new_addr.postal_code,
            6: new_addr.country,
        }
        if new_addr.street != old_addr.street:
            values.update(_street_components(_components(prop, 3), new_addr.street))
        if new_addr.is_empty():
            if prop is not None:
                drop(prop)
        elif prop is None:
            place(
                "ADR",
                cl.join_structured([values.get(i, "") for i in range(7)]),
                TYPE=_type_param(card, _ADR_TYPES[name]),
            )
        else:
            _replace_components(prop, values, 7)
    if old.birthdate != new.birthdate:
        prop = sel["birthdate"]
        if new.birthdate is None:
            if prop is not None:
                drop(prop)
        else:
            compact = prop is not None and re.fullmatch(r"\d{8}.*", prop.value.strip())
            text = new.birthdate.strftime("%Y%m%d") if compact else new.birthdate.isoformat()
            if prop is None:
                place("BDAY", text)
            else:
                prop.set_value(text)
                prop.remove_param("VALUE")
    if old.is_person_account != new.is_person_account:
        prop = sel["person"]
        if new.is_person_account:
            if prop is None:
                place(PERSON_ACCOUNT_PROPERTY, "TRUE")
            else:
                prop.set_value("TRUE")
        elif prop is not None:
            drop(prop)


def render_new_vcard(contact: Contact, marker: str, uid: str) -> str:
    """A new vCard 3.0 holding ``contact``, with ``uid`` and the marker."""
    card = cl.Component("VCARD")
    card.add(cl.Property("VERSION", "3.0"))
    card.add(cl.Property("UID", cl.escape_text(uid)))
    card.add(cl.Property("N", ";;;;"))  # vCard 3.0 requires N, empty for a company
    if contact.is_company:
        # Apple's mark of a company card in vCard 3.0 (4.0 has KIND:org).
        card.add(cl.Property("X-ABSHOWAS", "COMPANY"))
    _apply(card, Contact(), contact)
    card.add(cl.Property(MARKER_PROPERTY, cl.escape_text(marker)))
    return card.serialize()


def render_vcard_update(
    text: str, contact: Contact, field_map: ContactFieldMap = IDENTITY_MAP
) -> str:
    """``text`` with the mapped properties changed to ``contact``'s values (in place);
    properties of fields that do not sync stay as they are."""
    card = _parse_tree(text)
    old = field_map.blank_unsynced(_read(card))
    if old == contact:
        return text
    _apply(card, old, contact)
    return card.serialize()


class VCardFormat:
    """The `ItemFormat` of CardDAV address books, syncing the fields of ``field_map``."""

    def __init__(self, field_map: ContactFieldMap = IDENTITY_MAP) -> None:
        self.field_map = field_map

    content_type = "text/vcard; charset=utf-8"
    extension = ".vcf"
    multiget_report = tag(CARDDAV, "addressbook-multiget")
    data_property = tag(CARDDAV, "address-data")

    def parse(self, text: str) -> ParsedItem[Record]:
        return parse_vcard(text, self.field_map)

    def render_new(self, record: Record, marker: str, uid: str) -> str:
        if not isinstance(record, Contact):
            raise TypeError("an address book holds contacts")
        return render_new_vcard(record, marker, uid)

    def render_update(self, text: str, record: Record) -> str:
        if not isinstance(record, Contact):
            raise TypeError("an address book holds contacts")
        return render_vcard_update(text, record, self.field_map)

    def reads_back(self, record: Record) -> bool:
        return isinstance(record, Contact) and contact_reads_back(record, self.field_map)
