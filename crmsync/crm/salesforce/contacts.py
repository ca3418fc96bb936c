"""One rep's Salesforce contacts (person accounts among them) as a sync side (`ItemSide`).

Reads come from the org's shared `ObjectFeed` (incremental) or one query per rep (full
listing); writes are sObject Collections calls of one record (the engine writes item by
item), creates an upsert on the marker field so a create repeated after a crash finds its
first attempt. A person account's fields are written through its Account. Versions are
checked by reading the record first: the REST collections have no conditional update.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from crmsync.crm.salesforce import sobject_collections as collections
from crmsync.crm.salesforce.contact_map import crm_values, write_fields
from crmsync.crm.salesforce.errors import EntityIsDeleted
from crmsync.crm.salesforce.feed import owned_rows
from crmsync.crm.salesforce.markers import marker_of, marker_value
from crmsync.crm.salesforce.query import plain, query, quote
from crmsync.crm.salesforce.upsert import upsert_one
from crmsync.crm.salesforce.versions import cursor_watermark, row_version
from crmsync.domain.contact_fields import (
    IDENTITY_MAP,
    ContactFieldMap,
    InvalidValue,
)
from crmsync.domain.records import Contact, Record
from crmsync.domain.sync import (
    Changes,
    ErrorType,
    ItemProblem,
    RejectedWrite,
    Seen,
    VersionConflict,
    Written,
)

if TYPE_CHECKING:
    from crmsync.crm.salesforce.crm import SalesforceCrm

# Fields a vCard cannot know: kept as Salesforce has them.
_NOT_WRITTEN = ("account_name", "is_person_account")


class ContactSide:
    """The contacts ``rep_id`` (a Salesforce User id) owns, or, with ``all_owners``, every
    contact the integration user sees. Satisfies `crmsync.engine.ports.ItemSide`."""

    def __init__(
        self,
        crm: SalesforceCrm,
        rep_id: str,
        *,
        all_owners: bool = False,
        field_map: ContactFieldMap = IDENTITY_MAP,
    ) -> None:
        self.crm = crm
        self.conn = crm.conn
        self.rep_id = rep_id
        self.all_owners = all_owners
        self.field_map = field_map
        self._accounts: dict[str, str | None] = {}

    def __repr__(self) -> str:
        return f"ContactSide({self.conn.config.base_url}, rep={self.rep_id!r})"

    # ---------------------------------------------------------------- reading

    def _in_scope(self, row: Mapping[str, Any]) -> bool:
        return not row.get("IsDeleted") and (self.all_owners or row.get("OwnerId") == self.rep_id)

    def _seen(self, row: Mapping[str, Any]) -> Seen:
        version = row_version(row)
        marker = marker_of(self.rep_id, row.get(self.crm.marker_field))
        try:
            values = crm_values(row, self.crm.contact_custom_fields())
            record = self.field_map.to_contact(values)
        except InvalidValue as exc:
            problem = ItemProblem(
                ErrorType.MALFORMED_ITEM,
                f"contact {row.get('Id')} has a value its mapped mail field cannot hold: {exc}",
                "Correct the value in Salesforce, or map the field to a mail field of its "
                "type in the configuration's field mappings.",
            )
            return Seen(str(row["Id"]), version, None, marker, problem)
        except (ValueError, TypeError) as exc:
            problem = ItemProblem(
                ErrorType.MALFORMED_ITEM,
                f"contact {row.get('Id')} cannot be read: {exc}",
                "Check the record's values in Salesforce.",
            )
            return Seen(str(row["Id"]), version, None, marker, problem)
        return Seen(str(row["Id"]), version, record, marker)

    def _owner_condition(self) -> str:
        return "" if self.all_owners else f"OwnerId = {quote(self.rep_id)}"

    def changes(self, cursor: str | None, known: Mapping[str, str]) -> Changes:
        """Contacts changed since ``cursor`` from the org's feed, or all of the rep's
        (without a cursor, with one not ours, or one older than the deletion log)."""
        feed = self.crm.feed("Contact")
        since = cursor_watermark(cursor)
        if since is None or self.crm.too_old(feed, since):
            return self._full(known)
        piece = feed.since(since)
        items, deleted = [], []
        for row in piece.rows:
            row_id = str(row["Id"])
            if self._in_scope(row):
                if known.get(row_id) != row_version(row):
                    items.append(self._seen(row))
            elif row_id in known:
                deleted.append(row_id)  # deleted, or given to another owner
        return Changes(tuple(items), tuple(deleted), cursor=piece.cursor)

    def _full(self, known: Mapping[str, str]) -> Changes:
        cursor = self.crm.feed("Contact").head()
        condition = self._owner_condition() or "Id != null"
        rows = owned_rows(self.conn, "Contact", self.crm.contact_fields(), condition)
        present = {str(r["Id"]) for r in rows}
        items = tuple(self._seen(r) for r in rows if known.get(str(r["Id"])) != row_version(r))
        deleted = tuple(sorted(i for i in known if i not in present))
        return Changes(items, deleted, cursor=cursor, full=True)

    def _row(self, condition: str) -> dict[str, Any] | None:
        owner = self._owner_condition()
        where = " AND ".join(p for p in (condition, owner) if p)
        soql = f"SELECT {', '.join(self.crm.contact_fields())} FROM Contact WHERE {where} LIMIT 2"
        rows = [plain(r) for r in query(self.conn, soql)]
        return rows[0] if rows else None

    def fetch(self, item_id: str) -> Seen | None:
        row = self._row(f"Id = {quote(item_id)}")
        return None if row is None else self._seen(row)

    # ---------------------------------------------------------------- writing

    def _payload(self, record: Record, *, person: bool) -> dict[str, Any]:
        if not isinstance(record, Contact):
            raise TypeError(f"a contact side cannot store a {type(record).__name__}")
        try:
            values = self.field_map.to_crm(record)
        except InvalidValue as exc:
            raise RejectedWrite(
                f"the contact has a value its mapped Salesforce field cannot hold: {exc}",
                "Correct the value on the mail server, or change the configuration's field "
                "mappings.",
            ) from exc
        writable = {k: v for k, v in values.items() if k not in _NOT_WRITTEN}
        return write_fields(writable, person=person)

    def _account_id(self, name: str) -> str | None:
        """The one business account with exactly this name, if there is one."""
        if name not in self._accounts:
            soql = f"SELECT Id FROM Account WHERE Name = {quote(name)} LIMIT 2"
            if self.crm.person_accounts():
                soql = soql.replace(" LIMIT", " AND IsPersonAccount = false LIMIT")
            found = [str(r["Id"]) for r in query(self.conn, soql)]
            self._accounts[name] = found[0] if len(found) == 1 else None
        return self._accounts[name]

    def _with_account(self, payload: dict[str, Any], record: Contact, current: str) -> None:
        """Link the contact to the account the mail side names, when Salesforce has
        exactly one account of that name and the mapping syncs it."""
        if self.field_map.crm_field_of("account_name") != "account_name":
            return
        if record.account_name and record.account_name != current:
            account = self._account_id(record.account_name)
            if account is not None:
                payload["AccountId"] = account

    def planned_id(self, marker: str) -> None:
        """Salesforce assigns record ids: none is known before the create."""
        return None

    def create(self, record: Record, marker: str) -> Written:
        payload = self._payload(record, person=False)
        assert isinstance(record, Contact)
        key = marker_value(self.rep_id, marker)
        existing = self._row(f"{self.crm.marker_field} = {quote(key)}")
        if existing is not None:
            return self._written(existing)
        self._with_account(payload, record, "")
        payload["OwnerId"] = self.rep_id
        result = upsert_one(self.conn, "Contact", self.crm.marker_field, key, payload)
        return self._written_by_id(result.id or "")

    def _written(self, row: Mapping[str, Any]) -> Written:
        seen = self._seen(row)
        if seen.record is None:
            assert seen.problem is not None
            raise RejectedWrite(seen.problem.message, seen.problem.suggestion)
        return Written(seen.id, seen.version, seen.record)

    def _written_by_id(self, record_id: str) -> Written:
        row = self._row(f"Id = {quote(record_id)}")
        if row is None:
            raise VersionConflict(
                f"contact {record_id} vanished right after it was written",
                "Someone deleted it in Salesforce; the next cycle decides again.",
            )
        return self._written(row)

    def _current(self, item_id: str, version: str) -> dict[str, Any]:
        row = self._row(f"Id = {quote(item_id)}")
        if row is None:
            raise VersionConflict(
                f"contact {item_id} is gone from Salesforce (or now someone else's)",
                "The next cycle decides again.",
            )
        if row_version(row) != version:
            raise VersionConflict(
                f"contact {item_id} changed in Salesforce since it was read",
                "The record changed in the CRM; the next cycle merges it.",
            )
        return row

    def update(self, item_id: str, version: str, record: Record) -> Written:
        row = self._current(item_id, version)
        person = bool(row.get("IsPersonAccount"))
        payload = self._payload(record, person=person)
        assert isinstance(record, Contact)
        if person:
            target, sobject = row.get("AccountId"), "Account"
        else:
            target, sobject = item_id, "Contact"
            account = row.get("Account") or {}
            self._with_account(payload, record, str(account.get("Name") or ""))
        (result,) = collections.update(self.conn, sobject, [{"Id": target, **payload}])
        if result.error is not None:
            raise result.error
        return self._written_by_id(item_id)

    def delete(self, item_id: str, version: str) -> None:
        row = self._row(f"Id = {quote(item_id)}")
        if row is None:
            return
        if row_version(row) != version:
            raise VersionConflict(
                f"contact {item_id} changed in Salesforce since it was read",
                "The record changed in the CRM; the next cycle decides again.",
            )
        # A person account's contact goes with its Account.
        target = str(row["AccountId"]) if row.get("IsPersonAccount") else item_id
        (result,) = collections.delete(self.conn, [target])
        if result.error is not None and not isinstance(result.error, EntityIsDeleted):
            raise result.error
