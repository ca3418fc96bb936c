"""One rep's Salesforce contacts (person accounts among them) as a sync side (`ItemSide`).

Reads come from the org's shared `ObjectFeed` (incremental) or one query per rep (full
listing). Writes are sObject Collections calls of up to 200 records: the engine hands a
batch to `create_many` / `update_many` / `delete_many` (one item is a batch of one).
Creates are an upsert on the marker field, so a create repeated after a crash finds its
first attempt. A person account's fields are written through its Account. Versions are
checked by reading the records first: the REST collections have no conditional update.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmsync.crm.salesforce import sobject_collections as collections
from crmsync.crm.salesforce.batched_side import BatchedSide
from crmsync.crm.salesforce.contact_map import crm_values, write_fields
from crmsync.crm.salesforce.errors import EntityIsDeleted
from crmsync.crm.salesforce.feed import owned_rows
from crmsync.crm.salesforce.markers import marker_of, marker_value
from crmsync.crm.salesforce.query import in_groups, plain, query, quote, quote_list
from crmsync.crm.salesforce.upsert import upsert_many
from crmsync.crm.salesforce.versions import cursor_watermark, older_than, row_version
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
    SyncError,
    VersionConflict,
    Written,
)

if TYPE_CHECKING:
    from crmsync.crm.salesforce.crm import SalesforceCrm

# Fields a vCard cannot know: kept as Salesforce has them.
_NOT_WRITTEN = ("account_name", "is_person_account")


class ContactSide(BatchedSide):
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
            if older_than(row, known.get(row_id)):
                continue  # polled before our own write of it
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

    def fetch(self, item_id: str) -> Seen | None:
        row = self._rows_in("Id", [item_id]).get(item_id)
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

    def _find_accounts(self, names: Iterable[str]) -> None:
        """Look up the business accounts of these names not looked up yet (one query per
        group of names): each name keeps the one account of that name, or none."""
        wanted = sorted({n for n in names if n and n not in self._accounts})
        for group in in_groups(wanted):
            soql = f"SELECT Id, Name FROM Account WHERE Name IN {quote_list(group)}"
            if self.crm.person_accounts():
                soql += " AND IsPersonAccount = false"
            found: dict[str, list[str]] = {}
            for row in query(self.conn, soql):
                found.setdefault(str(row.get("Name")), []).append(str(row["Id"]))
            for name in group:
                ids = found.get(name, [])
                self._accounts[name] = ids[0] if len(ids) == 1 else None

    def _with_account(self, payload: dict[str, Any], record: Contact, current: str) -> None:
        """Link the contact to the account the mail side names, when Salesforce has
        exactly one account of that name and the mapping syncs it (`_find_accounts`
        first)."""
        if self.field_map.crm_field_of("account_name") != "account_name":
            return
        if record.account_name and record.account_name != current:
            self._find_accounts([record.account_name])
            account = self._accounts[record.account_name]
            if account is not None:
                payload["AccountId"] = account

    # Many at once (`crmsync.engine.ports.BatchWrites`): a few queries and one collection
    # call per 200 records, whatever the number of records.

    def create_many(self, items: Sequence[tuple[Record, str]]) -> list[Written | SyncError]:
        """Create each contact as its owner's, stamped with its marker: one query finds
        those a crashed create already made, one upsert on the marker field per 200
        creates the others (so a repeat still cannot duplicate), one query reads them."""
        outcomes: list[Written | SyncError | None] = [None] * len(items)
        keys = [marker_value(self.rep_id, marker) for _, marker in items]
        existing = self._rows_in(self.crm.marker_field, keys)
        pending: list[tuple[int, dict[str, Any]]] = []
        for index, (record, _) in enumerate(items):
            try:
                row = existing.get(keys[index])
                if row is not None:
                    outcomes[index] = self._written(row)
                else:
                    pending.append((index, self._payload(record, person=False)))
            except SyncError as failure:
                outcomes[index] = failure
        self._find_accounts(_account_names(items[i][0] for i, _ in pending))
        records = []
        for index, payload in pending:
            self._with_account(payload, items[index][0], "")  # type: ignore[arg-type]
            records.append({**payload, "OwnerId": self.rep_id, self.crm.marker_field: keys[index]})
        results = upsert_many(self.conn, "Contact", self.crm.marker_field, records)
        written = {}
        for (index, _), result in zip(pending, results, strict=True):
            if result.error is not None:
                outcomes[index] = result.error
            else:
                written[index] = str(result.id)
        return self._read_back(written, outcomes)

    def update_many(self, items: Sequence[tuple[str, str, Record]]) -> list[Written | SyncError]:
        """Update each contact whose version is still the one given (one query), its
        mapped fields only: one collection call per 200 contacts (and one per 200 person
        accounts, written through their Account), one query reads them back."""
        outcomes: list[Written | SyncError | None] = [None] * len(items)
        rows = self._rows_in("Id", [item_id for item_id, _, _ in items])
        pending: dict[str, list[tuple[int, dict[str, Any]]]] = {"Contact": [], "Account": []}
        self._find_accounts(_account_names(record for _, _, record in items))
        for index, (item_id, version, record) in enumerate(items):
            try:
                row = self._current(item_id, version, rows.get(item_id))
                person = bool(row.get("IsPersonAccount"))
                payload = self._payload(record, person=person)
            except SyncError as failure:
                outcomes[index] = failure
                continue
            if person:
                pending["Account"].append((index, {"Id": row.get("AccountId"), **payload}))
            else:
                account = row.get("Account") or {}
                self._with_account(payload, record, str(account.get("Name") or ""))  # type: ignore[arg-type]
                pending["Contact"].append((index, {"Id": item_id, **payload}))
        written = {}
        for sobject, writes in pending.items():
            results = collections.update(self.conn, sobject, [fields for _, fields in writes])
            for (index, _), result in zip(writes, results, strict=True):
                if result.error is not None:
                    outcomes[index] = result.error
                else:
                    written[index] = items[index][0]
        return self._read_back(written, outcomes)

    def delete_many(self, items: Sequence[tuple[str, str]]) -> list[SyncError | None]:
        """Delete each contact whose version is still the one given (one query; a person
        account's contact goes with its Account): one collection call per 200."""
        outcomes: list[SyncError | None] = [None] * len(items)
        rows = self._rows_in("Id", [item_id for item_id, _ in items])
        targets: list[tuple[int, str]] = []
        for index, (item_id, version) in enumerate(items):
            row = rows.get(item_id)
            if row is None:
                continue  # already gone
            if row_version(row) != version:
                outcomes[index] = VersionConflict(
                    f"contact {item_id} changed in Salesforce since it was read",
                    "The record changed in the CRM; the next cycle decides again.",
                )
                continue
            person = row.get("IsPersonAccount")
            targets.append((index, str(row["AccountId"]) if person else item_id))
        results = collections.delete(self.conn, [target for _, target in targets])
        for (index, _), result in zip(targets, results, strict=True):
            if result.error is not None and not isinstance(result.error, EntityIsDeleted):
                outcomes[index] = result.error
        return outcomes

    def _rows_in(self, field: str, values: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The rep's contacts whose ``field`` is one of ``values``, by that value."""
        found: dict[str, dict[str, Any]] = {}
        owner = self._owner_condition()
        select = ", ".join(self.crm.contact_fields())
        for group in in_groups(list(dict.fromkeys(values))):
            where = " AND ".join(p for p in (f"{field} IN {quote_list(group)}", owner) if p)
            for row in query(self.conn, f"SELECT {select} FROM Contact WHERE {where}"):
                found.setdefault(str(row.get(field)), plain(row))
        return found

    def _read_back(
        self, written: dict[int, str], outcomes: list[Written | SyncError | None]
    ) -> list[Written | SyncError]:
        """``outcomes`` completed with the contacts written (index → contact id) as they
        are now."""
        rows = self._rows_in("Id", list(written.values()))
        for index, record_id in written.items():
            row = rows.get(record_id)
            if row is None:
                outcomes[index] = VersionConflict(
                    f"contact {record_id} vanished right after it was written",
                    "Someone deleted it in Salesforce; the next cycle decides again.",
                )
                continue
            try:
                outcomes[index] = self._written(row)
            except SyncError as failure:
                outcomes[index] = failure
        assert all(o is not None for o in outcomes)
        return outcomes  # type: ignore[return-value]

    def _written(self, row: Mapping[str, Any]) -> Written:
        seen = self._seen(row)
        if seen.record is None:
            assert seen.problem is not None
            raise RejectedWrite(seen.problem.message, seen.problem.suggestion)
        return Written(seen.id, seen.version, seen.record)

    def _current(self, item_id: str, version: str, row: dict[str, Any] | None) -> dict[str, Any]:
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


def _account_names(records: Iterable[Record]) -> list[str]:
    return [r.account_name for r in records if isinstance(r, Contact) and r.account_name]
