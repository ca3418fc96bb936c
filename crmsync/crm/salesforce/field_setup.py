"""Creating crmsync's marker fields from crmsync (`crmsync setup salesforce --create-fields`).

The fields are created through the Tooling API: ``POST tooling/sobjects/CustomField`` with
the field's ``FullName`` (``Contact.CrmSync_Key__c``; an event field lives on Activity)
and its ``Metadata``; a field that exists already is refused with
``DUPLICATE_DEVELOPER_NAME``.
https://developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/api_tooling/tooling_api_objects_customfield.htm
https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/customfield.htm
A field created through an API is readable by no one until a permission set grants it:
crmsync makes the permission set `PERMISSION_SET` with read and edit on both fields
(FieldPermissions) and assigns it to the integration user (PermissionSetAssignment).
https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_fieldpermissions.htm
Each step looks first and only adds what is missing, so the command may be run again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crmsync.crm.salesforce import sobject_collections as collections
from crmsync.crm.salesforce.errors import error_code, first_error, to_sync_error
from crmsync.crm.salesforce.query import query, quote, quote_list

if TYPE_CHECKING:
    from crmsync.crm.salesforce.crm import SalesforceCrm

PERMISSION_SET = "crmsync_marker_fields"
FIELD_LENGTH = 255


@dataclass(frozen=True)
class FieldStep:
    """One step's outcome, in the admin's words."""

    name: str
    created: bool
    detail: str


@dataclass(frozen=True)
class MarkerField:
    sobject: str  # where crmsync reads and writes it
    parent: str  # where Salesforce defines it (events' custom fields are Activity's)
    unique: bool  # External ID, Unique, case sensitive: what upsert needs

    def full_name(self, field: str) -> str:
        return f"{self.parent}.{field}"

    def metadata(self, field: str) -> dict[str, Any]:
        label = field.removesuffix("__c").replace("_", " ")
        metadata: dict[str, Any] = {"type": "Text", "length": FIELD_LENGTH, "label": label}
        if self.unique:
            metadata |= {"externalId": True, "unique": True, "caseSensitive": True}
        return metadata


MARKER_FIELDS = (
    MarkerField("Contact", "Contact", unique=True),
    MarkerField("Event", "Activity", unique=False),
)


def create_marker_fields(crm: SalesforceCrm) -> list[FieldStep]:
    """Create the marker fields the org lacks and give the integration user read and edit
    access to them; raises the mapped `SyncError` when Salesforce refuses a step."""
    field = crm.marker_field
    steps = [_create_field(crm, marker, field) for marker in MARKER_FIELDS]
    steps += _grant_access(crm, field)
    crm.describe.forget()
    return steps


def _create_field(crm: SalesforceCrm, marker: MarkerField, field: str) -> FieldStep:
    name = f"{marker.sobject}.{field}"
    info = crm.describe.get(marker.sobject)
    if info is not None and field in info.fields:
        return FieldStep(name, False, "already there")
    body = {"FullName": marker.full_name(field), "Metadata": marker.metadata(field)}
    answer = crm.conn.request(
        "POST",
        "tooling/sobjects/CustomField",
        json_body=body,
        write=True,
        accept=(400,),
        what=f"creating the field {marker.full_name(field)}",
    )
    if answer.status == 400:
        error = first_error(answer.body)
        if error_code(error) != "DUPLICATE_DEVELOPER_NAME":
            raise to_sync_error(error, f"creating the field {marker.full_name(field)}")
        # There, but the integration user cannot see it yet: the grant below fixes that.
        return FieldStep(name, False, "already there (hidden from the integration user)")
    kind = "Text(255), External ID, Unique" if marker.unique else "Text(255)"
    return FieldStep(name, True, f"created: {kind}")


def _one_id(crm: SalesforceCrm, soql: str) -> str | None:
    rows = list(query(crm.conn, soql))
    return str(rows[0]["Id"]) if rows else None


def _created_id(crm: SalesforceCrm, sobject: str, fields: dict[str, Any]) -> str:
    (result,) = collections.create(crm.conn, sobject, [fields])
    if result.error is not None:
        raise result.error
    return str(result.id)


def _grant_access(crm: SalesforceCrm, field: str) -> list[FieldStep]:
    steps = []
    permission_set = _one_id(
        crm, f"SELECT Id FROM PermissionSet WHERE Name = {quote(PERMISSION_SET)}"
    )
    if permission_set is None:
        permission_set = _created_id(
            crm, "PermissionSet", {"Name": PERMISSION_SET, "Label": "crmsync marker fields"}
        )
        steps.append(FieldStep(f"permission set {PERMISSION_SET}", True, "created"))
    names = [f"{marker.sobject}.{field}" for marker in MARKER_FIELDS]
    soql = (
        "SELECT Id, Field, PermissionsRead, PermissionsEdit FROM FieldPermissions "
        f"WHERE ParentId = {quote(permission_set)} AND Field IN {quote_list(names)}"
    )
    have = {str(r["Field"]): r for r in query(crm.conn, soql)}
    grant = {"PermissionsRead": True, "PermissionsEdit": True}
    missing = [
        {"ParentId": permission_set, "SobjectType": marker.sobject, "Field": name, **grant}
        for marker, name in zip(MARKER_FIELDS, names, strict=True)
        if name not in have
    ]
    partial = [
        {"Id": row["Id"], **grant}
        for row in have.values()
        if not (row.get("PermissionsRead") and row.get("PermissionsEdit"))
    ]
    failures = [r.error for r in collections.create(crm.conn, "FieldPermissions", missing)]
    failures += [r.error for r in collections.update(crm.conn, "FieldPermissions", partial)]
    if any(failures):
        raise next(f for f in failures if f is not None)
    if missing or partial:
        steps.append(FieldStep("field access", True, f"read and edit on {', '.join(names)}"))
    steps.append(_assign(crm, permission_set))
    return steps


def _assign(crm: SalesforceCrm, permission_set: str) -> FieldStep:
    step = f"permission set {PERMISSION_SET} assigned"
    username = crm.config.username
    if not username:
        # Client credentials: the app's Run-As user signs in; its name is not in the setup.
        return FieldStep(step, False, "assign it to the app's Run-As user by hand (Setup > Users)")
    user = _one_id(crm, f"SELECT Id FROM User WHERE Username = {quote(username)}")
    if user is None:
        return FieldStep(step, False, f"no user {username}: assign it by hand")
    assigned = _one_id(
        crm,
        f"SELECT Id FROM PermissionSetAssignment WHERE AssigneeId = {quote(user)} "
        f"AND PermissionSetId = {quote(permission_set)}",
    )
    if assigned is not None:
        return FieldStep(step, False, f"already assigned to {username}")
    _created_id(
        crm, "PermissionSetAssignment", {"AssigneeId": user, "PermissionSetId": permission_set}
    )
    return FieldStep(step, True, f"to {username}")
