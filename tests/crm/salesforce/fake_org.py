"""`FakeOrg`: the records of a fake Salesforce org and the rules it writes them by.

No HTTP here (see `fake_server`). Each write method follows a documented behaviour:
SaveResult errors per record (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_create.htm),
person accounts as one Account plus its person contact
(https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_guidelines_personaccounts.htm),
Lightning event series generated from the first occurrence's pattern, deleted whole when
the first occurrence is deleted, with an edited occurrence flagged as an exception
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_event_series_delete.htm).
Simplifications: one pattern per series (no "from this event onwards" edits); refusals a
real org makes that crmsync never provokes are not modelled. Refusal codes the
documentation does not name for a case are marked [verify].
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
from collections.abc import Mapping
from typing import Any

from tests.crm.salesforce import fake_schema as schema
from tests.crm.salesforce.fake_events import FakeEventSeries
from tests.crm.salesforce.fake_values import UTC, FakeError, error, parse_instant, sf_instant
from tests.crm.salesforce.soql import MalformedQuery, parse

PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Profile": "00e",
    "Lead": "00Q",
    "Event": "00U",
    "PermissionSet": "0PS",
    "FieldPermissions": "01k",
    "PermissionSetAssignment": "0Pa",
}
PERSON_TO_CONTACT = {
    "FirstName": "FirstName",
    "LastName": "LastName",
    "Salutation": "Salutation",
    "PersonTitle": "Title",
    "PersonDepartment": "Department",
    "PersonEmail": "Email",
    "Phone": "Phone",
    "Fax": "Fax",
    "PersonMobilePhone": "MobilePhone",
    "PersonHomePhone": "HomePhone",
    "PersonOtherPhone": "OtherPhone",
    "PersonBirthdate": "Birthdate",
    "Description": "Description",
    **{
        f"PersonMailing{p}": f"Mailing{p}"
        for p in ("Street", "City", "State", "PostalCode", "Country")
    },
    **{
        f"PersonOther{p}": f"Other{p}" for p in ("Street", "City", "State", "PostalCode", "Country")
    },
}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class FakeOrg(FakeEventSeries):
    def __init__(
        self,
        *,
        person_accounts: bool = True,
        shared_activities: bool = True,
        marker_field: str = "CrmSync_Key__c",
        marker_fields: bool = True,
        custom_contact_fields: Mapping[str, str] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.marker_field = marker_field
        self.schema: dict[str, dict[str, schema.Spec]] = {
            "Contact": schema.contact_fields(person_accounts),
            "Account": schema.account_fields(person_accounts),
            "Lead": schema.lead_fields(),
            "Event": schema.event_fields(shared_activities),
            "User": schema.user_fields(),
            "Profile": schema.profile_fields(),
            "PermissionSet": schema.permission_set_fields(),
            "FieldPermissions": schema.field_permissions_fields(),
            "PermissionSetAssignment": schema.permission_set_assignment_fields(),
        }
        # Fields created through the Tooling API that no permission set grants yet.
        self.hidden_fields: set[tuple[str, str]] = set()
        # Objects the integration user may read but not create, edit or delete.
        self.read_only_objects: set[str] = set()
        for sobject, unique in (("Contact", True), ("Account", True), ("Event", False)):
            if marker_fields:
                self.schema[sobject][marker_field] = schema.marker_spec(unique)
        for name, kind in (custom_contact_fields or {}).items():
            self.add_custom_field(name, kind)
        self.rows: dict[str, dict[str, dict[str, Any]]] = {s: {} for s in self.schema}
        self.series: dict[str, list[str]] = {}  # first occurrence id -> occurrence ids
        self._ids = itertools.count(1)
        self._last_stamp = dt.datetime(2000, 1, 1, tzinfo=UTC)
        self.locked_writes = 0

    # ---------------------------------------------------------------- setup, test controls

    def add_custom_field(self, name: str, kind: str = "string") -> None:
        spec = schema.Spec(kind, 255 if kind != "date" else 0, custom=True)
        self.schema["Contact"][name] = spec
        if "IsPersonAccount" in self.schema["Account"]:
            self.schema["Account"][name.removesuffix("__c") + "__pc"] = spec

    def new_id(self, sobject: str) -> str:
        return f"{PREFIXES[sobject]}{next(self._ids):015d}"

    def stamp(self) -> str:
        """Now, strictly after every earlier stamp (SystemModstamp, millisecond text)."""
        now = dt.datetime.now(UTC).replace(
            microsecond=dt.datetime.now(UTC).microsecond // 1000 * 1000
        )
        if now <= self._last_stamp:
            now = self._last_stamp + dt.timedelta(milliseconds=1)
        self._last_stamp = now
        return sf_instant(now)

    def add_profile(self, name: str) -> str:
        with self.lock:
            pid = self.new_id("Profile")
            self.rows["Profile"][pid] = {
                "Id": pid,
                "Name": name,
                "IsDeleted": False,
                "SystemModstamp": self.stamp(),
            }
            return pid

    def add_user(
        self,
        email: str,
        name: str = "",
        *,
        profile_id: str | None = None,
        time_zone: str = "UTC",
        active: bool = True,
        username: str | None = None,
    ) -> str:
        with self.lock:
            uid = self.new_id("User")
            self.rows["User"][uid] = {
                "Id": uid,
                "Username": username or email,
                "Email": email,
                "Name": name or email,
                "ProfileId": profile_id,
                "TimeZoneSidKey": time_zone,
                "IsActive": active,
                "UserType": "Standard",
                "IsDeleted": False,
                "SystemModstamp": self.stamp(),
            }
            return uid

    def user_by_username(self, username: str) -> dict[str, Any] | None:
        return next((u for u in self.rows["User"].values() if u["Username"] == username), None)

    def find(self, record_id: str) -> tuple[str, dict[str, Any]] | None:
        for sobject, rows in self.rows.items():
            if record_id in rows:
                return sobject, rows[record_id]
        return None

    def edit(self, record_id: str, **fields: Any) -> None:
        """Change a record as a person in Salesforce would (no API call counted)."""
        with self.lock:
            found = self.find(record_id)
            assert found is not None and not found[1]["IsDeleted"]
            sobject, row = found
            if sobject == "Event" and row.get("IsRecurrence2"):
                fields.setdefault("IsRecurrence2Exception", True)
            row.update(fields)
            row["SystemModstamp"] = self.stamp()
            self._mirror_person(sobject, row)

    def remove(self, record_id: str) -> None:
        """Delete a record as a person would (to the Recycle Bin: queryAll still sees it)."""
        with self.lock:
            self._delete(record_id)

    # ---------------------------------------------------------------- queries

    def query(self, soql: str, include_deleted: bool) -> list[dict[str, Any]]:
        try:
            q = parse(soql)
        except MalformedQuery as exc:
            raise FakeError(400, "MALFORMED_QUERY", str(exc)) from None
        if q.sobject not in self.schema:
            raise FakeError(400, "INVALID_TYPE", f"sObject type '{q.sobject}' is not supported.")
        fields = self.schema[q.sobject]
        for name in q.referenced:
            rel, _, sub = name.partition(".")
            if sub and rel == "Account" and q.sobject == "Contact":
                if sub not in self.schema["Account"]:
                    raise FakeError(
                        400, "INVALID_FIELD", f"No such column '{sub}' on entity 'Account'."
                    )
            elif name not in fields:
                raise FakeError(
                    400, "INVALID_FIELD", f"No such column '{name}' on entity '{q.sobject}'."
                )
        with self.lock:
            rows = [
                r
                for r in self.rows[q.sobject].values()
                if (include_deleted or not r["IsDeleted"]) and (q.where is None or q.where(r))
            ]
            for name, descending in reversed(q.order):
                rows.sort(
                    key=lambda r, n=name: (r.get(n) is not None, _sortable(r.get(n))),
                    reverse=descending,
                )
            if q.limit is not None:
                rows = rows[: q.limit]
            return [self._project(q.sobject, r, q.fields) for r in rows]

    def _project(self, sobject: str, row: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {
                "type": sobject,
                "url": f"/services/data/v62.0/sobjects/{sobject}/{row['Id']}",
            }
        }
        for name in fields:
            rel, _, sub = name.partition(".")
            if not sub:
                out[name] = row.get(name)
                continue
            target = self.rows["Account"].get(row.get("AccountId") or "")
            if target is None:
                out[rel] = None
            else:
                nested = out.setdefault(
                    rel,
                    {
                        "attributes": {
                            "type": "Account",
                            "url": f"/services/data/v62.0/sobjects/Account/{target['Id']}",
                        }
                    },
                )
                nested[sub] = target.get(sub)
        return out

    # ---------------------------------------------------------------- writes

    def _take_lock(self) -> bool:
        if self.locked_writes > 0:
            self.locked_writes -= 1
            return True
        return False

    def check(
        self, sobject: str, fields: Mapping[str, Any], creating: bool, record_id: str = ""
    ) -> dict[str, Any] | None:
        if sobject in self.read_only_objects:
            return error(
                "INSUFFICIENT_ACCESS_OR_READONLY",
                "insufficient access rights on object id"
                if record_id
                else f"insufficient access rights: cannot create {sobject}",
            )
        specs = self.schema[sobject]
        for name, value in fields.items():
            spec = specs.get(name)
            if spec is None:
                return error(
                    "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}", [name]
                )
            if not (spec.createable if creating else spec.updateable):
                return error(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security "
                    "settings of this field.",
                    [name],
                )
            if value is None:
                continue
            if spec.type in (
                "string",
                "textarea",
                "email",
                "phone",
                "picklist",
                "combobox",
            ) and not isinstance(value, str):
                return error("JSON_PARSER_ERROR", f"Cannot deserialize {name}", [name])
            if spec.length and isinstance(value, str) and len(value) > spec.length:
                return error(
                    "STRING_TOO_LONG",
                    f"{name}: data value too large: {value[:20]} (max length={spec.length})",
                    [name],
                )
            if spec.type == "email" and not _EMAIL.fullmatch(value):
                return error(
                    "INVALID_EMAIL_ADDRESS", f"{name}: invalid email address: {value}", [name]
                )
            if spec.restricted and value not in spec.picklist:
                return error(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{name}: bad value for restricted picklist field: {value}",
                    [name],
                )
            if spec.type == "boolean" and not isinstance(value, bool):
                return error("JSON_PARSER_ERROR", f"Cannot deserialize {name}", [name])
            if spec.type == "date":
                try:
                    dt.date.fromisoformat(value)
                except (TypeError, ValueError):
                    return error("JSON_PARSER_ERROR", f"Cannot deserialize date {name}", [name])
            if spec.unique:
                clash = [
                    r
                    for r in self.rows[sobject].values()
                    if r.get(name) == value and not r["IsDeleted"] and r["Id"] != record_id
                ]
                if clash:
                    return error(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {name} duplicates value on record with id: "
                        f"{clash[0]['Id']}",
                        [name],
                    )
        return None

    def create(
        self, sobject: str, fields: dict[str, Any]
    ) -> tuple[str | None, dict[str, Any] | None]:
        with self.lock:
            if sobject not in self.schema or sobject in ("User", "Profile"):
                return None, error("INVALID_TYPE", f"cannot create {sobject} here")
            if self._take_lock():
                return None, error(
                    "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"
                )
            problem = self.check(sobject, fields, creating=True)
            if problem is None and sobject == "Contact" and not fields.get("LastName"):
                problem = error(
                    "REQUIRED_FIELD_MISSING",
                    "Required fields are missing: [LastName]",
                    ["LastName"],
                )
            if (
                problem is None
                and "OwnerId" in fields
                and fields["OwnerId"] not in self.rows["User"]
            ):
                problem = error(
                    "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["OwnerId"]
                )
            if problem is None and sobject == "Event":
                problem = self._event_problem(fields, {})
            if problem is not None:
                return None, problem
            # Booleans are never null in Salesforce; other fields are until set.
            row = {
                name: False if spec.type == "boolean" else None
                for name, spec in self.schema[sobject].items()
            } | fields
            record_id = self.new_id(sobject)
            row |= {"Id": record_id, "IsDeleted": False, "SystemModstamp": self.stamp()}
            row["CreatedDate"] = row["SystemModstamp"]
            if sobject == "Event":
                return self._create_event(row), None
            self.rows[sobject][record_id] = row
            if sobject == "Account" and row.get("LastName") and "IsPersonAccount" in row:
                self._create_person(row)
            return record_id, None

    def update(self, sobject: str, record_id: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        with self.lock:
            row = self.rows.get(sobject, {}).get(record_id)
            if row is None:
                return error(
                    "INVALID_CROSS_REFERENCE_KEY" if sobject in self.rows else "INVALID_TYPE",
                    f"invalid record id {record_id}",
                    ["Id"],
                )
            if row["IsDeleted"]:
                return error("ENTITY_IS_DELETED", "entity is deleted")
            if self._take_lock():
                return error(
                    "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"
                )
            problem = (
                self.check(sobject, fields, creating=False, record_id=record_id) if fields else None
            )
            if problem is None and sobject == "Contact" and row.get("IsPersonAccount"):
                # [verify] the exact code Salesforce gives for a person contact edited directly.
                problem = error(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    "a person account's contact is updated through its Account",
                )
            if problem is None and sobject == "Event":
                problem = self._event_problem(fields, row)
            if problem is not None:
                return problem
            row.update({k: v for k, v in fields.items() if k != "Id"})
            if sobject == "Event":
                self._derive_event(row)
                if row.get("IsRecurrence2") and set(fields) - {"WhoId", "EventWhoIds"}:
                    row["IsRecurrence2Exception"] = True
            row["SystemModstamp"] = self.stamp()
            self._mirror_person(sobject, row)
            return None

    def delete(self, record_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.find(record_id)
            if found is None:
                return error("INVALID_CROSS_REFERENCE_KEY", f"invalid record id {record_id}")
            if found[1]["IsDeleted"]:
                return error("ENTITY_IS_DELETED", "entity is deleted")
            if self._take_lock():
                return error(
                    "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"
                )
            if found[0] == "Contact" and found[1].get("IsPersonAccount"):
                # [verify] deleting a person contact directly.
                return error("INVALID_TYPE_FOR_OPERATION", "delete the person account's Account")
            self._delete(record_id)
            return None

    def _delete(self, record_id: str) -> None:
        found = self.find(record_id)
        assert found is not None
        sobject, row = found
        doomed = [row]
        if sobject == "Event" and record_id in self.series:
            doomed = [self.rows["Event"][i] for i in self.series.pop(record_id)]
        if sobject == "Account" and row.get("PersonContactId"):
            doomed.append(self.rows["Contact"][row["PersonContactId"]])
        for gone in doomed:
            if not gone["IsDeleted"]:
                gone["IsDeleted"] = True
                gone["SystemModstamp"] = self.stamp()

    def upsert(
        self, sobject: str, key_field: str, key: str, fields: dict[str, Any]
    ) -> tuple[int, Any]:
        """(HTTP status, body) of an upsert by external id."""
        with self.lock:
            spec = self.schema.get(sobject, {}).get(key_field)
            if spec is None or not spec.external_id:
                raise FakeError(
                    404,
                    "NOT_FOUND",
                    f"Provided external ID field does not exist or is not accessible: {key_field}",
                )
            matches = [
                r
                for r in self.rows[sobject].values()
                if r.get(key_field) == key and not r["IsDeleted"]
            ]
            if len(matches) > 1:
                return 300, [f"/services/data/v62.0/sobjects/{sobject}/{r['Id']}" for r in matches]
            if matches:
                problem = self.update(sobject, matches[0]["Id"], fields)
                if problem is not None:
                    raise FakeError(
                        400, problem["statusCode"], problem["message"], problem["fields"]
                    )
                return 200, {
                    "id": matches[0]["Id"],
                    "success": True,
                    "errors": [],
                    "created": False,
                }
            record_id, problem = self.create(sobject, {**fields, key_field: key})
            if problem is not None:
                raise FakeError(400, problem["statusCode"], problem["message"], problem["fields"])
            return 201, {"id": record_id, "success": True, "errors": [], "created": True}

    # ---------------------------------------------------------------- person accounts

    def _create_person(self, account: dict[str, Any]) -> None:
        contact_id = self.new_id("Contact")
        contact = {name: None for name in self.schema["Contact"]} | {
            "Id": contact_id,
            "IsDeleted": False,
            "IsPersonAccount": True,
            "AccountId": account["Id"],
            "OwnerId": account.get("OwnerId"),
            "SystemModstamp": account["SystemModstamp"],
        }
        self.rows["Contact"][contact_id] = contact
        account["IsPersonAccount"] = True
        account["PersonContactId"] = contact_id
        self._mirror_person("Account", account)

    def _mirror_person(self, sobject: str, row: dict[str, Any]) -> None:
        if sobject != "Account" or not row.get("PersonContactId"):
            return
        contact = self.rows["Contact"][row["PersonContactId"]]
        for account_field, contact_field in PERSON_TO_CONTACT.items():
            contact[contact_field] = row.get(account_field)
        for name, value in row.items():
            if name.endswith("__pc"):
                contact[name[: -len("__pc")] + "__c"] = value
        contact["OwnerId"] = row.get("OwnerId")
        row["Name"] = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p)
        contact["SystemModstamp"] = row["SystemModstamp"]


def _sortable(value: Any) -> Any:
    if isinstance(value, str) and "T" in value and value[:4].isdigit():
        try:
            return parse_instant(value).isoformat()
        except ValueError:
            return value
    return value if value is not None else ""
