"""The fake Exchange's state for `fake_ews`: mailboxes, folders, items kept as the XML the
client sent (each with an ItemId and a ChangeKey that changes on every write), the change
log SyncFolderItems reads, recurring series expanded as EWS does, and the test switches
(faults to answer, mailboxes that may not be impersonated).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule
from exchangelib.winzone import MS_TIMEZONE_TO_IANA_MAP
from lxml import etree

S = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
NSMAP = {"s": S, "m": M, "t": T}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
# The indexed contact properties and their container elements (Contact reference page:
# learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/contact).
CONTAINERS = {
    "EmailAddress": "EmailAddresses",
    "PhoneNumber": "PhoneNumbers",
    "PhysicalAddress": "PhysicalAddresses",
    "ImAddress": "ImAddresses",
}


def t(name: str) -> str:
    return f"{{{T}}}{name}"


def m(name: str) -> str:
    return f"{{{M}}}{name}"


def utc_text(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass
class Recorded:
    operation: str
    headers: dict[str, str]
    body: Any  # the lxml SOAP body element
    impersonated: str | None


@dataclass
class Fault:
    operation: str | None  # None: any operation
    code: str
    back_off_ms: int | None = None
    http_status: int | None = None


@dataclass
class Stored:
    id: str
    folder: str
    element: Any
    changekey: str
    # Series only: original start (UTC) → exception item id, and deleted originals.
    modified: dict[dt.datetime, str] = field(default_factory=dict)
    deleted: set[dt.datetime] = field(default_factory=set)
    master: str | None = None  # for an exception item: its series' id
    original_start: dt.datetime | None = None


BOOLEANS = {"IsAllDayEvent", "ReminderIsSet", "IsResponseRequested", "AllowNewTimeProposal"}


def normalized(element: Any) -> Any:
    """The item as Exchange stores it: xs:boolean values sent as 1/0 read back true/false."""
    element = copy.deepcopy(element)
    for el in element.iter():
        if isinstance(el.tag, str) and etree.QName(el).localname in BOOLEANS:
            el.text = {"1": "true", "0": "false"}.get((el.text or "").strip(), el.text)
    return element


class EwsError(Exception):
    def __init__(self, code: str, text: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.text = text or code


class FakeExchange:
    """The server's state: mailboxes, folders, items, change log and test switches."""

    def __init__(self, username: str, password: str, mailboxes: set[str]) -> None:
        self.username = username
        self.password = password
        self.mailboxes = {a.lower() for a in mailboxes}
        self.denied: set[str] = set()  # mailboxes the service account may not impersonate
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self.lock = threading.RLock()
        self.folders: dict[str, dict[str, Any]] = {}
        self.items: dict[str, Stored] = {}
        self.log: list[tuple[int, str, str]] = []  # (seq, folder, item id)
        self.seq = itertools.count(1)
        self.last_seq = 0
        self.ids = itertools.count(1)
        self.version = (15, 1, 2507, 6)  # Exchange 2016 CU

    # ---------------------------------------------------------------- folders

    def _distinguished(self, mailbox: str, name: str) -> str:
        folder_id = f"{name}@{mailbox}"
        if folder_id not in self.folders:
            classes = {"calendar": "IPF.Appointment", "contacts": "IPF.Contact"}
            tags = {"calendar": "CalendarFolder", "contacts": "ContactsFolder"}
            self.folders[folder_id] = {
                "tag": tags.get(name, "Folder"),
                "name": {"msgfolderroot": "Top of Information Store"}.get(name, name.title()),
                "class": classes.get(name),
                "parent": None if name == "msgfolderroot" else f"msgfolderroot@{mailbox}",
                "mailbox": mailbox,
            }
        return folder_id

    def folder_id(self, elem: Any, mailbox: str) -> str:
        if elem.tag == t("DistinguishedFolderId"):
            return self._distinguished(mailbox, elem.get("Id"))
        folder_id = elem.get("Id")
        if folder_id not in self.folders:
            raise EwsError("ErrorFolderNotFound")
        return folder_id

    def folder_xml(self, folder_id: str) -> Any:
        f = self.folders[folder_id]
        el = etree.Element(t(f["tag"]))
        etree.SubElement(el, t("FolderId"), Id=folder_id, ChangeKey="fck")
        if f["parent"]:
            etree.SubElement(el, t("ParentFolderId"), Id=f["parent"], ChangeKey="fck")
        if f["class"]:
            etree.SubElement(el, t("FolderClass")).text = f["class"]
        etree.SubElement(el, t("DisplayName")).text = f["name"]
        etree.SubElement(el, t("TotalCount")).text = str(
            sum(1 for i in self.items.values() if i.folder == folder_id and not i.master)
        )
        etree.SubElement(el, t("ChildFolderCount")).text = "0"
        return el

    # ---------------------------------------------------------------- items

    def new_id(self) -> str:
        return base64.b64encode(f"AAMkItem{next(self.ids):06d}".encode()).decode()

    def touch(self, stored: Stored) -> None:
        stored.changekey = base64.b64encode(f"CQAAAB{next(self.ids):06d}".encode()).decode()
        seq = next(self.seq)
        self.last_seq = seq
        if stored.master is None:
            self.log.append((seq, stored.folder, stored.id))

    def item_xml(self, stored: Stored, shape_id_only: bool = False) -> Any:
        el = etree.Element(stored.element.tag)
        etree.SubElement(el, t("ItemId"), Id=stored.id, ChangeKey=stored.changekey)
        if shape_id_only:
            return el
        for child in stored.element:
            el.append(copy.deepcopy(child))
        if el.tag == t("CalendarItem"):
            self._calendar_extras(stored, el)
        return el

    def _calendar_extras(self, stored: Stored, el: Any) -> None:
        mailbox = self.folders[stored.folder]["mailbox"] if stored.folder else ""
        if el.find(t("Organizer")) is None:
            org = etree.SubElement(el, t("Organizer"))
            mb = etree.SubElement(org, t("Mailbox"))
            etree.SubElement(mb, t("EmailAddress")).text = mailbox
        kind = "Single"
        if stored.master:
            kind = "Exception"
            etree.SubElement(el, t("OriginalStart")).text = utc_text(stored.original_start)  # type: ignore[arg-type]
        elif el.find(t("Recurrence")) is not None:
            kind = "RecurringMaster"
            if stored.modified:
                mod = etree.SubElement(el, t("ModifiedOccurrences"))
                for original, exc_id in sorted(stored.modified.items()):
                    exc = self.items[exc_id]
                    occ = etree.SubElement(mod, t("Occurrence"))
                    etree.SubElement(occ, t("ItemId"), Id=exc.id, ChangeKey=exc.changekey)
                    etree.SubElement(occ, t("Start")).text = exc.element.findtext(t("Start"))
                    etree.SubElement(occ, t("End")).text = exc.element.findtext(t("End"))
                    etree.SubElement(occ, t("OriginalStart")).text = utc_text(original)
            if stored.deleted:
                dele = etree.SubElement(el, t("DeletedOccurrences"))
                for original in sorted(stored.deleted):
                    d = etree.SubElement(dele, t("DeletedOccurrence"))
                    etree.SubElement(d, t("Start")).text = utc_text(original)
        etree.SubElement(el, t("CalendarItemType")).text = kind

    # ---------------------------------------------------------------- recurrence

    def occurrences(self, stored: Stored) -> list[dt.datetime]:
        """The series' original starts in UTC (Recurrence element reference:
        learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/recurrence-recurrencetype)."""
        el = stored.element
        rec = el.find(t("Recurrence"))
        start = parse_utc(el.findtext(t("Start")))
        zone_el = el.find(t("StartTimeZone"))
        zone_id = zone_el.get("Id") if zone_el is not None else "UTC"
        zone = ZoneInfo(MS_TIMEZONE_TO_IANA_MAP.get(zone_id, "UTC"))
        local = start.astimezone(zone).replace(tzinfo=None)
        pattern = rec[0]
        name = etree.QName(pattern).localname
        interval = int(pattern.findtext(t("Interval")) or 1)
        kwargs: dict[str, Any] = {"dtstart": local, "interval": interval}
        if name == "DailyRecurrence":
            freq = DAILY
        elif name == "WeeklyRecurrence":
            freq = WEEKLY
            kwargs["byweekday"] = [DAYS.index(d) for d in pattern.findtext(t("DaysOfWeek")).split()]
        elif name == "AbsoluteMonthlyRecurrence":
            freq = MONTHLY
            kwargs["bymonthday"] = int(pattern.findtext(t("DayOfMonth")))
        elif name == "AbsoluteYearlyRecurrence":
            freq = YEARLY
            kwargs["bymonthday"] = int(pattern.findtext(t("DayOfMonth")))
            months = ["January", "February", "March", "April", "May", "June", "July"]
            months += ["August", "September", "October", "November", "December"]
            kwargs["bymonth"] = months.index(pattern.findtext(t("Month"))) + 1
        else:
            raise EwsError("ErrorInvalidRecurrence", f"the fake does not expand {name}")
        boundary = rec[1]
        bname = etree.QName(boundary).localname
        if bname == "NumberedRecurrence":
            kwargs["count"] = int(boundary.findtext(t("NumberOfOccurrences")))
        elif bname == "EndDateRecurrence":
            end = dt.date.fromisoformat(boundary.findtext(t("EndDate"))[:10])
            kwargs["until"] = dt.datetime.combine(end, dt.time(23, 59, 59))
        else:
            kwargs["count"] = 500
        return [d.replace(tzinfo=zone).astimezone(dt.UTC) for d in rrule(freq, **kwargs)]

    def occurrence_of(self, master_id: str, index: int) -> tuple[Stored, dt.datetime]:
        master = self.items.get(master_id)
        if master is None or master.element.find(t("Recurrence")) is None:
            raise EwsError("ErrorItemNotFound")
        starts = self.occurrences(master)
        if not 1 <= index <= len(starts):
            raise EwsError("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange")
        original = starts[index - 1]
        if original in master.deleted:
            raise EwsError("ErrorCalendarOccurrenceIsDeletedFromRecurrence")
        return master, original

    def occurrence_item(self, master: Stored, original: dt.datetime) -> Stored:
        """The exception item for ``original``, made from the master on first use."""
        if original in master.modified:
            return self.items[master.modified[original]]
        el = copy.deepcopy(master.element)
        for name in ("Recurrence",):
            for child in el.findall(t(name)):
                el.remove(child)
        duration = parse_utc(el.findtext(t("End"))) - parse_utc(el.findtext(t("Start")))
        el.find(t("Start")).text = utc_text(original)
        el.find(t("End")).text = utc_text(original + duration)
        exc = Stored(
            self.new_id(), master.folder, el, "", master=master.id, original_start=original
        )
        self.touch(exc)
        return exc

    # ---------------------------------------------------------------- item addressing

    def resolve(self, id_elem: Any) -> tuple[Stored | None, tuple[str, int] | None]:
        """(stored item, None) or (None, (master id, instance index)) for an occurrence."""
        if id_elem.tag == t("OccurrenceItemId"):
            return None, (id_elem.get("RecurringMasterId"), int(id_elem.get("InstanceIndex")))
        item_id = id_elem.get("Id")
        if item_id.startswith("occ~") and item_id not in self.items:
            _, master_id, index = item_id.split("~")
            return None, (master_id, int(index))
        stored = self.items.get(item_id)
        if stored is None:
            raise EwsError("ErrorItemNotFound", "The specified object was not found in the store.")
        return stored, None

    def synthesized(self, master_id: str, index: int) -> Any:
        master, original = self.occurrence_of(master_id, index)
        if original in master.modified:
            return self.item_xml(self.items[master.modified[original]])
        exc = self.occurrence_item(master, original)
        exc.id, exc.changekey = f"occ~{master_id}~{index}", master.changekey
        el = self.item_xml(exc)
        el.find(t("CalendarItemType")).text = "Occurrence"
        return el

    # ---------------------------------------------------------------- updates

    def apply_updates(self, stored: Stored, updates: Any) -> None:
        """SetItemField / DeleteItemField (UpdateItem operation:
        learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/updateitem-operation)."""
        item = stored.element
        for change in updates:
            path = change[0]
            kind = etree.QName(path).localname
            uri = path.get("FieldURI") or ""
            setting = change.tag == t("SetItemField")
            value = change[1][0] if setting else None
            if kind == "ExtendedFieldURI":
                for old in item.findall(t("ExtendedProperty")):
                    if dict(old.find(t("ExtendedFieldURI")).attrib) == dict(path.attrib):
                        item.remove(old)
                if setting:
                    item.append(copy.deepcopy(value))
                continue
            if kind == "IndexedFieldURI":
                parts = uri.split(":")
                container_name = CONTAINERS[parts[1]]
                key = path.get("FieldIndex")
                container = item.find(t(container_name))
                if container is None:
                    if not setting:
                        continue
                    container = etree.SubElement(item, t(container_name))
                entry = next((e for e in container if e.get("Key") == key), None)
                if setting:
                    new_entry = value[0]
                    if entry is None:
                        container.append(copy.deepcopy(new_entry))
                    elif len(new_entry):
                        for sub in new_entry:
                            for old in entry.findall(sub.tag):
                                entry.remove(old)
                            entry.append(copy.deepcopy(sub))
                    else:
                        entry.text = new_entry.text
                elif entry is not None:
                    if len(parts) == 3:
                        for old in entry.findall(t(parts[2])):
                            entry.remove(old)
                        if len(entry) == 0:
                            container.remove(entry)
                    else:
                        container.remove(entry)
                if len(container) == 0:
                    item.remove(container)
                continue
            name = uri.split(":")[-1]
            if name == "IsAllDayEvent":
                name = "IsAllDayEvent"
            for old in item.findall(t(name)):
                item.remove(old)
            if setting:
                item.append(normalized(value))
            if name in ("Recurrence", "Start") and not stored.master:
                # Changing a series' pattern or time drops its exceptions, as in Exchange.
                for exc_id in stored.modified.values():
                    self.items.pop(exc_id, None)
                stored.modified.clear()
                stored.deleted.clear()
